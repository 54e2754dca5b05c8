"""What runs for each container: its `command`; else its image's program — the scenario's
`images:` map first (an image sent to a built-in image or to a command), then kemu's built-in
images, then, for any other image, kemu's stand-in (kemu/images/stand_in.py), which serves the
container's declared ports. Pure.

An `images:` key matches an image reference with or without its tag or digest, and with or
without the Docker Hub prefixes (`docker.io/`, `library/`): `nginx` matches `nginx:1.14.2`,
`docker.io/library/nginx@sha256:…`; `nginx:1.14.2` matches that tag only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kemu import registry
from kemu.scenario.objects import Container, PodSpec
from kemu.scenario.problems import Checks

STAND_IN = "kemu/stand-in"
Program = str | tuple[str, ...]  # a built-in image's name, or a command


@dataclass(frozen=True)
class Reference:
    """An image reference taken apart: `registry/path/name[:tag][@digest]`."""

    name: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, text: str) -> Reference:
        rest, _, digest = text.partition("@")
        name, tag = rest, ""
        if ":" in rest.rsplit("/", 1)[-1]:  # a colon before the last "/" is a registry port
            name, tag = rest.rsplit(":", 1)
        for prefix in ("docker.io/", "index.docker.io/"):
            name = name.removeprefix(prefix)
        return cls(name.removeprefix("library/"), tag, digest)

    def matched_by(self, key: Reference) -> bool:
        return key.name == self.name and key.tag in ("", self.tag) and \
            key.digest in ("", self.digest)


def image_map(doc: Any, checks: Checks) -> dict[str, Program]:
    """The scenario's `images:` (its shape is the schema's): image → built-in image or
    {command: [...]}."""
    out: dict[str, Program] = {}
    for image, target in (doc or {}).items():
        if isinstance(target, str):
            if target not in registry.images():
                checks.error(f"images.{image}", f"unknown image {target!r} (built-in: "
                                                f"{', '.join(sorted(registry.images()))})")
                continue
            out[image] = target
        else:
            out[image] = tuple(target["command"])
    return out


def program(image: str, images: Mapping[str, Program]) -> Program:
    """What runs for `image` when the container gives no command."""
    ref = Reference.parse(image)
    keys = [(Reference.parse(key), target) for key, target in images.items()]
    # The most specific key wins: a digest over a tag over the bare name.
    matching = [((bool(k.digest), bool(k.tag)), target) for k, target in keys
                if ref.matched_by(k)]
    if matching:
        return max(matching, key=lambda m: m[0])[1]
    return image if image in registry.images() else STAND_IN


def resolve(spec: PodSpec, images: Mapping[str, Program]) -> PodSpec:
    """The pod with each container's entrypoint decided (and stand-ins marked)."""
    return replace(spec, containers=tuple(_container(c, images) for c in spec.containers))


def _container(container: Container, images: Mapping[str, Program]) -> Container:
    if container.command:
        return container
    target = program(container.image, images)
    if isinstance(target, tuple):
        return replace(container, entrypoint=target)
    entrypoint = tuple(registry.images()[target].entrypoint(container))
    return replace(container, entrypoint=entrypoint,
                   stand_in=target == STAND_IN and container.image != STAND_IN)


def stand_in_note(container: Container) -> str:
    """How a stand-in serves the container, for warnings and status."""
    ports = ", ".join(f"{p.container_port}/{p.protocol}" for p in container.ports
                      if p.protocol in ("TCP", "UDP"))
    serves = f"serves {ports} as kemu/http-echo does" if ports else "serves nothing (no ports)"
    return f"image {container.image!r} has no program in kemu: a stand-in {serves}; map it " \
           f"under `images:` to a built-in image or a command"
