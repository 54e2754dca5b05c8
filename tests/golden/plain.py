"""Plain JSON of kemu's checked objects (dataclasses, addresses, tuples), for golden files:
field names only, no class names, so a reviewer sees what a scenario means, not how it is
spelt in Python."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import sys
from typing import Any


def plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv4Address |
                  ipaddress.IPv4Interface):
        return str(value)
    if isinstance(value, str) and value == sys.executable:
        return "<python>"  # the interpreter running kemu: machine-specific
    return value


def dumps(value: Any) -> str:
    return json.dumps(plain(value), indent=1, sort_keys=True) + "\n"
