"""What an event kind is: the keys it takes (besides `at` and `action`), how the shell spells
it, how it is checked against the cluster as earlier events leave it (pure, with the scenario's
other checks), and what it does to a live cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from kemu.scenario.model import EventSpec

if TYPE_CHECKING:
    from kemu.cluster.cluster import Cluster
    from kemu.scenario.check_events import World


class Event:
    action: ClassVar[str]  # as scenarios and the shell name it: "node-down"
    keys: ClassVar[tuple[str, ...]]  # what it takes besides `at` and `action`
    args: ClassVar[str]  # the shell's arguments: "NODE"
    help: ClassVar[str] = ""  # the shell's help line ("" when a sibling's line covers it)

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, index: int,
              world: World) -> EventSpec | None:
        """The event as it will happen, or None with the problems reported to
        world.checks; `world` is updated to what the cluster is after it."""
        raise NotImplementedError

    @classmethod
    def from_words(cls, args: list[str]) -> list[dict[str, Any]]:
        """A shell line's arguments as `events:` entries (without `at`); ValueError with the
        usage when they do not say enough."""
        if len(args) != 1:
            raise cls.usage()
        return [{"action": cls.action, cls.keys[0]: args[0]}]

    @classmethod
    def usage(cls) -> ValueError:
        return ValueError(f"usage: {cls.action} {cls.args}")

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        """Make the change; returns what it did, for the record."""
        raise NotImplementedError

    @staticmethod
    def describe(event: EventSpec) -> str:
        return f"{event.action} {event.target.removeprefix('default/')}"


def named(key: str, value: str) -> dict[str, Any]:
    """`ns/name` or `name` as the {key: name, namespace: ns} of an event."""
    namespace, _, name = value.rpartition("/")
    return {key: name, **({"namespace": namespace} if namespace else {})}
