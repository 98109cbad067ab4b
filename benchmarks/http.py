"""Mode 2: over HTTP, each contender in its own gunicorn, loaded by wrk.

Secondary to mode 1 (``--http``). Several plans (:data:`PLANS`): 2 sync workers (the setting of
the issue that asked for these numbers), 1 worker, 4 workers, and the contention run (4 workers
of 4 threads, 16 connections, each request writing a key of its own into the one session). In
each, the read-only and write scenarios with sliding expiry on are run for every contender of
the plan; the contenders are interleaved round by round as in mode 1. wrk runs with one thread
on loopback; requests/s, p50 and p99 are medians over the rounds. Our workers count the
conditional saves they had to retry, which the report shows.
"""

from __future__ import annotations

import dataclasses
import glob
import http.client
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

from .apps import CONTENDERS
from .stores import KITS

if t.TYPE_CHECKING:
    import argparse
    import collections.abc as c

ROOT = Path(__file__).resolve().parents[1]
SUPPORTED = ("memory", "redis", "memcached", "filesystem", "sqlalchemy")
SCENARIOS = (("read", "/read"), ("write", "/write"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"gunicorn on {port} did not start")


def _login(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/login")
        response = conn.getresponse()
        response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                return value.split(";", 1)[0].split("=", 1)[1]
        return "x" * 43
    finally:
        conn.close()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _wrk(port: int, path: str, cookie: str, seconds: float, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Cookie: session={cookie}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {key: re.search(pattern, out) for key, pattern in _WRK.items()}
    missing = [key for key, match in found.items() if match is None]
    if missing:
        raise RuntimeError(f"wrk printed no {', '.join(missing)}: {out}")
    values = {key: t.cast("re.Match[str]", match).group(1) for key, match in found.items()}
    errors = sum(int(m) for m in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket is not None:
        errors += sum(int(g) for g in socket.groups())
    total = re.search(r"(\d+) requests in", out)
    return {
        "rps": float(values["rps"]),
        "p50": _ms(values["p50"]),
        "p99": _ms(values["p99"]),
        "errors": errors,
        "requests": int(total.group(1)) if total else 0,
    }


# Anchored: the thread stats line ends in a percentage ("... 70.50%") too.
_WRK = {
    "rps": r"Requests/sec:\s+([\d.]+)",
    "p50": r"(?m)^\s+50%\s+(\S+)",
    "p99": r"(?m)^\s+99%\s+(\S+)",
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """One mode-2 run: how the servers run and what loads them."""

    #: Its name in the report.
    name: str
    #: Gunicorn workers per contender, and threads per worker (1: sync workers).
    workers: int
    threads: int
    #: wrk connections, all sending the one session cookie.
    connections: int
    #: (scenario, path) pairs.
    scenarios: tuple[tuple[str, str], ...]
    #: Contenders measured (those a store lacks are left out).
    contenders: tuple[str, ...]
    #: Stores measured (the memory store is per process: one worker only).
    stores: tuple[str, ...]


PLANS = (
    Plan(
        "2-workers",
        2,
        1,
        4,
        SCENARIOS,
        (*CONTENDERS, "flask-session-noreply"),
        SUPPORTED[1:],
    ),
    Plan("1-worker", 1, 1, 4, SCENARIOS, ("ours", "flask-session", "floor", "bare"), SUPPORTED),
    Plan("4-workers", 4, 1, 8, SCENARIOS, ("ours", "flask-session", "bare"), SUPPORTED[1:]),
    Plan(
        "contention",
        4,
        4,
        16,
        (("contend", "/contend"),),
        ("ours", "flask-session"),
        SUPPORTED[1:],
    ),
)


def _target(name: str, kit: t.Any, scratch: str) -> str:
    if name == "redis":
        return str(kit.server.url)
    if name == "memcached":
        return f"{kit.server.host}:{kit.server.port}"
    if name == "sqlalchemy":
        return str(kit.url)
    return scratch


def _start(
    name: str, contender: str, plan: Plan, target: str, ns: str, stats: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = dict(
        os.environ,
        BENCH_STORE=name,
        BENCH_CONTENDER=contender,
        BENCH_SLIDING="1",
        BENCH_TARGET=target,
        BENCH_NS=ns,
        BENCH_STATS_DIR=stats,
    )
    threads = ["--threads", str(plan.threads), "-k", "gthread"] if plan.threads > 1 else []
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(plan.workers),
            *threads,
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "benchmarks.wsgiapp:create()",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(port, proc)
    except BaseException:
        _stop([proc])
        raise
    return proc, port


def _stop(procs: c.Iterable[subprocess.Popen[bytes]]) -> None:
    procs = list(procs)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_stats(directory: str) -> dict[str, t.Any]:
    """Our workers' counts, summed, and the p50/p99 (ms) of the requests that lost a
    conditional save and of the others (in-process time, from before_request to teardown)."""
    total: dict[str, t.Any] = {}
    times: dict[str, list[float]] = {"clean": [], "lost": []}
    for path in glob.glob(os.path.join(directory, "*.json")):
        with open(path) as f:
            worker = json.load(f)
        for kind, values in worker.pop("times", {}).items():
            times[kind] += values
        for key, value in worker.items():
            total[key] = total.get(key, 0) + int(value)
    for kind, values in times.items():
        if values:
            values.sort()
            total[f"{kind}_n"] = len(values)
            total[f"{kind}_p50"] = values[len(values) // 2] * 1000
            total[f"{kind}_p99"] = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
    return total


def _run_plan(
    plan: Plan,
    name: str,
    kit: t.Any,
    seconds: float,
    rounds: int,
    log: c.Callable[[str], None],
) -> list[dict[str, t.Any]]:
    scratch = tempfile.mkdtemp(prefix="bench-http-")
    servers: dict[str, tuple[subprocess.Popen[bytes], int, str, str]] = {}
    try:
        target = _target(name, kit, scratch)
        contenders = [
            c
            for c in plan.contenders
            if not c.startswith("flask-session") or kit.flask_session_missing() is None
            if c != "flask-session-noreply" or name == "memcached"
        ]
        for contender in contenders:
            stats = os.path.join(scratch, f"stats-{contender}")
            os.makedirs(stats)
            ns = f"http_{plan.workers}w{plan.threads}t_{contender.replace('-', '_')}"
            proc, port = _start(name, contender, plan, target, ns, stats)
            servers[contender] = (proc, port, _login(port), stats)
        samples: dict[tuple[str, str], list[dict[str, float]]] = {}
        rng = random.Random(1)
        cells = [(s, p, c) for s, p in plan.scenarios for c in contenders]
        for round_no in range(rounds):
            rng.shuffle(cells)
            for scenario, path, contender in cells:
                _, port, cookie, _ = servers[contender]
                result = _wrk(port, path, cookie, seconds, plan.connections)
                samples.setdefault((scenario, contender), []).append(result)
            log(f"http {name} ({plan.name}): round {round_no + 1}/{rounds}")
        _stop(proc for proc, _, _, _ in servers.values())
        rows = []
        for scenario, _ in plan.scenarios:
            for contender in contenders:
                runs = samples[(scenario, contender)]
                rows.append(
                    {
                        "plan": plan.name,
                        "store": name,
                        "scenario": scenario,
                        "contender": contender,
                        "rps": statistics.median(r["rps"] for r in runs),
                        "p50": statistics.median(r["p50"] for r in runs),
                        "p99": statistics.median(r["p99"] for r in runs),
                        "errors": sum(r["errors"] for r in runs),
                        "requests": sum(r["requests"] for r in runs),
                        "stats": _read_stats(servers[contender][3]),
                    }
                )
        return rows
    finally:
        _stop(proc for proc, _, _, _ in servers.values())
        shutil.rmtree(scratch, ignore_errors=True)


def run_http(args: argparse.Namespace, log: c.Callable[[str], None]) -> dict[str, t.Any]:
    if shutil.which("wrk") is None:
        return {"setup": "not run: wrk is not installed (apt-get install wrk)", "rows": []}
    seconds = args.http_seconds or (2 if args.preset != "full" else 5)
    rounds = args.http_rounds or (3 if args.preset != "full" else 5)
    rows: list[dict[str, t.Any]] = []
    skipped: list[str] = []
    plans = [p for p in PLANS if p.name in args.http_plans] if args.http_plans else list(PLANS)
    for name in args.stores:
        if name not in SUPPORTED:
            skipped.append(name)
            continue
        kit = KITS[name]()
        if kit.missing() is not None:
            skipped.append(name)
            continue
        kit.start()
        try:
            for plan in plans:
                if name in plan.stores:
                    rows += _run_plan(plan, name, kit, seconds, rounds, log)
        finally:
            kit.close()
    setup = (
        f"Each contender in its own gunicorn on loopback, loaded by wrk -t1 for {seconds} s per"
        f" cell, {rounds} rounds interleaved; medians of requests/s, p50 and p99; errors are"
        " non-2xx answers and socket errors over all rounds. Every connection sends the one"
        " session cookie, so with more than one worker the writes of that session race, as"
        " those of two tabs do. Sliding expiry on. The memory store lives in one process:"
        " 1 worker only."
    )
    if skipped:
        setup += f" Not run for: {', '.join(skipped)}."
    plan_text = [
        {
            "name": p.name,
            "text": f"gunicorn -w {p.workers}"
            + (f" --threads {p.threads} (gthread)" if p.threads > 1 else " (sync)")
            + f", wrk -c{p.connections}",
        }
        for p in plans
    ]
    return {"setup": setup, "plans": plan_text, "rows": rows}
