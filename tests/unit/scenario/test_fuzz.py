"""`kemu validate` never crashes or hangs, whatever it is fed: the shipped scenarios (their
manifest files inlined) and the golden world, mutated at random — a field dropped, replaced by
a value of another type, an unknown key added — must each give a ScenarioError or a scenario,
in under a few seconds. Seeded: a failure names the seed and the mutated document reproduces."""

import copy
import random
import signal
from pathlib import Path

import pytest
import yaml

from kemu.errors import KemuError
from kemu.scenario import parse_runs

ROOT = Path(__file__).resolve().parents[3]
VALUES = [None, [], {}, "", "x", "http", "80", 0, -1, 1.5, 2**31, 10**9, True, ["a"], [None],
          {"a": 1}, [1, 2], [{"a": 1}], "10.0.0.0/8", "10.0.0.300/33", 65536, "Local", "TCP",
          "a" * 300, {"matchLabels": 1}, {"matchLabels": {"a": [1]}}]
SECONDS = 3  # a document taking longer counts as a hang


def corpus():
    docs = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")) + \
            [ROOT / "tests" / "golden" / "render" / "world.yaml"]:
        doc = yaml.safe_load(path.read_text())
        workloads = []
        for item in doc.get("workloads") or []:
            if isinstance(item, dict) and set(item) == {"file"}:
                text = (path.parent / item["file"]).read_text()
                workloads += [d for d in yaml.safe_load_all(text) if d]
            else:
                workloads.append(item)
        doc["workloads"] = workloads
        docs.append(doc)
    return docs


def paths(value, prefix=()):
    yield prefix
    children = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from paths(child, (*prefix, key))


def mutate(doc, rnd):
    doc = copy.deepcopy(doc)
    for _ in range(rnd.randint(1, 3)):
        where = rnd.choice([p for p in paths(doc) if p])
        parent = doc
        for part in where[:-1]:
            parent = parent[part]
        roll = rnd.random()
        if roll < 0.7:
            parent[where[-1]] = copy.deepcopy(rnd.choice(VALUES))
        elif isinstance(parent, dict) and roll < 0.85:
            del parent[where[-1]]
        elif isinstance(parent, dict):
            key = rnd.choice(["extra", "spec", "ports", "image", "images", "selector"])
            parent[key] = copy.deepcopy(rnd.choice(VALUES))
    return doc


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


@pytest.mark.parametrize("seed", range(4))
def test_mutated_scenarios_never_crash_or_hang(seed):
    docs, rnd = corpus(), random.Random(seed)
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for i in range(60):
            doc = mutate(rnd.choice(docs), rnd)
            signal.alarm(SECONDS)
            try:
                parse_runs(doc, "fuzzed.yaml")
            except KemuError:
                pass
            except Hang:
                pytest.fail(f"seed {seed}, document {i}: no answer in {SECONDS} s:\n"
                            f"{yaml.safe_dump(doc)}")
            except Exception as e:  # noqa: BLE001 — exactly what this test looks for
                pytest.fail(f"seed {seed}, document {i}: {type(e).__name__}: {e}\n"
                            f"{yaml.safe_dump(doc)}")
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
