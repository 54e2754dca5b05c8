"""Summary statistics for measurements: pure functions, no NumPy/SciPy.

`describe` gives the usual figures of a list of observations (mean, sample stdev, nearest-rank
p50/p90/p99, min, max); `ci95` the half-width of a 95 % confidence interval of the mean, with
Student's t (a table up to 30 degrees of freedom, its series expansion beyond). Measurements use the
latter over their repeats: each repeat gives one value of the headline figure, and the summary
carries `<figure>_ci95`, the half-width, when there are at least two.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# Two-sided 95 % quantiles of Student's t distribution, by degrees of freedom.
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
       2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
       2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
Z95 = 1.96


def t95(df: int) -> float:
    """The two-sided 95 % t quantile for `df` degrees of freedom (≥ 1)."""
    if df < 1:
        raise ValueError("a confidence interval needs at least two values")
    if df <= len(T95):
        return T95[df - 1]
    # Beyond the table, the Cornish-Fisher expansion around the normal quantile (exact to
    # the table's 3 decimals at df 30, and approaching 1.96).
    z = Z95
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ci95(values: Sequence[float]) -> float | None:
    """Half-width of the 95 % confidence interval of the mean of `values`; None for fewer
    than two."""
    if len(values) < 2:
        return None
    return t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def describe(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """{n, mean, stdev, p50, p90, p99, min, max} of a non-empty list, rounded to `digits`
    (stdev is the sample standard deviation, 0 for one value)."""
    if not values:
        raise ValueError("no values to describe")
    figures = {
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "p50": percentile(values, 50), "p90": percentile(values, 90),
        "p99": percentile(values, 99), "min": min(values), "max": max(values),
    }
    return {"n": len(values), **{k: round(v, digits) for k, v in figures.items()}}


def over_repeats(name: str, values: Sequence[float | None], digits: int = 3) -> dict[str, float]:
    """`<name>_ci95` (half-width) for the per-repeat values of a headline figure, when at
    least two repeats produced one; empty otherwise."""
    present = [v for v in values if v is not None]
    half = ci95(present)
    return {} if half is None else {f"{name}_ci95": round(half, digits)}
