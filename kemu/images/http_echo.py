"""The `kemu/http-echo` image: answers every HTTP request with a small JSON document naming the
pod that served it and the client address it saw (so tests and users can check load balancing
and source-IP preservation)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from kemu.images.base import Image, first_port

if TYPE_CHECKING:
    from kemu.scenario.objects import Container


class HttpEcho(Image):
    name = "kemu/http-echo"
    description = "HTTP server that answers every request with JSON: pod, client address, path"

    @staticmethod
    def entrypoint(container: Container) -> list[str]:
        return [sys.executable, "-m", "kemu.images.http_echo",
                "--port", first_port(container, 8080)]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer(("0.0.0.0", args.port), EchoHandler).serve_forever()


if __name__ == "__main__":
    main()
