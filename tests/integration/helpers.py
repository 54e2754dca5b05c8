"""Shared by the integration tests: build a cluster from a scenario dict, inspect the host."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kemu.cluster.cluster import Cluster
from kemu.cluster.lifecycle import running
from kemu.kernel.records import RUN_ROOT
from kemu.scenario import parse_scenario

REPO = Path(__file__).resolve().parents[2]
KEMU = str(REPO / ".venv" / "bin" / "kemu")


def pod(name: str, node: str = "", image: str = "kemu/http-echo", port: int = 8080,
        **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image}
    if port:
        container["ports"] = [{"containerPort": port}]
    spec: dict[str, Any] = {"containers": [container], **extra}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": spec}


def scenario_doc(workloads: list[dict[str, Any]], nodes: int = 2, cni: str = "flannel-vxlan",
                 measurements: list[dict[str, Any]] | None = None,
                 **cluster: Any) -> dict[str, Any]:
    return {"apiVersion": "kemu/v1", "kind": "Scenario", "metadata": {"name": "itest"},
            "cluster": {"nodes": nodes, "cni": {"plugin": cni}, **cluster},
            "workloads": workloads, "measurements": measurements or []}


@contextlib.contextmanager
def running_cluster(doc: dict[str, Any]) -> Iterator[Cluster]:
    """The scenario's cluster, up; torn down after (a teardown error fails the test)."""
    with running(parse_scenario(doc, "itest")) as cluster:
        yield cluster


def in_pod(cluster: Cluster, name: str, *argv: str, timeout: float = 20) -> Any:
    return cluster.pods[f"default/{name}"].exec(*argv, timeout=timeout)


def in_node(cluster: Cluster, name: str, *argv: str) -> str:
    return cluster.nodes[name].run(*argv)


def http_get(cluster: Cluster, client: str, url: str) -> dict[str, Any]:
    result = in_pod(cluster, client, "curl", "-sS", "--max-time", "5", url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def shortened_scenario(name: str, directory: Path, **matrix: list[Any]) -> Path:
    """A shipped scenario with its measurements cut short (5 pings or requests, 1 s of
    iperf3, one repeat) and its matrix narrowed to `matrix` where given (field paths with
    "__" for "."), written to `directory`: the same cluster, a quick run."""
    import yaml
    doc = yaml.safe_load((REPO / "scenarios" / f"{name}.yaml").read_text())
    for m in doc["measurements"]:
        m["repeat"] = 1
        m.pop("warmup", None)
        if "count" in m or m["type"] in ("ping", "http", "dns"):
            m["count"] = 5
        if "duration" in m or m["type"] == "iperf3":
            m["duration"] = 1
    for key, values in matrix.items():
        doc["matrix"][key.replace("__", ".")] = values
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def kemu_netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("kemu-")}


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def mininet_shells() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "mininet:" in line and "ps -eo" not in line]


def run_dirs() -> set[str]:
    return {p.name for p in RUN_ROOT.iterdir()} if RUN_ROOT.is_dir() else set()


class Capture:
    """tcpdump inside a namespace (argv prefix), started and ready before traffic is sent."""

    def __init__(self, prefix: list[str], interface: str, bpf: str, count: int = 0,
                 decode: tuple[str, ...] = ()):
        argv = [*prefix, "tcpdump", "-i", interface, "-nn", "-l", "-v", *decode]
        if count:
            argv += ["-c", str(count)]
        self.proc = subprocess.Popen([*argv, bpf], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # "listening on …" means the filter is attached
            if "listening on" in self.proc.stderr.readline():
                return
        raise AssertionError("tcpdump did not start")

    def stop(self, timeout: float = 5) -> str:
        if self.proc.poll() is None:
            time.sleep(0.3)  # let the last packets reach the capture
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=timeout)
        return out


def eventually(check, timeout: float = 10.0, interval: float = 0.1):
    """Retry `check` (returning truthy on success) until it does or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def reaches(cluster: Cluster, client: str, target_ip: str) -> bool:
    return in_pod(cluster, client, "ping", "-c", "1", "-W", "1", target_ip).returncode == 0


def read_pcap(path: Path) -> list[bytes]:
    """Frames of a classic pcap file (what `tcpdump -w` writes), Ethernet link type."""
    import struct
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    frames, offset = [], 24
    while offset + 16 <= len(data):
        incl_len = struct.unpack(endian + "I", data[offset + 8:offset + 12])[0]
        frames.append(data[offset + 16:offset + 16 + incl_len])
        offset += 16 + incl_len
    return frames
