"""The outside world's DNS server: the resolver of the nodes' network, which CoreDNS forwards
to and dnsPolicy Default pods ask. It answers the names the scenario declares (each external
host as `<host>.<external domain>`, and `cluster.dns.upstream.records`) and NXDOMAIN for the
rest, as the internet answers for a name nobody registered; each answer leaves after
`--latency-ms`, and a `--failure-rate` share of queries fails: unanswered (`timeout`) or
SERVFAIL.

Run as `python -m kemu.edge.upstream_dns --records FILE` (JSON: name → [IPv4, …]).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, RR, SOA, A, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

TTL = 300  # what a zone on the internet typically gives its records


class UpstreamResolver(BaseResolver):
    def __init__(self, records: dict[str, list[str]], latency_ms: float = 0.0,
                 failure_rate: float = 0.0, failure_mode: str = "timeout",
                 draw: Callable[[], float] = random.random):
        self.records = {name.lower(): ips for name, ips in records.items()}
        self.latency_s, self.failure_rate, self.failure_mode = \
            latency_ms / 1000, failure_rate, failure_mode
        self.draw = draw

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        time.sleep(self.latency_s)  # each query in a thread of its own: they overlap
        reply = request.reply(ra=1, aa=0)
        if self.draw() < self.failure_rate:
            if self.failure_mode == "timeout":
                raise DNSError("dropped (failure-rate)")  # the server sends nothing
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        name = str(request.q.qname).lower()
        ips = self.records.get(name)
        if ips is None:
            reply.header.rcode = RCODE.NXDOMAIN
        if request.q.qtype in (QTYPE.A, QTYPE.ANY):
            for ip in ips or ():
                reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=TTL, rdata=A(ip)))
        if not reply.rr:  # a denial carries the SOA a resolver caches it by
            reply.add_auth(RR(".", QTYPE.SOA, ttl=86400, rdata=SOA(
                "a.root-servers.net.", "nstld.verisign-grs.com.", (1, 1800, 900, 604800, 86400))))
        return reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", required=True)
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--failure-mode", choices=("timeout", "servfail"), default="timeout")
    args = parser.parse_args()
    resolver = UpstreamResolver(json.loads(Path(args.records).read_text()), args.latency_ms,
                                args.failure_rate, args.failure_mode)
    quiet = DNSLogger(log="-request,-reply,-truncated,-recv,-send,-data,-error", prefix=False)
    servers = [DNSServer(resolver, address="0.0.0.0", port=args.port, tcp=tcp, logger=quiet)
               for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    print("ready", flush=True)  # listening
    while all(s.isAlive() for s in servers):
        time.sleep(1)


if __name__ == "__main__":
    main()
