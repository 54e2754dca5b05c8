"""How long kemu waits for things to happen. On an emulated machine everything takes longer
— the full-kernel VM lane runs under qemu's software emulation, about 20 times slower — and
KEMU_SLOWDOWN says by how much; kemu's deadlines stretch with it (measured figures do not)."""

from __future__ import annotations

import os

SLOWDOWN = max(1.0, float(os.environ.get("KEMU_SLOWDOWN", "1") or 1))


def patience(seconds: float) -> float:
    """A deadline, stretched for a slow machine."""
    return seconds * SLOWDOWN
