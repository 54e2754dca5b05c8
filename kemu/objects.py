"""The Kubernetes objects kemu works with, as plain typed data (what was asked for, not what
was built). Field names follow the Kubernetes API, in Python spelling."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NodeSpec:
    name: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    name: str = ""
    protocol: str = "TCP"


@dataclass(frozen=True)
class Container:
    name: str
    image: str = ""
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PodSpec:
    name: str
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    containers: tuple[Container, ...] = ()
    node_name: str = ""  # spec.nodeName: pinned by the user
    node_selector: dict[str, str] = field(default_factory=dict)
    owner: str = ""  # e.g. "Deployment/web"

    @property
    def key(self) -> str:
        """namespace/name, unique in the cluster."""
        return f"{self.namespace}/{self.name}"


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Kubernetes equality-based label selection (matchLabels)."""
    return all(labels.get(k) == v for k, v in selector.items())
