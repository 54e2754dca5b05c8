"""`kemu/stand-in`: what runs for an image kemu has no program for (`image: nginx:1.14.2`
copied from the documentation). It serves every port the container declares as kemu/http-echo
does — TCP: HTTP, answering with JSON, so HTTP probes and curl work; UDP: datagrams echoed —
and nothing when it declares none. kemu says which pods run one (`kemu validate`, `kemu
status`, the shell, results.json); a scenario's `images:` map sends an image elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kemu.images.base import Image
from kemu.images.http_echo import serving

if TYPE_CHECKING:
    from kemu.scenario.objects import Container


class StandIn(Image):
    name = "kemu/stand-in"
    description = "stands for an image kemu has no program for: serves every declared port " \
                  "as kemu/http-echo does"

    @staticmethod
    def entrypoint(container: Container) -> list[str]:
        return serving(container)
