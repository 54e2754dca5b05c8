"""kube-proxy's hold on a node's kernel: what kemu/k8s/kube_proxy decides, done in the node.

- `setup`: route_localnet on (node ports answer on 127.0.0.1, as kube-proxy's
  --iptables-localhost-nodeports does; KUBE-FIREWALL guards it);
- `Conntrack`: `conntrack -D` with each filter, in the node (finding nothing is no error);
- `HealthServers`: HTTP servers listening in the node (kube-proxy's :10256, the health check
  node ports), served by threads of kemu's own process: the sockets are opened inside the
  node's namespace (`call_in`) and keep answering from there.
"""

from __future__ import annotations

import socket
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kemu.errors import CommandError
from kemu.k8s.kube_proxy import Handler, KubeProxy
from kemu.kernel.exec import Netns, call_in, run
from kemu.kernel.iptables import ChainSet
from kemu.kernel.node import K8sNode
from kemu.scenario.model import Timing


def setup(node: K8sNode, cluster_cidr: str, chains: ChainSet, timing: Timing,
          zone: str = "") -> KubeProxy:
    """A node's kube-proxy (in `zone`), writing to `chains` (installed) when `timing` says,
    its kernel prepared."""
    node.run("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
    return KubeProxy(node.name, node.IP(), cluster_cidr, chains, Conntrack(node.netns),
                     HealthServers(node.netns), timing.sync_s, timing.min_sync_s, zone)


POLL_S = 0.1  # how soon a server notices it is to stop


class Conntrack:
    def __init__(self, where: Netns):
        self.where = where

    def delete(self, filters: list[list[str]]) -> None:
        for f in filters:
            argv = ["conntrack", "-D", *f]
            result = run(self.where, argv, check=False)
            if not result.ok and "0 flow entries" not in result.stderr:
                raise CommandError(argv, result.returncode, result.stderr, self.where.label)


class _Answering(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Go's server
    timeout = 5  # an idle kept-alive connection is closed (its socket holds the namespace)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status, headers, body = self.server.handler(self.path)  # type: ignore[attr-defined]
        data = body.encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (its signature)
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, handler: Handler):
        super().__init__(sock.getsockname(), _Answering, bind_and_activate=False)
        self.socket.close()
        self.socket, self.handler = sock, handler


class HealthServers:
    """The node's HTTP health servers, one per port, opened and closed as asked."""

    def __init__(self, where: Netns):
        self.where = where
        self.servers: dict[int, _Server] = {}
        self.lock = threading.Lock()

    def serve(self, handlers: dict[int, Handler]) -> None:
        with self.lock:
            for port in set(self.servers) - set(handlers):
                self._close(self.servers.pop(port))
            for port, handler in handlers.items():
                if port in self.servers:
                    self.servers[port].handler = handler
                    continue
                sock = call_in(self.where, partial(socket.create_server, ("0.0.0.0", port)))
                server = self.servers[port] = _Server(sock, handler)
                threading.Thread(target=server.serve_forever, args=(POLL_S,),
                                 name=f"kube-proxy:{port}", daemon=True).start()

    @staticmethod
    def _close(server: _Server) -> None:
        server.shutdown()
        server.server_close()  # the socket holds the node's namespace: it must go
