"""Client side of kemu's http, dns and tcp-connect measurements, run inside a pod or node: one
process makes all the requests and prints one JSON line per request.

  probe http URL --count N   a new TCP connection per request (so a Service balances each);
                             reports latency, status and, from kemu/http-echo, which pod
                             answered and the client address it saw
  probe dns NAME --count N   resolves with the system resolver (the pod's resolv.conf, its
                             search path and ndots), as an application would
  probe tcp IP:PORT --count N  opens and closes TCP connections; latency is the connect time
                             (SYN sent → connection established), an error says why not
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import time
import urllib.parse


def http_requests(url: str, count: int, timeout: float, interval: float = 0.0,
                  host: str = "") -> None:
    parts = urllib.parse.urlsplit(url)
    begin = time.monotonic()
    for i in range(count):
        if interval:  # paced: request i starts at i * interval, however long the others took
            time.sleep(max(0.0, begin + i * interval - time.monotonic()))
        started = time.perf_counter()
        record: dict[str, object] = {"t": round(time.time(), 4)}
        try:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80,
                                              timeout=timeout)
            headers = {"Connection": "close", **({"Host": host} if host else {})}
            conn.request("GET", parts.path or "/", headers=headers)
            response = conn.getresponse()
            body = response.read()
            record["status"] = response.status
            try:
                echo = json.loads(body)
                record.update(pod=echo.get("pod"), client=echo.get("client"))
            except ValueError:
                pass
            conn.close()
        except OSError as e:
            record["error"] = str(e) or type(e).__name__
        record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        print(json.dumps(record), flush=True)


def dns_lookups(name: str, count: int) -> None:
    for _ in range(count):
        started = time.perf_counter()
        record: dict[str, object] = {"t": round(time.time(), 4)}
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
            record["addresses"] = sorted({info[4][0] for info in infos})
        except socket.gaierror as e:
            if e.errno == socket.EAI_NONAME:  # an answer: the name does not exist (NXDOMAIN)
                record["addresses"] = ["NXDOMAIN"]
            else:  # no answer: a timeout, a server failure
                record["error"] = e.strerror
        record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        print(json.dumps(record), flush=True)


def tcp_connects(address: str, count: int, timeout: float, interval: float = 0.0) -> None:
    host, _, port = address.rpartition(":")
    begin = time.monotonic()
    for i in range(count):
        if interval:
            time.sleep(max(0.0, begin + i * interval - time.monotonic()))
        record: dict[str, object] = {"t": round(time.time(), 4)}
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        started = time.perf_counter()
        try:
            sock.connect((host, int(port)))
            record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        except OSError as e:
            record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            record["error"] = (e.strerror or str(e) or type(e).__name__) \
                if not isinstance(e, TimeoutError) else "timed out"
        finally:
            sock.close()
        print(json.dumps(record), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    web = sub.add_parser("http")
    web.add_argument("url")
    web.add_argument("--count", type=int, default=1)
    web.add_argument("--timeout", type=float, default=2.0)
    web.add_argument("--interval", type=float, default=0.0)
    web.add_argument("--host", default="", help="Host header (an Ingress host)")
    name = sub.add_parser("dns")
    name.add_argument("name")
    name.add_argument("--count", type=int, default=1)
    tcp = sub.add_parser("tcp")
    tcp.add_argument("address", help="IP:PORT")
    tcp.add_argument("--count", type=int, default=1)
    tcp.add_argument("--timeout", type=float, default=1.0)
    tcp.add_argument("--interval", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.kind == "http":
        http_requests(args.url, args.count, args.timeout, args.interval, args.host)
    elif args.kind == "tcp":
        tcp_connects(args.address, args.count, args.timeout, args.interval)
    else:
        dns_lookups(args.name, args.count)


if __name__ == "__main__":
    main(sys.argv[1:])
