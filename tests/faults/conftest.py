"""The fault-injection suite's timings: each test adds what it measured, and the run prints them
at the end; with ``SERVERSIDE_FAULT_TIMINGS=benchmarks/faults.md`` it also writes them there,
and the benchmark report quotes that file in ``benchmarks/RESULTS.md``. The tests themselves
assert only generous bounds."""

from __future__ import annotations

import datetime
import os
import pathlib
import typing as t

import pytest

#: Where to write the timings as Markdown, when set.
OUTPUT_ENV = "SERVERSIDE_FAULT_TIMINGS"
#: The columns of the table, in order.
COLUMNS = (
    "first request: 503",
    "while open: 503, no call",
    "recovery after the server",
    "next request",
)

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


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get(OUTPUT_ENV)
    if not target or not TIMINGS:
        return
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for store, fault, what, seconds in TIMINGS:
        rows.setdefault((store, fault), {})[what] = seconds
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Written by `{OUTPUT_ENV}=benchmarks/faults.md python -m pytest tests/faults` on {now}"
        f" (load average {load}), seconds per request, SESSION_BREAKER_WINDOW = 1 s and each"
        " store's default timeouts. *first request*: the first request that needs the session"
        " after the fault; *while open*: the next one, refused by the circuit breaker without a"
        " store call; *recovery*: from the server's return (start, or SIGCONT) to the first"
        " request served; *next request*: the first request after a restart no request saw.",
        "",
        "| store | fault | " + " | ".join(COLUMNS) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in COLUMNS) + " |",
    ]
    for (store, fault), measured in rows.items():
        cells = [f"{measured[c]:.3f}" if c in measured else "" for c in COLUMNS]
        lines.append(f"| {store} | {fault} | " + " | ".join(cells) + " |")
    pathlib.Path(target).write_text("\n".join(lines) + "\n")
