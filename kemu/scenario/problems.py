"""What the checks of one scenario file found: every problem and warning with its file and
field path, collected and raised once (`ScenarioError`), and where each object was declared
so that a later check can point there. Pure."""

from __future__ import annotations

import ipaddress

from kemu.errors import Problem, ScenarioError


class Checks:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.places: dict[str, tuple[str, str]] = {}  # object key → (file, where) declared

    def error(self, where: str, what: str, file: str = "") -> None:
        self.problems.append(Problem(where, what, file or self.file))

    def error_at(self, key: str, what: str) -> None:
        """A problem of the object `key`, reported where it was declared (its manifest file
        and document, or the scenario's field)."""
        file, where = self.places.get(key, (self.file, "workloads"))
        self.error(where, what, file)

    def warn(self, where: str, what: str) -> None:
        self.warnings.append(Problem(where, what, self.file))

    def warn_at(self, key: str, what: str) -> None:
        """A warning about the object `key`, reported where it was declared."""
        file, where = self.places.get(key, (self.file, "workloads"))
        self.warnings.append(Problem(where, what, file))

    def raise_problems(self) -> None:
        if self.problems:
            raise ScenarioError(self.problems)

    def cidr(self, where: str, value: str) -> ipaddress.IPv4Network | None:
        try:
            return ipaddress.IPv4Network(value)
        except ValueError as e:
            self.error(where, f"not an IPv4 CIDR ({e})")
            return None
