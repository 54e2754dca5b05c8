"""Ingress as a real L7 router (nginx, as ingress-nginx runs it): the seeds' example, v1 path
types, TLS with a generated certificate and one from a Secret, reloads as endpoints change."""

import base64
import json
import subprocess
import sys
import time

import pytest

from kemu.kernel import doctor

from .helpers import running_cluster, scenario_doc

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not doctor._ovs_running().ok, reason="Open vSwitch is not running"),
]


def echo(name, replicas=1):
    return [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
             "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                      "template": {"metadata": {"labels": {"app": name}}, "spec": {
                          "containers": [{"name": "c", "image": "kemu/http-echo",
                                          "ports": [{"containerPort": 8080, "name": "http"}]}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
             "spec": {"selector": {"app": name},
                      "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}}]


SEED_INGRESS = {  # the seeds' example, verbatim apart from the TLS entry
    "apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "my-ingress"},
    "spec": {"backend": {"serviceName": "other", "servicePort": 8080},
             "tls": [{"hosts": ["foo.mydomain.com"], "secretName": "missing-so-generated"}],
             "rules": [{"host": "foo.mydomain.com", "http": {"paths": [
                 {"backend": {"serviceName": "foo", "servicePort": 8080}}]}},
                 {"host": "mydomain.com", "http": {"paths": [
                     {"path": "/bar/*", "backend": {"serviceName": "bar",
                                                   "servicePort": 8080}}]}}]}}


def v1_ingress(secret):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "api"},
            "spec": {"ingressClassName": "nginx",
                     "tls": [{"hosts": ["api.example.com"], "secretName": secret}],
                     "rules": [{"host": "api.example.com", "http": {"paths": [
                         {"path": "/v1", "pathType": "Prefix", "backend": {
                             "service": {"name": "foo", "port": {"name": "http"}}}},
                         {"path": "/exact", "pathType": "Exact", "backend": {
                             "service": {"name": "bar", "port": {"number": 8080}}}}]}}]}}


def tls_secret(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    key, crt = directory / "k.pem", directory / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=api.example.com", "-addext", "subjectAltName=DNS:api.example.com",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    data = {"tls.crt": base64.b64encode(crt.read_bytes()).decode(),
            "tls.key": base64.b64encode(key.read_bytes()).decode()}
    return crt, {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                 "metadata": {"name": "api-tls"}, "data": data}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    crt, secret = tls_secret(tmp_path_factory)
    workloads = [*echo("foo", 2), *echo("bar"), *echo("other"), SEED_INGRESS,
                 v1_ingress("api-tls"), secret]
    doc = scenario_doc(workloads, nodes=2)
    doc["external"] = {"hosts": [{"name": "client"}]}
    with running_cluster(doc) as running:
        running.secret_cert = crt
        yield running


def ingress_vip(cluster):
    return next(s.load_balancer_ip for s in cluster.scenario.services
                if s.name == "ingress-nginx-controller")


def get(cluster, host, path="/", count=1):
    out = subprocess.run([*cluster.exec_prefix(cluster.externals["client"]), sys.executable,
                          "-m", "kemu.measure.probe", "http",
                          f"http://{ingress_vip(cluster)}{path}", "--count", str(count),
                          "--host", host], capture_output=True, text=True, timeout=60)
    return [json.loads(line) for line in out.stdout.splitlines()]


def curl(cluster, *args):
    return subprocess.run([*cluster.exec_prefix(cluster.externals["client"]), "curl", "-sS",
                           "--max-time", "5", *args], capture_output=True, text=True)


def test_the_seeds_example_routes_by_host_and_path(cluster):
    assert {r.get("pod") for r in get(cluster, "foo.mydomain.com", "/anything", 4)} == \
        {"foo-0", "foo-1"}
    assert {r.get("pod") for r in get(cluster, "mydomain.com", "/bar/x", 2)} == {"bar-0"}
    assert {r.get("pod") for r in get(cluster, "mydomain.com", "/baz", 2)} == {"other-0"}
    assert {r.get("pod") for r in get(cluster, "unknown.example", "/", 2)} == {"other-0"}
    reply = get(cluster, "mydomain.com", "/bar/x")[0]
    assert reply["client"] == cluster.pods["ingress-nginx/ingress-nginx-controller-0"].ip


def test_v1_path_types(cluster):
    assert get(cluster, "api.example.com", "/v1")[0]["pod"].startswith("foo-")
    assert get(cluster, "api.example.com", "/v1/users")[0]["pod"].startswith("foo-")
    assert get(cluster, "api.example.com", "/v10")[0]["pod"] == "other-0"  # element-wise
    assert get(cluster, "api.example.com", "/exact")[0]["pod"] == "bar-0"
    assert get(cluster, "api.example.com", "/exact/no")[0]["pod"] == "other-0"


def test_tls_with_a_generated_certificate(cluster):
    cert = cluster.state.dir / "ingress" / "certs" / "foo.mydomain.com.crt"
    result = curl(cluster, "--cacert", str(cert), "--resolve",
                  f"foo.mydomain.com:443:{ingress_vip(cluster)}", "https://foo.mydomain.com/")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pod"].startswith("foo-")


def test_tls_with_the_certificate_of_a_secret(cluster):
    result = curl(cluster, "--cacert", str(cluster.secret_cert), "--resolve",
                  f"api.example.com:443:{ingress_vip(cluster)}", "https://api.example.com/v1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pod"].startswith("foo-")


def test_nginx_follows_the_endpoints(cluster):
    cluster.crash_pod("default/foo-1")
    time.sleep(1.5)  # a reconcile, a render, a graceful reload
    assert {r.get("pod") for r in get(cluster, "foo.mydomain.com", "/", 10)} == {"foo-0"}
    cluster.crash_pod("default/foo-0")
    time.sleep(1.5)
    out = curl(cluster, "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: foo.mydomain.com",
               f"http://{ingress_vip(cluster)}/")
    assert out.stdout == "503"
