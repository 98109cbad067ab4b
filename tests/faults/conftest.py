"""The fault-injection suite's timings: each test adds what it measured, and the run prints them
at the end (they go to benchmarks/RESULTS.md by hand; the tests assert only generous bounds)."""

from __future__ import annotations

import typing as t

import pytest

#: (store, fault, what, seconds) measured in this run.
TIMINGS: list[tuple[str, str, str, float]] = []


@pytest.fixture
def timings() -> t.Callable[[str, str, str, float], None]:
    """Record one timing: ``timings(store, fault, what, seconds)``."""

    def record(store: str, fault: str, what: str, seconds: float) -> None:
        TIMINGS.append((store, fault, what, seconds))

    return record


def pytest_terminal_summary(terminalreporter: t.Any) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("store faults: measured times (seconds)")
    for store, fault, what, seconds in TIMINGS:
        terminalreporter.write_line(f"{store:<10} {fault:<8} {what:<28} {seconds:8.3f}")
