"""The add-ons' files: the cluster DNS server reads its records from <run>/dns/records.json,
the ingress controller its nginx configuration from <run>/ingress/nginx.conf (and the
certificates beside it); both pick up a file when it changes."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from kemu.files import write_atomic
from kemu.k8s.dns import DNSRecords
from kemu.k8s.ingress import IngressController, render
from kemu.kernel.certs import write_certificates
from kemu.kernel.records import RunState
from kemu.scenario.model import Scenario


class FileSink:
    """A file another process reads while it changes: written whole, and only when what is
    written differs (a rewrite would make nginx reload for nothing)."""

    def __init__(self, path: Path):
        self.path = path
        self.text: str | None = None

    def __call__(self, text: str) -> None:
        if text != self.text:
            write_atomic(self.path, text)
            self.text = text


def dns_records(scenario: Scenario, state: RunState) -> DNSRecords:
    return DNSRecords(scenario.dns, FileSink(state.dir / "dns" / "records.json"))


def ingress_controller(scenario: Scenario, state: RunState) -> IngressController:
    """The controller, with a first configuration without endpoints (nginx starts on it,
    before the Services are programmed)."""
    directory = state.dir / "ingress"
    certify = partial(write_certificates, directory=directory / "certs")
    sink = FileSink(directory / "nginx.conf")
    sink(render(list(scenario.ingresses), list(scenario.ingress_classes),
                list(scenario.services), {}, directory,
                certify(list(scenario.ingresses), list(scenario.secrets))))
    return IngressController(directory, certify, sink)
