"""The `kemu/cluster-dns` image: the cluster's DNS server (kube-dns/CoreDNS's role).

Serves the records kemu's DNS controller writes to $KEMU_RUN_DIR/dns/records.json (see
kemu/k8s/dns.py), over UDP and TCP, and picks up changes within a tenth of a second. Names outside
the cluster domain are REFUSED: the emulated cluster has no upstream resolver.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnslib import CNAME, QTYPE, RCODE, RR, SRV, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from kemu.images.base import Image, first_port

if TYPE_CHECKING:
    from kemu.scenario.objects import Container


class ClusterDNS(Image):
    name = "kemu/cluster-dns"
    description = "the cluster DNS server (CoreDNS's kubernetes plugin records)"

    @staticmethod
    def entrypoint(container: Container) -> list[str]:
        return [sys.executable, "-m", "kemu.images.cluster_dns",
                "--port", first_port(container, 53)]

TTL = 5


class ClusterResolver(BaseResolver):
    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.mtime = 0.0
        self.checked = 0.0
        self.data: dict[str, Any] = {"domain": "cluster.local.", "A": {}, "SRV": {}, "CNAME": {}}

    def _refresh(self) -> None:
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

    def _known(self, name: str) -> bool:
        """Does the name exist (with any type, or as a parent of one that does)?"""
        tables = (self.data["A"], self.data["SRV"], self.data["CNAME"])
        return any(k == name or k.endswith("." + name) for table in tables for k in table)

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        with self.lock:
            self._refresh()
            reply = request.reply()
            name = str(request.q.qname).lower()
            qtype = QTYPE[request.q.qtype]
            if not (name == self.data["domain"] or name.endswith("." + self.data["domain"])):
                reply.header.rcode = RCODE.REFUSED
                return reply
            target = self.data["CNAME"].get(name)
            if target:
                reply.add_answer(RR(name, QTYPE.CNAME, ttl=TTL, rdata=CNAME(target)))
                return reply
            if qtype in ("A", "ANY"):
                for ip in self.data["A"].get(name, []):
                    reply.add_answer(RR(name, QTYPE.A, ttl=TTL, rdata=A(ip)))
            if qtype in ("SRV", "ANY"):
                for prio, weight, port, host in self.data["SRV"].get(name, []):
                    reply.add_answer(RR(name, QTYPE.SRV, ttl=TTL,
                                        rdata=SRV(prio, weight, port, host)))
                    for ip in self.data["A"].get(host, []):
                        reply.add_ar(RR(host, QTYPE.A, ttl=TTL, rdata=A(ip)))
            if not reply.rr and not self._known(name):
                reply.header.rcode = RCODE.NXDOMAIN
            return reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--records", default=os.path.join(os.environ.get("KEMU_RUN_DIR", "."),
                                                          "dns", "records.json"))
    args = parser.parse_args()
    resolver = ClusterResolver(Path(args.records))
    quiet = DNSLogger(log="-request,-reply,-truncated,-recv,-send,-data", prefix=False)
    servers = [DNSServer(resolver, address="0.0.0.0", port=args.port, tcp=tcp, logger=quiet)
               for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    while all(s.isAlive() for s in servers):
        time.sleep(1)


if __name__ == "__main__":
    main()
