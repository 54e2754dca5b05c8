"""Built-in container images: what runs inside a pod when a manifest names one of these images.

kemu does not pull images; a container is a host program started inside the pod's network
namespace. An image name maps to a command line here, or the manifest gives `command` itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from kemu.objects import Container


def _first_port(container: Container, default: int) -> str:
    return str(container.ports[0].container_port if container.ports else default)


IMAGES: dict[str, tuple[str, Callable[[Container], list[str]]]] = {
    "kemu/http-echo": (
        "HTTP server that answers every request with JSON: pod, client address, path",
        lambda c: [sys.executable, "-m", "kemu.workloads.http_echo",
                   "--port", _first_port(c, 8080)],
    ),
    "kemu/iperf3": (
        "iperf3 server",
        lambda c: ["iperf3", "--server", "--port", _first_port(c, 5201)],
    ),
    "kemu/cluster-dns": (
        "the cluster DNS server (CoreDNS's kubernetes plugin records)",
        lambda c: [sys.executable, "-m", "kemu.workloads.cluster_dns",
                   "--port", _first_port(c, 53)],
    ),
    "kemu/ingress-nginx": (
        "the ingress controller: nginx on the configuration kemu renders from Ingress objects",
        lambda c: [sys.executable, "-m", "kemu.workloads.ingress_nginx"],
    ),
    "kemu/sleep": (
        "does nothing; the pod is only its network namespace",
        lambda c: ["sleep", "infinity"],
    ),
}


def known_images() -> list[str]:
    return sorted(IMAGES)


def container_argv(container: Container) -> list[str]:
    """The command line that stands for this container, as kubelet would run it:
    `command` replaces the image's entrypoint, `args` are appended."""
    if container.command:
        return [*container.command, *container.args]
    _, entrypoint = IMAGES[container.image]
    return [*entrypoint(container), *container.args]
