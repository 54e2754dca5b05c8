"""The `kemu/sleep` image: nothing runs; the pod is only its network namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kemu.images.base import Image

if TYPE_CHECKING:
    from kemu.scenario.objects import Container



class Sleep(Image):
    name = "kemu/sleep"
    description = "does nothing; the pod is only its network namespace"

    @staticmethod
    def entrypoint(container: Container) -> list[str]:
        return ["sleep", "infinity"]
