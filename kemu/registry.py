"""Kinds by name. A kind is one class in one module, found here by the name scenarios use:

- backends and topologies, through Python entry points (`kemu.backends`, `kemu.topologies`),
  so other packages can add theirs, like Mininet's TOPOS/SWITCHES dicts but open;
- kemu's own measurement kinds (kemu/measure/), event kinds (kemu/events/) and images
  (kemu/images/): every class in those packages that subclasses the package's base and
  names itself. Adding one is adding a module; nothing else lists them.

Names are case-insensitive for entry points. Lookups import on first use, so a stage that
checks a kind (the scenario checks) does not import the stages that run it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache
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


def backends() -> dict[str, Any]:
    """CNI backends (kemu.backend.Backend subclasses) by name."""
    return load_group("kemu.backends")


def topologies() -> dict[str, Any]:
    """Underlay topologies (kemu.topology.Topology subclasses) by name."""
    return load_group("kemu.topologies")


@cache
def package_kinds(package: str, base: str, key: str) -> dict[str, Any]:
    """Every class in `package`'s modules that subclasses `package.base.<base>` and sets
    `key` itself, by the value of `key`, in module order."""
    module = importlib.import_module(package)
    root = getattr(importlib.import_module(f"{package}.base"), base)
    found: dict[str, Any] = {}
    for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda m: m.name):
        kind_module = importlib.import_module(f"{package}.{info.name}")
        for cls in list(vars(kind_module).values()):  # in the order the module defines them
            name = getattr(cls, "__dict__", {}).get(key)
            if inspect.isclass(cls) and issubclass(cls, root) and isinstance(name, str) and \
                    cls.__module__ == kind_module.__name__:
                if name in found and found[name] is not cls:
                    raise KemuError(f"two {base} kinds named {name!r}: "
                                    f"{found[name].__module__}, {cls.__module__}")
                found[name] = cls
    return found


def measurements() -> dict[str, Any]:
    """Measurement kinds (kemu.measure.base.Measurement subclasses) by type."""
    return package_kinds("kemu.measure", "Measurement", "type")


def events() -> dict[str, Any]:
    """Event kinds (kemu.events.base.Event subclasses) by action."""
    return package_kinds("kemu.events", "Event", "action")


def images() -> dict[str, Any]:
    """Built-in images (kemu.images.base.Image subclasses) by image name."""
    return package_kinds("kemu.images", "Image", "name")
