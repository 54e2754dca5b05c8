"""Ingress as a real L7 router (nginx, configured as ingress-nginx configures it): the seeds'
example, v1 path types and their priority, wildcard hosts, TLS with a generated certificate and
one from a Secret and the redirect to it, canaries, cookie affinity, regular expressions with
rewrites, IngressClasses, reloads as endpoints change. Expected answers follow ingress-nginx
(kubernetes/ingress-nginx internal/ingress/controller/controller.go and the nginx.tmpl
template), not kemu's own reading of the Ingress API."""

import base64
import json
import subprocess
import time
from dataclasses import dataclass

import pytest

from kemu.kernel import doctor
from kemu.registry import backends as available_backends

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


def ingress(name, host, paths, annotations=None, class_name="nginx"):
    """An Ingress for one host; `paths` as (path, pathType, service)."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"ingressClassName": class_name, "rules": [{"host": host, "http": {"paths": [
                {"path": path, "pathType": kind,
                 "backend": {"service": {"name": service, "port": {"number": 8080}}}}
                for path, kind, service in paths]}}]}}


NGINX = "nginx.ingress.kubernetes.io/"
MORE_INGRESSES = [
    # The example: the same path as Prefix then as Exact; ingress-nginx's Exact wins.
    ingress("priority", "priority.example", [("/foo", "Prefix", "foo"), ("/foo", "Exact", "bar")]),
    # A wildcard host matches one label only (the Ingress API; nginx's server_name regex).
    ingress("wild", "*.wild.example", [("/", "Prefix", "bar")]),
    # A canary Ingress: same host and path, another Service, chosen by a header.
    ingress("stable", "canary.example", [("/", "Prefix", "foo")]),
    ingress("canary", "canary.example", [("/", "Prefix", "bar")],
            {NGINX + "canary": "true", NGINX + "canary-by-header": "X-Canary"}),
    ingress("sticky", "sticky.example", [("/", "Prefix", "foo")],
            {NGINX + "affinity": "cookie"}),
    ingress("rewrite", "rewrite.example", [("/api(/|$)(.*)", "ImplementationSpecific", "bar")],
            {NGINX + "use-regex": "true", NGINX + "rewrite-target": "/$2"}),
    # Another controller's class: ingress-nginx leaves this Ingress alone.
    {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "gce"},
     "spec": {"controller": "k8s.io/ingress-gce"}},
    ingress("elsewhere", "gce.example", [("/", "Prefix", "bar")], class_name="gce"),
]


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


@pytest.fixture(scope="module", params=sorted(available_backends()))
def cluster(request, tmp_path_factory):
    crt, secret = tls_secret(tmp_path_factory)
    workloads = [*echo("foo", 2), *echo("bar"), *echo("other"), SEED_INGRESS,
                 v1_ingress("api-tls"), secret, *MORE_INGRESSES]
    doc = scenario_doc(workloads, nodes=2, cni=request.param)
    doc["external"] = {"hosts": [{"name": "client"}]}
    with running_cluster(doc) as running:
        running.secret_cert = crt
        yield running


def ingress_vip(cluster):
    return next(s.load_balancer_ip for s in cluster.scenario.services
                if s.name == "ingress-nginx-controller")


def curl(cluster, *args):
    return subprocess.run([*cluster.exec_prefix(cluster.externals["client"]), "curl", "-sS",
                           "--max-time", "5", *args], capture_output=True, text=True)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: dict | None  # http-echo's JSON (pod, client, path, host), None for nginx's own pages

    @property
    def pod(self):
        return self.body["pod"] if self.body else None


def request(cluster, host, path="/", *args, scheme="http"):
    """One request from the outside client to the Ingress VIP, as `scheme://host/path`."""
    port = 443 if scheme == "https" else 80
    out = curl(cluster, "-k", "-i", "-g", "--resolve", f"{host}:{port}:{ingress_vip(cluster)}",
               *args, f"{scheme}://{host}{path}")
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition("\n\n")  # text mode: CRLF already read as LF
    status, *lines = head.split("\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
    return Reply(int(status.split()[1]), headers,
                 json.loads(body) if body.startswith("{") else None)


def pods(cluster, host, path="/", count=4, *args, scheme="http"):
    return {request(cluster, host, path, *args, scheme=scheme).pod for _ in range(count)}


def test_the_seeds_example_routes_by_host_and_path(cluster):
    assert pods(cluster, "foo.mydomain.com", "/anything", 6, scheme="https") == {"foo-0", "foo-1"}
    # `/bar/*` is an nginx prefix under ingress-nginx: literal, no glob (kemu warned).
    assert pods(cluster, "mydomain.com", "/bar/x") == {"other-0"}
    assert pods(cluster, "mydomain.com", "/bar/*x") == {"bar-0"}
    assert pods(cluster, "mydomain.com", "/baz") == {"other-0"}
    # The Ingress's default backend serves its own hosts; other hosts get the controller's 404.
    assert request(cluster, "unknown.example").status == 404
    reply = request(cluster, "mydomain.com", "/bar/*x")
    assert reply.body["client"] == cluster.pods["ingress-nginx/ingress-nginx-controller-0"].ip


def test_v1_path_types(cluster):
    def pod(path):
        return request(cluster, "api.example.com", path, scheme="https").pod
    assert pod("/v1").startswith("foo-")
    assert pod("/v1/users").startswith("foo-")
    assert pod("/exact") == "bar-0"
    # Element-wise Prefix and whole-path Exact: neither matches, and the host has no default
    # backend of its own, so the controller's 404 answers.
    assert request(cluster, "api.example.com", "/v10", scheme="https").status == 404
    assert request(cluster, "api.example.com", "/exact/no", scheme="https").status == 404


def test_exact_wins_over_prefix_of_the_same_path(cluster):
    assert pods(cluster, "priority.example", "/foo") == {"bar-0"}
    assert pods(cluster, "priority.example", "/foo/x") <= {"foo-0", "foo-1"}


def test_a_wildcard_host_matches_one_label(cluster):
    assert request(cluster, "a.wild.example").pod == "bar-0"
    assert request(cluster, "a.b.wild.example").status == 404
    assert request(cluster, "wild.example").status == 404


def test_tls_hosts_redirect_plain_http(cluster):
    # ssl-redirect is on by default for hosts with TLS: 308, keeping the path.
    reply = request(cluster, "foo.mydomain.com", "/anything?x=1")
    assert reply.status == 308
    assert reply.headers["location"] == "https://foo.mydomain.com/anything?x=1"
    secure = request(cluster, "foo.mydomain.com", "/", scheme="https")
    assert secure.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "strict-transport-security" not in request(cluster, "mydomain.com", "/").headers


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


def test_a_canary_by_header(cluster):
    assert pods(cluster, "canary.example", "/", 4, "-H", "X-Canary: always") == {"bar-0"}
    assert pods(cluster, "canary.example", "/", 4, "-H", "X-Canary: never") <= {"foo-0", "foo-1"}
    assert pods(cluster, "canary.example", "/", 4) <= {"foo-0", "foo-1"}  # canary-weight 0


def test_cookie_affinity_keeps_a_client_on_one_pod(cluster):
    first = request(cluster, "sticky.example")
    cookie = first.headers["set-cookie"].split(";")[0]
    assert cookie.startswith("INGRESSCOOKIE=")
    assert pods(cluster, "sticky.example", "/", 8, "-H", f"Cookie: {cookie}") == {first.pod}
    # Without the cookie, requests spread (and each gets a cookie of its own).
    assert pods(cluster, "sticky.example", "/", 16) == {"foo-0", "foo-1"}


def test_regular_expressions_and_rewrites(cluster):
    reply = request(cluster, "rewrite.example", "/api/users?id=7")
    assert (reply.pod, reply.body["path"]) == ("bar-0", "/users?id=7")
    assert request(cluster, "rewrite.example", "/api").body["path"] == "/"
    assert request(cluster, "rewrite.example", "/other").status == 404


def test_ingresses_of_another_class_are_left_alone(cluster):
    assert request(cluster, "gce.example").status == 404


def test_nginx_follows_the_endpoints(cluster):
    cluster.crash_pod("default/foo-1")
    time.sleep(1.5)  # a reconcile, a render, a graceful reload
    assert pods(cluster, "foo.mydomain.com", "/", 6, scheme="https") == {"foo-0"}
    cluster.crash_pod("default/foo-0")
    time.sleep(1.5)
    assert request(cluster, "foo.mydomain.com", scheme="https").status == 503
