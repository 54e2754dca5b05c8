from pathlib import Path

import pytest

from kemu.k8s import ingress
from kemu.k8s.endpoints import Endpoint
from kemu.scenario.manifests import parse_manifest
from kemu.scenario.objects import Service, ServicePort

GOLDEN = Path(__file__).parents[2] / "golden" / "render"

SEED = {  # the seeds' example
    "apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "my-ingress"},
    "spec": {"backend": {"serviceName": "other", "servicePort": 8080},
             "rules": [{"host": "foo.mydomain.com", "http": {"paths": [
                 {"backend": {"serviceName": "foo", "servicePort": 8080}}]}},
                 {"host": "mydomain.com", "http": {"paths": [
                     {"path": "/bar/*", "backend": {"serviceName": "bar",
                                                   "servicePort": 8080}}]}}]}}
SERVICES = [Service(n, cluster_ip=f"10.96.0.{i}", selector={"app": n},
                    ports=(ServicePort(8080, 8080, name="http"),))
            for i, n in enumerate(("foo", "bar", "other"), start=2)]
ENDPOINTS = {("default/foo", "http"): [Endpoint("default/foo-0", "10.244.0.2", "n1", 8080),
                                       Endpoint("default/foo-1", "10.244.1.2", "n2", 8080)],
             ("default/other", "http"): [Endpoint("default/other-0", "10.244.1.3", "n2", 8080)]}


def test_seed_ingress_parses():
    (ing,) = parse_manifest(SEED).ingresses
    assert ing.default_backend.service == "other"
    assert [(r.host, [(p.path, p.path_type, p.backend.service) for p in r.paths])
            for r in ing.rules] == [("foo.mydomain.com", [("/", "ImplementationSpecific", "foo")]),
                                    ("mydomain.com", [("/bar/*", "ImplementationSpecific",
                                                       "bar")])]


def test_nginx_config_matches_golden(golden):
    (ing,) = parse_manifest(SEED).ingresses
    text = ingress.render([ing], SERVICES, ENDPOINTS, Path("/run/kemu/x/ingress"),
                          {"": (Path("/c/default.crt"), Path("/c/default.key"))})
    golden(GOLDEN / "nginx-seed.conf", text)
    assert "location /bar/ { return 503; }" in text  # bar has no endpoints


@pytest.mark.parametrize("path, kind, locations", [
    ("/v1", "Prefix", ["= /v1", "/v1/"]), ("/v1/", "Prefix", ["= /v1", "/v1/"]),
    ("/", "Prefix", ["/"]), ("/x", "Exact", ["= /x"]),
    ("/bar/*", "ImplementationSpecific", ["/bar/"]),
])
def test_path_types(path, kind, locations):
    assert ingress._locations(path, kind) == locations


def test_ingress_errors():
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x"},
           "spec": {"rules": [{"http": {"paths": [{"path": "v1", "pathType": "Glob",
                                                   "backend": {"service": {"name": "a",
                                                                           "port": {}}}}]}}]}}
    found = [str(p) for p in parse_manifest(doc, "f", "d").problems]
    assert any("d.spec.rules[0].http.paths[0].pathType: must be one of" in p for p in found)
    assert any("d.spec.rules[0].http.paths[0].backend.service.port" in p for p in found)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}
    assert "only kubernetes.io/tls" in str(parse_manifest(secret).problems[0])
