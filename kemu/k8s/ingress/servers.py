"""What ingress-nginx makes of Ingress objects before it writes nginx's configuration (pure):
which Ingresses it serves, the servers (one per host, and the default server `_`), their
locations, and the upstreams with their canaries and session affinity. It follows
kubernetes/ingress-nginx internal/ingress/controller/controller.go (createServers,
getBackendServers, mergeAlternativeBackends) and location.go (updateServerLocations):

- It serves the Ingresses of its IngressClass (controller k8s.io/ingress-nginx), named by
  `spec.ingressClassName` or the older `kubernetes.io/ingress.class` annotation, and those
  naming no class when its class is the default one; oldest first (kemu: in creation order).
- Every server starts with a root location `/` sending to a default backend: the Ingress's
  `defaultBackend` for the hosts it names first, else the controller's (404). An Ingress with
  a default backend and no rules takes over the default server's root.
- A path adds a location; the same path of the same type again is ignored (the first Ingress
  keeps it), except on a root location from a default backend, which it takes over.
- A Prefix path `/p` (unless its Ingress rewrites or uses regular expressions) becomes `/p/`
  and, unless an Exact `/p` exists, an Exact `/p` too: element-wise matching, Exact winning.
- A canary Ingress adds an alternative backend to the upstream of the location with its host,
  path and path type (only the first canary of an upstream is used); session affinity is set
  on an upstream by the first Ingress using it that asks for it.
- Locations are ordered longest path first, then by path, descending: the order nginx tries
  regular expressions in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kemu.scenario.addons import INGRESS_CONTROLLER_CLASS as CONTROLLER
from kemu.scenario.objects import (
    Ingress,
    IngressBackend,
    IngressClass,
    NginxAnnotations,
    ingress_class,
)

DEFAULT_SERVER = "_"
DEFAULT_UPSTREAM = ""  # the controller's own default backend: 404 for everything
DEFAULTS = NginxAnnotations()  # the controller's ConfigMap defaults


@dataclass
class Location:
    path: str
    path_type: str  # Exact | Prefix | ImplementationSpecific
    upstream: str  # an upstream's name, or DEFAULT_UPSTREAM
    ingress: Ingress | None = None  # whose annotations apply (None: the controller's)
    is_default: bool = False  # a root location from a default backend

    @property
    def nginx(self) -> NginxAnnotations:
        return self.ingress.nginx if self.ingress else DEFAULTS

    @property
    def rewrites(self) -> bool:
        """ingress-nginx's needsRewrite: a rewrite-target other than the path itself."""
        target = self.nginx.rewrite_target
        return bool(target) and target != self.path


@dataclass
class Server:
    host: str  # a DNS name, `*.` and one (one label matched), or DEFAULT_SERVER
    locations: list[Location]
    tls: bool = False  # named in an Ingress's `tls`

    @property
    def regex(self) -> bool:
        """enforceRegexModifier: one location of the server rewriting or using regular
        expressions makes every location of the server a regular expression."""
        return any(loc.rewrites or loc.nginx.use_regex for loc in self.locations)


@dataclass
class Upstream:
    name: str  # <namespace>-<service>-<port>, as ingress-nginx names it
    namespace: str
    backend: IngressBackend
    affinity: NginxAnnotations | None = None  # the annotations that asked for cookie affinity
    canary: Upstream | None = None
    shaping: NginxAnnotations = DEFAULTS  # a canary's: weight, header, cookie


@dataclass
class Routing:
    """The servers (the default one first, then by host) and upstreams by name."""

    servers: list[Server]
    upstreams: dict[str, Upstream] = field(default_factory=dict)


def upstream_name(namespace: str, backend: IngressBackend) -> str:
    return f"{namespace}-{backend.service}-{backend.port}"


def serves(ingress: Ingress, classes: list[IngressClass]) -> bool:
    """Whether ingress-nginx serves the Ingress: its class is one of ingress-nginx's."""
    cls = ingress_class(ingress, classes)
    return cls is not None and cls.controller == CONTROLLER


def _same_location(loc: Location, path: str, path_type: str) -> bool:
    # A root path of either prefix kind is the same nginx location as a default root
    # (ingress-nginx issue 9569: it must not become a duplicate `location /`).
    prefixes = ("Prefix", "ImplementationSpecific")
    return loc.path == path and (loc.path_type == path_type or
                                 path == "/" and {loc.path_type, path_type} <= set(prefixes))


def routing(ingresses: list[Ingress], classes: list[IngressClass]) -> Routing:
    mine = [ing for ing in ingresses if serves(ing, classes)]
    primary = [ing for ing in mine if not ing.nginx.canary]
    upstreams: dict[str, Upstream] = {}

    def upstream(ing: Ingress, backend: IngressBackend) -> str:
        name = upstream_name(ing.namespace, backend)
        upstreams.setdefault(name, Upstream(name, ing.namespace, backend))
        return name

    servers = {DEFAULT_SERVER: Server(DEFAULT_SERVER, [
        Location("/", "Prefix", DEFAULT_UPSTREAM, is_default=True)])}
    for ing in primary:
        default = upstream(ing, ing.default_backend) if ing.default_backend else \
            DEFAULT_UPSTREAM
        root = servers[DEFAULT_SERVER].locations[0]
        if ing.default_backend and not ing.rules and root.is_default:
            root.upstream, root.ingress, root.is_default = default, ing, False
        for rule in ing.rules:
            host = rule.host or DEFAULT_SERVER
            if host not in servers:
                servers[host] = Server(host, [Location("/", "Prefix", default, ing,
                                                       is_default=True)])
    for ing in primary:
        for hosts, _ in ing.tls:
            for host in hosts:
                if host in servers:
                    servers[host].tls = True
        for rule in ing.rules:
            server = servers[rule.host or DEFAULT_SERVER]
            for p in rule.paths:
                name = upstream(ing, p.backend)
                same = next((loc for loc in server.locations
                             if _same_location(loc, p.path, p.path_type)), None)
                if same is None:
                    server.locations.append(Location(p.path, p.path_type, name, ing))
                elif same.is_default:
                    same.upstream, same.ingress, same.is_default = name, ing, False
                if ing.nginx.affinity == "cookie" and upstreams[name].affinity is None:
                    upstreams[name].affinity = ing.nginx
    for ing in mine:
        if ing.nginx.canary:
            _merge_canary(ing, servers, upstreams)
    for server in servers.values():
        server.locations = _sorted(_expand_prefixes(server.locations))
    ordered = [servers.pop(DEFAULT_SERVER)] + [servers[h] for h in sorted(servers)]
    return Routing(ordered, upstreams)


def _merge_canary(ing: Ingress, servers: dict[str, Server],
                  upstreams: dict[str, Upstream]) -> None:
    """A canary Ingress's backends become the alternative of the upstreams its host and
    path (and type) already send to."""
    def add(primary: str, backend: IngressBackend) -> None:
        name = upstream_name(ing.namespace, backend)
        if primary == DEFAULT_UPSTREAM or primary == name or upstreams[primary].canary:
            return
        upstreams[primary].canary = Upstream(name, ing.namespace, backend, shaping=ing.nginx)

    if ing.default_backend:
        for loc in servers[DEFAULT_SERVER].locations:
            add(loc.upstream, ing.default_backend)
    for rule in ing.rules:
        server = servers.get(rule.host or DEFAULT_SERVER)
        for p in rule.paths if server else ():
            for loc in server.locations if server else ():
                if loc.path == p.path and loc.path_type == p.path_type:
                    add(loc.upstream, p.backend)


def _expand_prefixes(locations: list[Location]) -> list[Location]:
    """updateServerLocations: Prefix `/p` → `/p/` plus an Exact `/p` (if none exists)."""
    exact = {loc.path for loc in locations if loc.path_type == "Exact"}
    out: list[Location] = []
    for loc in locations:
        if loc.path == "/" or loc.path_type != "Prefix" or loc.rewrites or \
                loc.nginx.use_regex:
            out.append(loc)
            continue
        prefix = Location(loc.path if loc.path.endswith("/") else loc.path + "/", "Prefix",
                          loc.upstream, loc.ingress, loc.is_default)
        out.append(prefix)
        if loc.path not in exact:
            out.append(Location(loc.path, "Exact", loc.upstream, loc.ingress, loc.is_default))
    return out


def _sorted(locations: list[Location]) -> list[Location]:
    by_path = sorted(locations, key=lambda loc: loc.path, reverse=True)
    return sorted(by_path, key=lambda loc: len(loc.path), reverse=True)
