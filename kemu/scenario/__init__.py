"""Stage 1: a scenario file → a checked, frozen Scenario (model.py). Pure: nothing is created.
load.py runs the checks in order; check_*.py are the checks of each section."""

from kemu.scenario.load import (
    load_runs,
    load_scenario,
    parse_runs,
    parse_scenario,
    read_document,
)
from kemu.scenario.model import MeasurementEnd, MeasurementSpec, Run, Scenario

__all__ = ["MeasurementEnd", "MeasurementSpec", "Run", "Scenario", "load_runs",
           "load_scenario", "parse_runs", "parse_scenario", "read_document"]
