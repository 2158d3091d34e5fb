"""Where the domain reports what happened: counts for dashboards, and the rare paths an on-call engineer
needs after an incident (logged with the ids as keys, and counted). The runtime wires Powertools in."""

from __future__ import annotations

from typing import Protocol


class Telemetry(Protocol):
    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        """Add `value` to the metric `name`."""

    def rare(self, name: str, message: str, **ids: str | int) -> None:
        """A recovery path was taken: count `name` and log `message` with `ids` (session_id, batch_id, ...)."""

    def gauges(self, values: dict[str, tuple[float, str]], at_ms: int) -> None:
        """Measurements (name -> (value, unit)) taken at `at_ms`, such as a dataset's quality report."""


class Silent:
    """Telemetry that reports nothing (tests and tools that build the domain by hand)."""

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        return None

    def rare(self, name: str, message: str, **ids: str | int) -> None:
        return None

    def gauges(self, values: dict[str, tuple[float, str]], at_ms: int) -> None:
        return None
