"""Named extension points (backends, topologies) found through Python entry points, like
Mininet's TOPOS/SWITCHES dicts but open to other packages. Names are case-insensitive."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from kemu.errors import KemuError


def load_group(group: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for ep in entry_points(group=group):
        name = ep.name.lower()
        if name in found:
            raise KemuError(f"two entries registered as {name!r} in {group}")
        found[name] = ep.load()
    return found


def lookup(group: str, name: str, what: str) -> Any:
    entries = load_group(group)
    try:
        return entries[name.lower()]
    except KeyError:
        raise KemuError(f"unknown {what} {name!r}; installed: "
                        f"{', '.join(sorted(entries)) or 'none'}") from None
