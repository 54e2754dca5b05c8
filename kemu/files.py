"""Writing files that another process reads while they change (results, DNS records, the
nginx and load-balancer configurations): whole or not at all."""

from __future__ import annotations

from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
