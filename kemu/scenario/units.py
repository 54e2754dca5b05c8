"""Parsing of rates and durations as scenarios write them (tc's spelling). Pure."""

from __future__ import annotations

import re

_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmg]?)(bit|bps)?\s*$", re.IGNORECASE)
_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(us|ms|s)?\s*$", re.IGNORECASE)
_RATE_SCALE = {"": 1e-6, "k": 1e-3, "m": 1.0, "g": 1e3}
_TIME_SCALE = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_rate_mbit(value: str | int | float) -> float:
    """'1gbit' → 1000.0, '100mbit' → 100.0, 500 → 500.0 (a bare number is Mbit/s).

    tc reads 'mbps' as megaBYTES per second, a classic trap; kemu refuses it rather than guess.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"rate must be positive, got {value}")
        return float(value)
    match = _RATE.match(str(value))
    if not match:
        raise ValueError(f"cannot read {value!r} as a rate (examples: 1gbit, 100mbit, 500kbit)")
    number, prefix, unit = match.groups()
    if unit and unit.lower() == "bps":
        raise ValueError(f"{value!r} is ambiguous (tc reads 'bps' as bytes per second); "
                         f"write bits, e.g. {number}{prefix}bit")
    if not unit and not prefix:
        return float(number)
    if not unit:
        raise ValueError(f"cannot read {value!r} as a rate (examples: 1gbit, 100mbit, 500kbit)")
    rate = float(number) * _RATE_SCALE[prefix.lower()]
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {value!r}")
    return rate


def parse_duration_ms(value: str | int | float) -> float:
    """'20ms' → 20.0, '250us' → 0.25, '0.1s' → 100.0, 5 → 5.0 (a bare number is ms)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return float(value)
    match = _TIME.match(str(value))
    if not match:
        raise ValueError(f"cannot read {value!r} as a duration (examples: 20ms, 250us, 1s)")
    number, unit = match.groups()
    return float(number) * _TIME_SCALE[(unit or "ms").lower()]
