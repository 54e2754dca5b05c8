"""Deleting a pod as Kubernetes does: it is terminating at once — its endpoint stops being
ready, so new connections go elsewhere while the ones it has go on — its preStop hook runs,
then SIGTERM, and SIGKILL when the grace period is over; only then is it gone."""

import json
import subprocess
import sys
import time

import pytest

from .helpers import eventually, pod, running_cluster, scenario_doc

pytestmark = pytest.mark.integration


def web(name, pre_stop_s, grace_s, command=None):
    container = {"name": "web", "image": "kemu/http-echo", "ports": [{"containerPort": 8080}],
                 "lifecycle": {"preStop": {"sleep": {"seconds": pre_stop_s}}}}
    if command:
        container["command"] = command
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": grace_s,
                                           "containers": [container]}}}}


def service(name):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


# Ignores SIGTERM: only SIGKILL ends it.
STUBBORN = ["sh", "-c", "trap '' TERM; exec python3 -m http.server 8080 >/dev/null 2>&1"]


@pytest.fixture(scope="module")
def cluster():
    workloads = [web("web", 4, 30), service("web"), web("stubborn", 60, 3, STUBBORN),
                 pod("client", node="node1", port=0, image="kemu/sleep")]
    with running_cluster(scenario_doc(workloads, nodes=2)) as running:
        yield running


# One kept-alive connection through the Service, a request on it before and after the
# pod that answered is deleted, then new connections.
CLIENT = """
import http.client, json, sys, time
conn = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)
def ask(c):
    c.request("GET", "/")
    return json.loads(c.getresponse().read())["pod"]
print(ask(conn), flush=True)
sys.stdin.readline()  # the test deletes that pod
print(ask(conn), flush=True)
fresh = []
for _ in range(10):
    c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)
    fresh.append(ask(c))
    c.close()
print(json.dumps(fresh), flush=True)
"""


def test_a_terminating_pod_finishes_its_connections_and_takes_no_new_ones(cluster):
    vip = next(s.cluster_ip for s in cluster.scenario.services if s.name == "web")
    client = subprocess.Popen([*cluster.exec_prefix(cluster.pods["default/client"]),
                               sys.executable, "-c", CLIENT, vip], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    first = client.stdout.readline().strip()
    started = time.monotonic()
    cluster.delete_pod(f"default/{first}")
    status = cluster.store.pod(f"default/{first}")
    assert status.terminating
    # Within a sync the endpoint is no longer ready, still serving, terminating.
    assert eventually(lambda: [(e.ready, e.serving, e.terminating)
                               for eps in cluster.store.endpoints().values() for e in eps
                               if e.pod == f"default/{first}"] == [(False, True, True)],
                      timeout=3)
    time.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
    client.stdin.write("\n")
    client.stdin.flush()
    assert client.stdout.readline().strip() == first  # the old connection goes on
    fresh = json.loads(client.stdout.readline())
    assert client.wait(timeout=10) == 0
    assert first not in fresh and len(fresh) == 10  # no new connection went to it
    # The preStop sleep holds it for 4 s; then SIGTERM ends http-echo, and the pod is gone.
    assert f"default/{first}" in cluster.pods
    assert eventually(lambda: f"default/{first}" not in cluster.pods, timeout=10)
    assert 3.5 < time.monotonic() - started < 8


def test_the_grace_period_ends_with_sigkill(cluster):
    # preStop sleeps 60 s, the grace period is 3 s: the hook is cut off at 3 s, SIGTERM is
    # ignored, and SIGKILL comes kubelet's minimum 2 s later.
    started = time.monotonic()
    cluster.delete_pod("default/stubborn-0")
    assert eventually(lambda: "default/stubborn-0" not in cluster.pods, timeout=15)
    assert 4.5 < time.monotonic() - started < 8
    assert not cluster.check()  # nothing failed on the way


def rolling(name, probe, pre_stop_s, replicas=3):
    spec = web(name, pre_stop_s, 30)
    spec["spec"]["replicas"] = replicas
    container = spec["spec"]["template"]["spec"]["containers"][0]
    if not pre_stop_s:
        del container["lifecycle"]
    if probe:
        container["readinessProbe"] = {"httpGet": {"port": 8080, "path": "/"},
                                       "periodSeconds": 1}
    return spec


def errors_during_rollout(cluster, name):
    """Paced requests (200 a second, for 12 s) through the Service while a rollout replaces
    every pod; the ones that failed."""
    vip = next(s.cluster_ip for s in cluster.scenario.services if s.name == name)
    client = subprocess.Popen([*cluster.exec_prefix(cluster.pods["default/client"]),
                               sys.executable, "-m", "kemu.measure.probe", "http",
                               f"http://{vip}/", "--count", "2400", "--interval", "0.005",
                               "--timeout", "1"], stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    old = cluster.replicas(f"default/{name}")
    new = [f"default/{name}-{i}" for i in range(len(old), 2 * len(old))]
    cluster.rollout(f"default/{name}", new)
    assert eventually(lambda: cluster.replicas(f"default/{name}") == new and
                      not any(k in cluster.pods for k in old), timeout=40)
    out, _ = client.communicate(timeout=60)
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 2400
    return [r for r in records if "error" in r]


def test_a_rollout_under_load_errs_as_kubernetes_does():
    """As in a cluster: with a readiness probe and a preStop sleep that outlasts kube-proxy's
    sync, a rollout loses no request; without, requests still sent to a pod that already
    stopped fail until every node's kube-proxy has written the change (minSyncPeriod 1 s)."""
    workloads = [rolling("safe", probe=True, pre_stop_s=5), service("safe"),
                 rolling("bare", probe=False, pre_stop_s=0, replicas=6), service("bare"),
                 pod("client", node="node1", port=0, image="kemu/sleep")]
    with running_cluster(scenario_doc(workloads, nodes=2)) as cluster:
        assert errors_during_rollout(cluster, "safe") == []
        assert errors_during_rollout(cluster, "bare")  # some: a handful in 2400 here
