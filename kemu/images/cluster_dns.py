"""The `kemu/cluster-dns` image: the cluster's DNS server, answering as CoreDNS does with the
Corefile kubeadm deploys (kubernetes/kubernetes cmd/kubeadm/app/phases/addons/dns):

    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure; fallthrough in-addr.arpa ip6.arpa; ttl 30 }
    forward . /etc/resolv.conf
    cache 30 { disable success cluster.local; disable denial cluster.local }
    loadbalance

- kubernetes: the records kemu's DNS controller writes to $KEMU_RUN_DIR/dns/records.json
  (kemu/k8s/dns.py), picked up within a tenth of a second (CoreDNS watches the API). Answers
  are authoritative. `a-b-c-d.<ns>.pod.<domain>` answers a.b.c.d for any namespace that exists
  (`pods insecure`). A name that does not exist is NXDOMAIN, one that exists with other types
  NODATA (NOERROR, no answer), both with the zone's SOA (ns.dns.<domain>,
  hostmaster.<domain>, serial the last change, minimum the TTL: coredns plugin/backend_lookup.go).
  An ExternalName is a CNAME, followed by its target's addresses, looked up as any name.
  Reverse names not in the records fall through to forward.
- forward: every other name to the nameservers of this pod's /etc/resolv.conf (CoreDNS runs
  with dnsPolicy Default: the node's resolver), SERVFAIL when none answers within 5 s.
- cache: an answer for a name outside the cluster domain (forwarded, or reverse) is kept for
  its smallest TTL, at most `cache` seconds (denials: the SOA's minimum), and served meanwhile
  with every TTL counting down (CoreDNS's: the original TTL less the whole seconds passed); a
  SERVFAIL for 5 s. Names in the cluster domain are never cached (kubeadm ≥ 1.32 disables it:
  a change to a Service is answered at once).
- loadbalance: address records shuffled in every answer.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import itertools
import json
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnslib import CNAME, PTR, QTYPE, RCODE, RR, SOA, SRV, A, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from kemu.images.base import Image, first_port

if TYPE_CHECKING:
    from kemu.scenario.objects import Container


class ClusterDNS(Image):
    name = "kemu/cluster-dns"
    description = "the cluster DNS server (CoreDNS with kubeadm's Corefile)"

    @staticmethod
    def entrypoint(container: Container) -> list[str]:
        return [sys.executable, "-m", "kemu.images.cluster_dns",
                "--port", first_port(container, 53)]


REVERSE_ZONES = ("in-addr.arpa.", "ip6.arpa.")
FORWARD_TIMEOUT_S = 5.0  # the forward plugin's overall deadline
SERVFAIL_CACHE_S = 5  # the cache plugin's `servfail` default
CACHE_SIZE = 9984  # the cache plugin's default capacity
ADDRESS_TYPES = (QTYPE.A, QTYPE.AAAA)


def nameservers(resolv_conf: str) -> list[str]:
    return [line.split()[1] for line in resolv_conf.splitlines()
            if line.startswith("nameserver") and len(line.split()) > 1]


def forwarder(servers: list[str]) -> Callable[[DNSRecord], DNSRecord | None]:
    """A query sent to the servers in turn until one answers, within FORWARD_TIMEOUT_S."""
    def forward(request: DNSRecord) -> DNSRecord | None:
        deadline = time.monotonic() + FORWARD_TIMEOUT_S
        for server in itertools.cycle(servers) if servers else ():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                return DNSRecord.parse(request.send(server, 53, timeout=min(2.0, left)))
            except (OSError, DNSError):
                continue
        return None
    return forward


class Zone:
    """The records file, re-read when it changes."""

    def __init__(self, path: Path):
        self.path = path
        self.mtime = 0.0
        self.checked = 0.0
        self.data: dict[str, Any] = {"domain": "cluster.local.", "namespaces": [], "A": {},
                                     "SRV": {}, "CNAME": {}, "PTR": {}, "ttl": 30, "cache": 30}

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self.checked < 0.05:
            return
        self.checked = now
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self.mtime:
                self.data, self.mtime = json.loads(self.path.read_text()), mtime
        except (OSError, ValueError):
            pass  # keep serving the last good records

    @property
    def domain(self) -> str:
        return str(self.data["domain"])

    @property
    def ttl(self) -> int:
        return int(self.data.get("ttl", 30))

    def holds(self, name: str) -> bool:
        return name == self.domain or name.endswith("." + self.domain)

    def soa(self) -> RR:
        return RR(self.domain, QTYPE.SOA, ttl=min(self.ttl, 300), rdata=SOA(
            "ns.dns." + self.domain, "hostmaster." + self.domain,
            (int(self.mtime), 7200, 1800, 86400, self.ttl)))

    def pod_address(self, name: str) -> str | None:
        """`pods insecure`: the address a pod name spells, in a namespace that exists."""
        match = re.fullmatch(r"(\d+-\d+-\d+-\d+)\.([^.]+)\.pod\." + re.escape(self.domain), name)
        if not match or match.group(2) not in self.data["namespaces"]:
            return None
        try:
            return str(ipaddress.IPv4Address(match.group(1).replace("-", ".")))
        except ValueError:
            return None

    def exists(self, name: str) -> bool:
        """Does the name exist (with any type, or as a parent of one that does)?"""
        tables = (self.data["A"], self.data["SRV"], self.data["CNAME"])
        return name == self.domain or self.pod_address(name) is not None or \
            any(k == name or k.endswith("." + name) for table in tables for k in table)


class ClusterResolver(BaseResolver):
    """CoreDNS's plugin chain for one query: loadbalance(cache(kubernetes | forward))."""

    def __init__(self, zone: Zone, forward: Callable[[DNSRecord], DNSRecord | None],
                 clock: Callable[[], float] = time.monotonic):
        self.zone, self.forward, self.clock = zone, forward, clock
        self.lock = threading.Lock()
        self.cache: dict[tuple[str, int], tuple[float, int, DNSRecord]] = {}  # when, for how long

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        name = str(request.q.qname).lower()
        key = (name, request.q.qtype)
        with self.lock:
            self.zone.refresh()
            cap = 0 if self.zone.holds(name) else int(self.zone.data.get("cache", 30))
            stored, keep, cached = self.cache.get(key, (0.0, 0, None))
        now = self.clock()
        left = keep - int(now - stored)
        if cached is not None and left > 0:
            reply = copy.deepcopy(cached)
            for rr in (*reply.rr, *reply.auth, *reply.ar):
                rr.ttl = left
        else:
            reply = self.answer(request)
            keep = min(cap, self._lifetime(reply))
            if keep > 0:
                for rr in (*reply.rr, *reply.auth, *reply.ar):
                    rr.ttl = keep
                with self.lock:
                    if len(self.cache) >= CACHE_SIZE:
                        self.cache.pop(next(iter(self.cache)))  # the oldest entry
                    self.cache[key] = (now, keep, copy.deepcopy(reply))
        reply.header.id = request.header.id
        reply.questions = request.questions
        return shuffled(reply)

    @staticmethod
    def _lifetime(reply: DNSRecord) -> int:
        if reply.header.rcode == RCODE.SERVFAIL:
            return SERVFAIL_CACHE_S
        if reply.rr:
            return min(rr.ttl for rr in (*reply.rr, *reply.auth, *reply.ar))
        soa = [rr for rr in reply.auth if rr.rtype == QTYPE.SOA]
        return min(soa[0].ttl, soa[0].rdata.times[4]) if soa else 0

    def answer(self, request: DNSRecord) -> DNSRecord:
        name = str(request.q.qname).lower()
        if self.zone.holds(name):
            return self._kubernetes(request, name, request.q.qtype)
        if name.endswith(REVERSE_ZONES) and name in self.zone.data["PTR"] and \
                request.q.qtype in (QTYPE.PTR, QTYPE.ANY):
            reply = request.reply()
            reply.add_answer(RR(request.q.qname, QTYPE.PTR, ttl=self.zone.ttl,
                                rdata=PTR(self.zone.data["PTR"][name])))
            return reply
        return self._forward(request)  # and `fallthrough in-addr.arpa ip6.arpa`

    def _forward(self, request: DNSRecord) -> DNSRecord:
        upstream = self.forward(request)
        if upstream is None:
            reply = request.reply(ra=1, aa=0)
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        return upstream

    def _kubernetes(self, request: DNSRecord, name: str, qtype: int) -> DNSRecord:
        data, ttl, qname = self.zone.data, self.zone.ttl, request.q.qname
        reply = request.reply()  # authoritative, as CoreDNS answers for its zones
        target = data["CNAME"].get(name)
        if target:
            reply.add_answer(RR(qname, QTYPE.CNAME, ttl=ttl, rdata=CNAME(target)))
            if qtype in ADDRESS_TYPES:
                chased = DNSRecord.question(target, QTYPE[qtype])
                reply.rr += (self._kubernetes(chased, target, qtype) if self.zone.holds(target)
                             else self._forward(chased)).rr
            return reply
        pod = self.zone.pod_address(name)
        if qtype in (QTYPE.A, QTYPE.ANY):
            for ip in data["A"].get(name, []) or ([pod] if pod else []):
                reply.add_answer(RR(qname, QTYPE.A, ttl=ttl, rdata=A(ip)))
        if qtype in (QTYPE.SRV, QTYPE.ANY):
            for prio, weight, port, host in data["SRV"].get(name, []):
                reply.add_answer(RR(qname, QTYPE.SRV, ttl=ttl, rdata=SRV(prio, weight, port, host)))
                for ip in data["A"].get(host, []):
                    reply.add_ar(RR(host, QTYPE.A, ttl=ttl, rdata=A(ip)))
        if qtype == QTYPE.SOA and name == self.zone.domain:
            reply.add_answer(self.zone.soa())
        if not reply.rr:
            if not self.zone.exists(name):
                reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self.zone.soa())
        return reply


def shuffled(reply: DNSRecord) -> DNSRecord:
    """The loadbalance plugin: address records in random order after the others."""
    addresses = [rr for rr in reply.rr if rr.rtype in ADDRESS_TYPES]
    if len(addresses) > 1:
        random.shuffle(addresses)
        reply.rr = [rr for rr in reply.rr if rr.rtype not in ADDRESS_TYPES] + addresses
    return reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--records", default=os.path.join(os.environ.get("KEMU_RUN_DIR", "."),
                                                          "dns", "records.json"))
    parser.add_argument("--resolv-conf", default="/etc/resolv.conf")
    args = parser.parse_args()
    try:
        servers = nameservers(Path(args.resolv_conf).read_text())
    except OSError:
        servers = []
    resolver = ClusterResolver(Zone(Path(args.records)), forwarder(servers))
    quiet = DNSLogger(log="-request,-reply,-truncated,-recv,-send,-data", prefix=False)
    dns_servers = [DNSServer(resolver, address="0.0.0.0", port=args.port, tcp=tcp, logger=quiet)
                   for tcp in (False, True)]
    for server in dns_servers:
        server.start_thread()
    while all(s.isAlive() for s in dns_servers):
        time.sleep(1)


if __name__ == "__main__":
    main()
