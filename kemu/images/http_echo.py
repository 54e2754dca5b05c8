"""The `kemu/http-echo` image: answers every HTTP request with a small JSON document naming the
pod that served it and the client address it saw (so tests and users can check load balancing
and source-IP preservation), on every TCP port the container declares (8080 if it declares
none), and echoes every datagram back on every UDP port it declares.

The same program is kemu's stand-in for images it has no program for (stand_in.py)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from kemu.images.base import Image

if TYPE_CHECKING:
    from kemu.scenario.objects import Container


class HttpEcho(Image):
    name = "kemu/http-echo"
    description = "HTTP server that answers every request with JSON: pod, client address, path"

    @staticmethod
    def entrypoint(container: Container) -> list[str]:
        return serving(container, default=8080)


def serving(container: Container, default: int | None = None) -> list[str]:
    """This program, on the container's declared ports (or `default`, for TCP, if none)."""
    argv = [sys.executable, "-m", "kemu.images.http_echo"]
    for port in container.ports:
        if port.protocol in ("TCP", "UDP"):
            argv += ["--udp" if port.protocol == "UDP" else "--port", str(port.container_port)]
    if not container.ports and default:
        argv += ["--port", str(default)]
    return argv


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; on a kept-alive connection Nagle would hold the
    # body until the client's delayed ACK (~40 ms a request under wrk), so do as web servers
    # do and send at once.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.dumps({
            "pod": os.environ.get("POD_NAME", socket.gethostname()),
            "namespace": os.environ.get("POD_NAMESPACE", ""),
            "client": self.client_address[0],
            "client_port": self.client_address[1],
            "path": self.path,
            "host": self.headers.get("Host", ""),
        }).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # one line per request would swamp the pod log under load


def echo_datagrams(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        data, peer = sock.recvfrom(65535)
        sock.sendto(data, peer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, action="append", default=[], help="TCP: HTTP")
    parser.add_argument("--udp", type=int, action="append", default=[], help="UDP: echo")
    args = parser.parse_args()
    ThreadingHTTPServer.allow_reuse_address = True
    servers = [ThreadingHTTPServer(("0.0.0.0", port), EchoHandler) for port in args.port]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    threads += [threading.Thread(target=echo_datagrams, args=(port,), daemon=True)
                for port in args.udp]
    for thread in threads:
        thread.start()
    threading.Event().wait()  # until the container is stopped


if __name__ == "__main__":
    main()
