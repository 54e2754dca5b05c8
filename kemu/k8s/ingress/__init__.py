"""The ingress controller, as ingress-nginx: which Ingresses it serves and how it routes them
(servers.py), the nginx configuration that amounts to (nginx_conf.py), and the controller
that writes it as the cluster changes. The certificates it serves: kemu/kernel/certs.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kemu.k8s.controllers import View
from kemu.k8s.ingress import nginx_conf
from kemu.k8s.ingress.nginx_conf import Endpoints
from kemu.k8s.ingress.servers import routing
from kemu.scenario.objects import Ingress, IngressClass, Secret, Service

# (Ingresses, Secrets) → certificate and key files per TLS host ("": the default server's)
Certify = Callable[[list[Ingress], list[Secret]], dict[str, tuple[Path, Path]]]


def render(ingresses: list[Ingress], classes: list[IngressClass], services: list[Service],
           endpoints: Endpoints, workdir: Path, certs: dict[str, tuple[Path, Path]]) -> str:
    """The nginx configuration for these objects; `certs`: host → (certificate, key), ""
    the default certificate."""
    return nginx_conf.render(routing(ingresses, classes), services, endpoints, workdir, certs)


class IngressController:
    """The ingress controller's nginx configuration from the view, to `write`; the TLS
    certificates made again (`certify`) when the Ingresses or Secrets change."""

    def __init__(self, workdir: Path, certify: Certify, write: Callable[[str], None]):
        self.workdir, self.certify, self.write = workdir, certify, write
        self.certified: tuple[list[Ingress], list[Secret]] | None = None
        self.certs: dict[str, tuple[Path, Path]] = {}

    def sync(self, view: View) -> None:
        if self.certified != (view.ingresses, view.secrets):
            self.certs = self.certify(view.ingresses, view.secrets)
            self.certified = (view.ingresses, view.secrets)
        self.write(render(view.ingresses, view.ingress_classes, view.services, view.endpoints,
                          self.workdir, self.certs))
