"""A tiny run of the benchmark harness (``python -m benchmarks run --smoke``), so it does not rot.

It runs the documented command on the built-in memory store only (no server), then checks
that every contender was timed, that the ratios came out, and that the store-side counts are
the round trips the core promises for the memory store. The timings mean nothing here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Calls on the memory store per request: (scenario, sliding) -> {method: calls}.
EXPECTED_CALLS = {
    ("read", True): {"load_and_touch": 1},
    ("read", False): {"load": 1},
    ("write", True): {"load_and_touch": 1, "save_if_or_load": 1},
    ("write", False): {"load": 1, "save_if_or_load": 1},
    ("login", True): {"save_if": 1},
    ("login", False): {"save_if": 1},
    ("none", True): {},
    ("none", False): {},
    # A cookie, but the view never reads the session: no store call at all.
    ("untouched", True): {},
    ("untouched", False): {},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    report = out / "RESULTS.md"
    raw = out / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "run",
            "--smoke",
            "--stores",
            "memory",
            "--output",
            str(report),
            "--json",
            str(raw),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(raw.read_text())
    data["_report"] = report.read_text()
    return data


def test_every_contender_is_timed(results: dict) -> None:
    memory = results["stores"]["memory"]
    contenders = {cell["contender"] for cell in memory["cells"]}
    assert {"ours", "floor", "cookie", "bare"} <= contenders
    rounds = results["settings"]["rounds"]
    for cell in memory["cells"]:
        assert len(cell["samples"]) == rounds
        assert all(sample > 0 for sample in cell["samples"])


def test_ratios_are_reported(results: dict) -> None:
    metrics = results["stores"]["memory"]["metrics"]
    assert set(metrics) == {f"{s}/{m}" for s, _ in EXPECTED_CALLS for m in ("on", "off")}
    for row in metrics.values():
        assert row["ratio:floor"] > 0
        assert row["ratio:cookie"] > 0
        assert "share:ours" in row
    report = results["_report"]
    assert "## Targets" in report
    assert "memory write, sliding on: ≤ 1.05× the raw-client floor" in report


def test_memory_store_round_trips(results: dict) -> None:
    for cell in results["stores"]["memory"]["cells"]:
        if cell["contender"] != "ours":
            continue
        calls = {
            key.split(":", 1)[1]: value
            for key, value in cell["cost"].items()
            if key.startswith("call:")
        }
        assert calls == EXPECTED_CALLS[(cell["scenario"], cell["sliding"])], cell


def test_headers(results: dict) -> None:
    cells = {
        (c["scenario"], c["sliding"], c["contender"]): c
        for c in results["stores"]["memory"]["cells"]
    }
    login = cells[("login", True, "ours")]["headers"]
    assert login["set-cookie"].startswith("session=<")
    assert "HttpOnly" in login["set-cookie"]
    assert login["vary"] == "Cookie"
    assert cells[("none", True, "ours")]["headers"]["set-cookie"] == "-"
    assert cells[("read", False, "ours")]["headers"]["set-cookie"] == "-"
    assert cells[("read", True, "ours")]["headers"]["set-cookie"] != "-"


def test_serialization_is_timed_against_0_1(results: dict) -> None:
    cells = results["serialization"]["cells"]
    contenders = {cell["contender"] for cell in cells}
    assert {"ours", "0.1"} <= contenders
    assert {cell["format"] for cell in cells} == {"msgpack", "json"}
    assert all(len(cell["samples"]) == results["serialization"]["rounds"] for cell in cells)
    report = results["_report"]
    assert "## Serialization" in report
    assert "dumps+loads no slower than 0.1" in report


@pytest.mark.servers
def test_the_cache_benchmark_counts_no_command_per_cached_read(
    tmp_path: Path, redis_server: object
) -> None:
    """``--cache`` alone on its own redis-server: the harness runs, a repeated read of a cached
    session sends Redis nothing, and only the cache's section of the report is replaced (the
    HTTP parts need gunicorn and wrk; here they may say they were not run)."""
    report = tmp_path / "RESULTS.md"
    report.write_text("# Benchmark results\n\n## Targets\n\nrecorded before\n")
    raw = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks", "run", "--smoke", "--stores", "",
            "--cache", "--output", str(report), "--json", str(raw),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cache = json.loads(raw.read_text())["cache"]
    for mode in ("on", "off"):
        counted = cache["inprocess"]["counted"][mode]
        assert counted["commands"] == 0, counted
        assert counted["hits"] == counted["requests"]
        row = cache["inprocess"]["rows"][mode]
        assert {"us:cached", "share:cached", "us:flask-session", "us:cookie"} <= set(row)
    text = report.read_text()
    assert text.startswith("# Benchmark results\n\n## Targets\n\nrecorded before\n")  # kept
    assert "## Worker-local cache (redis, `SESSION_REDIS_CACHE`)" in text
    assert "Measured in a run of its own" in text
    assert "redis cache, sliding on: 0 commands per repeated read-only request" in text


def test_the_cached_contender_is_our_store_with_its_cache(redis_server) -> None:
    """The HTTP runs of the cache benchmark start ``benchmarks.wsgiapp:create()`` with
    ``BENCH_CONTENDER=cached``: that must be our store with ``SESSION_REDIS_CACHE`` on, not
    Flask-Session (which ignores the key)."""
    probe = (
        "from benchmarks.wsgiapp import create\n"
        "from flask_serverside import get_state\n"
        "from flask_serverside.interface import ServerSideSessionInterface\n"
        "app = create()\n"
        "interface = app.session_interface\n"
        "assert isinstance(interface, ServerSideSessionInterface), interface\n"
        "assert get_state(app).store.cache is not None\n"
        "get_state(app).close()\n"
        "print('cached ok')\n"
    )
    env = {
        **os.environ,
        "BENCH_STORE": "redis",
        "BENCH_CONTENDER": "cached",
        "BENCH_SLIDING": "1",
        "BENCH_TARGET": redis_server.url,
        "BENCH_NS": "probe",
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cached ok"
