"""Ingress as ingress-nginx reads it: manifests and annotations, which Ingresses it serves, the
servers and locations it makes (kubernetes/ingress-nginx internal/ingress/controller/
controller.go and location.go), and the nginx configuration (golden)."""

from pathlib import Path

import pytest

from kemu.k8s import ingress
from kemu.k8s.endpoints import Endpoint
from kemu.k8s.ingress.nginx_conf import location_match, server_name
from kemu.k8s.ingress.servers import DEFAULT_UPSTREAM, routing
from kemu.scenario import addons
from kemu.scenario.manifests import parse_manifest
from kemu.scenario.objects import IngressClass, Service, ServicePort

GOLDEN = Path(__file__).parents[2] / "golden" / "render"
CLASSES = [addons.INGRESS_CLASS]

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
            for i, n in enumerate(("foo", "bar", "other", "by-exact", "by-prefix"), start=2)]
ENDPOINTS = {(f"default/{n}", "http"): [Endpoint(f"default/{n}-0", f"10.244.0.{i}", "n1", 8080)]
             for i, n in enumerate(("foo", "other", "by-exact", "by-prefix"), start=2)}


def v1(name, paths=(), host="", annotations=None, default=None, class_name="", tls=()):
    spec = {"rules": [{"http": {"paths": [
        {"path": p, "pathType": t, "backend": {"service": {"name": s, "port": {"number": 8080}}}}
        for p, t, s in paths]}, **({"host": host} if host else {})}] if paths else []}
    if default:
        spec["defaultBackend"] = {"service": {"name": default, "port": {"number": 8080}}}
    if class_name:
        spec["ingressClassName"] = class_name
    if tls:
        spec["tls"] = [{"hosts": list(tls), "secretName": "s"}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "annotations": annotations or {}}, "spec": spec}


def parse(*docs):
    out = [parse_manifest(d, "f", "d") for d in docs]
    assert not [p for o in out for p in o.problems], [str(p) for o in out for p in o.problems]
    return [i for o in out for i in o.ingresses]


def locations(*docs, host="_", classes=CLASSES):
    server = next(s for s in routing(parse(*docs), classes).servers if s.host == host)
    return [(location_match(server, loc), loc.upstream.removeprefix("default-")
             .removesuffix("-8080")) for loc in server.locations]


def test_seed_ingress_parses():
    (ing,) = parse_manifest(SEED).ingresses
    assert ing.default_backend.service == "other"
    assert [(r.host, [(p.path, p.path_type, p.backend.service) for p in r.paths])
            for r in ing.rules] == [("foo.mydomain.com", [("/", "ImplementationSpecific", "foo")]),
                                    ("mydomain.com", [("/bar/*", "ImplementationSpecific",
                                                       "bar")])]


def test_the_seeds_glob_is_a_literal_prefix_and_said_so():
    (warning,) = parse_manifest(SEED, "f", "d").warnings
    assert str(warning) == (
        "f: d.spec.rules[1].http.paths[0].path: '/bar/*': ingress-nginx matches "
        "ImplementationSpecific paths as nginx prefixes, so '*' is a literal character here, "
        "not a wildcard (GCE's glob); use pathType Prefix with '/bar/'")
    assert locations(SEED, host="mydomain.com") == [("/bar/*", "bar"), ("/", "other")]


def test_default_backends_as_ingress_nginx_sets_them():
    # An Ingress's defaultBackend is the root of the hosts it names; the default server's
    # root stays the controller's 404 (controller.go createServers)...
    assert locations(SEED) == [("/", DEFAULT_UPSTREAM)]
    assert locations(SEED, host="foo.mydomain.com") == [("/", "foo")]  # its path "/" took it
    # ...unless the Ingress has no rules: then it is the catch-all.
    assert locations(v1("catch-all", default="other")) == [("/", "other")]


def test_exact_beats_prefix_for_the_same_path():
    """The issue's example: /foo Prefix → by-prefix listed before /foo Exact → by-exact;
    ingress-nginx sends GET /foo to by-exact (location.go: no second Exact location)."""
    doc = v1("shop", [("/foo", "Prefix", "by-prefix"), ("/foo", "Exact", "by-exact")])
    assert locations(doc) == [("/foo/", "by-prefix"), ("= /foo", "by-exact"),
                              ("/", DEFAULT_UPSTREAM)]


@pytest.mark.parametrize("path, kind, expected", [
    ("/v1", "Prefix", ["/v1/", "= /v1"]),
    ("/v1/", "Prefix", ["/v1/", "= /v1/"]),  # so /v1 itself is not matched, as upstream
    ("/", "Prefix", ["/"]),
    ("/x", "Exact", ["= /x"]),
    ("/bar/", "ImplementationSpecific", ["/bar/"]),
])
def test_path_types(path, kind, expected):
    found = [m for m, _ in locations(v1("x", [(path, kind, "foo")]))]
    assert found == expected + ([] if path == "/" else ["/"])


def test_the_first_ingress_keeps_a_path_and_locations_go_longest_first():
    first = v1("a", [("/api", "Prefix", "foo"), ("/", "Prefix", "other")])
    second = v1("b", [("/api", "Prefix", "bar"), ("/api/v2/long", "Exact", "bar")])
    assert locations(first, second) == [
        ("= /api/v2/long", "bar"), ("/api/", "foo"), ("= /api", "foo"), ("/", "other")]


def test_use_regex_makes_every_location_of_the_host_a_regular_expression():
    plain = v1("plain", [("/exact", "Exact", "foo")], host="h")
    regex = v1("regex", [("/api/v[0-9]+", "ImplementationSpecific", "bar")], host="h",
               annotations={"nginx.ingress.kubernetes.io/use-regex": "true"})
    assert locations(plain, regex, host="h") == [
        ('~* "^/api/v[0-9]+"', "bar"), ('~* "^/exact"', "foo"), ('~* "^/"', DEFAULT_UPSTREAM)]


def test_wildcard_hosts_match_one_label():
    assert server_name("*.example.com") == r"~^(?<subdomain>[\w-]+)\.example\.com$"
    assert server_name("example.com") == "example.com"


def test_ingress_classes():
    nginx, other = v1("mine", [("/", "Prefix", "foo")], host="a"), \
        v1("theirs", [("/", "Prefix", "bar")], host="b", class_name="gce")
    hosts = [s.host for s in routing(parse(nginx, other), CLASSES).servers]
    assert hosts == ["_", "a"]  # gce's Ingress is not ingress-nginx's
    # A class of our own without the default annotation: Ingresses naming none are ignored.
    not_default = [IngressClass("nginx", addons.INGRESS_CONTROLLER_CLASS)]
    assert [s.host for s in routing(parse(nginx), not_default).servers] == ["_"]
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
           "metadata": {"name": "nginx", "annotations": {
               "ingressclass.kubernetes.io/is-default-class": "true"}},
           "spec": {"controller": "k8s.io/ingress-nginx"}}
    assert parse_manifest(doc).ingress_classes == [addons.INGRESS_CLASS]


def test_a_default_class_of_the_manifests_replaces_kemus():
    """The API server refuses an Ingress naming no class when several are default
    (networking validation); kemu's own nginx class is default only if nothing else is."""
    from kemu.errors import ScenarioError
    from kemu.scenario import parse_scenario

    def scenario(*workloads):
        return {"apiVersion": "kemu/v1", "kind": "Scenario", "metadata": {"name": "t"},
                "cluster": {"nodes": 1, "cni": {"plugin": "flannel-vxlan"},
                            "dns": {"enabled": False}}, "workloads": list(workloads)}

    def default_class(name):
        return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": name, "annotations": {
                    "ingressclass.kubernetes.io/is-default-class": "true"}},
                "spec": {"controller": f"example.com/{name}"}}

    parsed = parse_scenario(scenario(default_class("gce"), v1("x", [("/", "Prefix", "foo")])))
    assert [(c.name, c.default) for c in parsed.ingress_classes] == [("nginx", False),
                                                                      ("gce", True)]
    with pytest.raises(ScenarioError, match="names no IngressClass, and more than one"):
        parse_scenario(scenario(default_class("a"), default_class("b"),
                                v1("x", [("/", "Prefix", "foo")])))
    assert parse_scenario(scenario(default_class("a"), default_class("b"),
                                   v1("x", [("/", "Prefix", "foo")], class_name="nginx")))


def test_annotations_read_as_ingress_nginx_reads_them():
    doc = v1("x", [("/", "Prefix", "foo")], annotations={
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "ten",
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "5",
        "nginx.ingress.kubernetes.io/configuration-snippet": "return 418;",
        "cert-manager.io/cluster-issuer": "letsencrypt"})
    parsed = parse_manifest(doc, "f", "d")
    (ing,) = parsed.ingresses
    assert ing.nginx.canary and ing.nginx.canary_weight == 0 and \
        ing.nginx.proxy_read_timeout == 5
    assert [str(w) for w in parsed.warnings] == [
        "f: d.metadata.annotations.nginx.ingress.kubernetes.io/canary-weight: 'ten' cannot be "
        "read (ingress-nginx ignores it: 0)",
        "f: d.metadata.annotations.nginx.ingress.kubernetes.io/configuration-snippet: kemu "
        "does not emulate this ingress-nginx annotation: ignored"]


def test_the_admission_webhook_refuses_regular_expressions_in_prefix_paths():
    # ingress-nginx internal/ingress/inspector/rules.go (validPathType), strict by default.
    doc = v1("x", [("/api(/|$)(.*)", "Prefix", "foo")])
    assert [str(p) for p in parse_manifest(doc, "f", "d").problems] == [
        "f: d.spec.rules[0].http.paths[0].path: ingress-nginx's admission webhook refuses it: "
        "path /api(/|$)(.*) cannot be used with pathType Prefix (letters, digits and '/_.-' "
        "only; a regular expression needs ImplementationSpecific)"]
    other_class = v1("x", [("/api(/|$)(.*)", "Prefix", "foo")], class_name="gce")
    assert not parse_manifest(other_class).problems


def test_canary_goes_to_the_upstream_of_the_same_host_and_path():
    main = v1("main", [("/", "Prefix", "foo")], host="h")
    canary = v1("canary", [("/", "Prefix", "other")], host="h", annotations={
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
        "nginx.ingress.kubernetes.io/canary-weight": "20"})
    routed = routing(parse(main, canary), CLASSES)
    up = routed.upstreams["default-foo-8080"]
    assert up.canary and up.canary.name == "default-other-8080"
    text = ingress.render(parse(main, canary), CLASSES, SERVICES, ENDPOINTS, Path("/w"),
                          {"": (Path("/c.crt"), Path("/c.key"))})
    assert "split_clients $request_id $kemu_canary_0_weight { 20% default-other-8080; " \
           "* default-foo-8080; }" in text
    assert "map $http_x_canary $kemu_canary_0 { always default-other-8080; never " \
           "default-foo-8080; default $kemu_canary_0_weight; }" in text
    assert "proxy_pass http://$kemu_canary_0;" in text


@pytest.mark.parametrize("weight, total, share", [
    ("20", None, "20%"), ("1", "3", "1%"), ("1", "300", "0.33%"), ("150", "200", "75%"),
    ("1", "100000", "")])
def test_canary_weights_as_balancer_lua_draws_them(weight, total, share):
    """balancer.lua draws from max(100, canary-weight-total); nginx's split_clients takes at
    most two decimals (a third would make nginx refuse the whole configuration)."""
    annotations = {"nginx.ingress.kubernetes.io/canary": "true",
                   "nginx.ingress.kubernetes.io/canary-weight": weight}
    if total:
        annotations["nginx.ingress.kubernetes.io/canary-weight-total"] = total
    docs = (v1("main", [("/", "Prefix", "foo")], host="h"),
            v1("canary", [("/", "Prefix", "other")], host="h", annotations=annotations))
    text = ingress.render(parse(*docs), CLASSES, SERVICES, ENDPOINTS, Path("/w"),
                          {"": (Path("/c.crt"), Path("/c.key"))})
    if share:
        assert f"$kemu_canary_0_weight {{ {share} default-other-8080;" in text
    else:  # below what split_clients can say: no split at all
        assert "split_clients" not in text


def test_nginx_config_matches_golden(golden):
    (ing,) = parse_manifest(SEED).ingresses
    text = ingress.render([ing], CLASSES, SERVICES, ENDPOINTS, Path("/run/kemu/x/ingress"),
                          {"": (Path("/c/default.crt"), Path("/c/default.key"))})
    golden(GOLDEN / "nginx-seed.conf", text)
    assert "location /bar/* {\n      return 503;" in text  # bar has no endpoints


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
