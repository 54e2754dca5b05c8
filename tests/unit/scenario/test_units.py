import pytest

from kemu.scenario.units import parse_duration_ms, parse_rate_mbit


@pytest.mark.parametrize("text, mbit", [
    ("1gbit", 1000.0), ("100mbit", 100.0), ("100Mbit", 100.0), ("500kbit", 0.5),
    ("2000bit", 0.002), (10, 10.0), ("2.5gbit", 2500.0), ("42", 42.0),
])
def test_rates(text, mbit):
    assert parse_rate_mbit(text) == pytest.approx(mbit)


@pytest.mark.parametrize("text", ["fast", "10m", "1g", "-5mbit", 0, -1])
def test_bad_rates(text):
    with pytest.raises(ValueError):
        parse_rate_mbit(text)


def test_bytes_per_second_is_refused_not_guessed():
    with pytest.raises(ValueError, match="bytes per second"):
        parse_rate_mbit("10mbps")


@pytest.mark.parametrize("text, ms", [("20ms", 20.0), ("250us", 0.25), ("0.1s", 100.0),
                                      (5, 5.0), ("3", 3.0)])
def test_durations(text, ms):
    assert parse_duration_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["soon", "5 minutes", -1])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration_ms(text)
