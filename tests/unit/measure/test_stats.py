"""kemu.stats: summary figures and the 95 % confidence interval, on values worked out by hand."""

import math

import pytest

from kemu.measure.stats import ci95, describe, over_repeats, percentile, t95


def test_describe_known_values():
    d = describe([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert d["n"] == 8 and d["mean"] == 5.0
    assert d["stdev"] == pytest.approx(math.sqrt(32 / 7), abs=1e-3)  # sample stdev
    assert (d["min"], d["p50"], d["p90"], d["p99"], d["max"]) == (2.0, 4.0, 9.0, 9.0, 9.0)


def test_describe_one_value_and_none():
    assert describe([3.5]) == {"n": 1, "mean": 3.5, "stdev": 0.0, "p50": 3.5, "p90": 3.5,
                               "p99": 3.5, "min": 3.5, "max": 3.5}
    with pytest.raises(ValueError):
        describe([])


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 90) == 90
    assert percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0


def test_t_table():
    assert t95(1) == 12.706 and t95(2) == 4.303 and t95(30) == 2.042
    # Beyond the table: the series expansion, against published quantiles
    assert t95(31) == pytest.approx(2.040, abs=1e-3)
    assert t95(60) == pytest.approx(2.000, abs=1e-3)
    assert t95(120) == pytest.approx(1.980, abs=1e-3)
    assert t95(100000) == pytest.approx(1.960, abs=1e-3)
    with pytest.raises(ValueError):
        t95(0)


def test_ci95_uses_student_t():
    # mean 10, sample stdev 1, n = 4 → 3.182 * 1 / 2
    values = [9.0, 10.0, 10.0, 11.0]
    assert ci95(values) == pytest.approx(3.182 * math.sqrt(2 / 3) / 2)
    assert ci95([1.0, 3.0]) == pytest.approx(12.706 * math.sqrt(2) / math.sqrt(2))
    assert ci95([5.0]) is None and ci95([]) is None
    assert ci95([4.0] * 40) == 0.0
    many = [float(i % 2) for i in range(100)]  # df 99: t = 1.984
    assert ci95(many) == pytest.approx(1.984 * 0.50252 / 10, rel=1e-3)


def test_over_repeats_names_the_figure():
    assert over_repeats("rtt_p50_ms", [1.0, 3.0]) == {"rtt_p50_ms_ci95": 12.706}
    assert over_repeats("x", [1.0, None]) == {}
