"""The `kemu/iperf3` image: an iperf3 server (Debian's iperf3) on the container's port."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kemu.images.base import Image, first_port

if TYPE_CHECKING:
    from kemu.scenario.objects import Container



class Iperf3(Image):
    name = "kemu/iperf3"
    description = "iperf3 server"

    @staticmethod
    def entrypoint(container: Container) -> list[str]:
        return ["iperf3", "--server", "--port", first_port(container, 5201)]
