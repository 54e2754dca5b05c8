"""What an image is to kemu: a name (as a manifest writes `image:`), a description, and the
command line that stands for its entrypoint, given the container (its ports)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from kemu.scenario.objects import Container


class Image:
    name: ClassVar[str]  # e.g. "kemu/http-echo"
    description: ClassVar[str]

    @staticmethod
    def entrypoint(container: Container) -> list[str]:
        """The command line that runs as this image's entrypoint."""
        raise NotImplementedError


def first_port(container: Container, default: int) -> str:
    return str(container.ports[0].container_port if container.ports else default)


def known_images() -> list[str]:
    from kemu import registry  # here, not above: an image's own program stays light

    return sorted(registry.images())


def container_argv(container: Container) -> list[str]:
    """The command line that stands for this container, as kubelet would run it:
    `command` replaces the image's entrypoint, `args` are appended. The entrypoint is the
    one decided for the container (kemu/scenario/images.py), else its built-in image's, else
    the stand-in's."""
    from kemu import registry

    if container.command:
        return [*container.command, *container.args]
    images = registry.images()
    entrypoint = container.entrypoint or \
        (images.get(container.image) or images["kemu/stand-in"]).entrypoint(container)
    return [*entrypoint, *container.args]
