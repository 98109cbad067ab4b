"""Mode 2: over HTTP, each contender in its own gunicorn (one sync worker), loaded by wrk.

Secondary to mode 1 (``--http``). For each store, the read-only and write scenarios with sliding
expiry on are run for every contender; the contenders are interleaved round by round as in
mode 1. wrk runs with one thread and a few connections on loopback; requests/s, p50 and p99
are medians over the rounds.
"""

from __future__ import annotations

import http.client
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
    return {"rps": float(values["rps"]), "p50": _ms(values["p50"]), "p99": _ms(values["p99"])}


# Anchored: the thread stats line ends in a percentage ("... 70.50%") too.
_WRK = {
    "rps": r"Requests/sec:\s+([\d.]+)",
    "p50": r"(?m)^\s+50%\s+(\S+)",
    "p99": r"(?m)^\s+99%\s+(\S+)",
}


def run_http(args: argparse.Namespace, log: c.Callable[[str], None]) -> dict[str, t.Any]:
    if shutil.which("wrk") is None:
        return {"setup": "not run: wrk is not installed (apt-get install wrk)", "rows": []}
    seconds = 2 if args.preset != "full" else 5
    rounds = 3 if args.preset != "full" else 5
    connections = 4
    rows: list[dict[str, t.Any]] = []
    skipped: list[str] = []
    for name in args.stores:
        if name not in SUPPORTED:
            skipped.append(name)
            continue
        kit = KITS[name]()
        if kit.missing() is not None:
            skipped.append(name)
            continue
        kit.start()
        scratch = tempfile.mkdtemp(prefix="bench-http-")
        procs: list[subprocess.Popen[bytes]] = []
        try:
            if name == "redis":
                target = kit.server.url  # type: ignore[attr-defined]
            elif name == "memcached":
                target = f"{kit.server.host}:{kit.server.port}"  # type: ignore[attr-defined]
            elif name == "sqlalchemy":
                target = kit.url  # type: ignore[attr-defined]
            else:
                target = scratch
            contenders = [
                c for c in CONTENDERS if c != "flask-session" or kit.flask_session_missing() is None
            ]
            servers: dict[str, tuple[int, str]] = {}
            for contender in contenders:
                port = _free_port()
                env = dict(
                    os.environ,
                    BENCH_STORE=name,
                    BENCH_CONTENDER=contender,
                    BENCH_SLIDING="1",
                    BENCH_TARGET=target,
                    BENCH_NS=f"http_{contender.replace('-', '_')}",
                )
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "-w",
                        "1",
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
                procs.append(proc)
                _wait(port, proc)
                servers[contender] = (port, _login(port))
            samples: dict[tuple[str, str], list[dict[str, float]]] = {}
            rng = random.Random(1)
            cells = [(s, p, c) for s, p in SCENARIOS for c in contenders]
            for round_no in range(rounds):
                rng.shuffle(cells)
                for scenario, path, contender in cells:
                    port, cookie = servers[contender]
                    result = _wrk(port, path, cookie, seconds, connections)
                    samples.setdefault((scenario, contender), []).append(result)
                log(f"http {name}: round {round_no + 1}/{rounds}")
            for scenario, _ in SCENARIOS:
                for contender in contenders:
                    runs = samples[(scenario, contender)]
                    rows.append(
                        {
                            "store": name,
                            "scenario": scenario,
                            "contender": contender,
                            "rps": statistics.median(r["rps"] for r in runs),
                            "p50": statistics.median(r["p50"] for r in runs),
                            "p99": statistics.median(r["p99"] for r in runs),
                        }
                    )
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            shutil.rmtree(scratch, ignore_errors=True)
            kit.close()
    setup = (
        f"Each contender in its own gunicorn (1 sync worker) on loopback; wrk -t1 -c{connections}"
        f" for {seconds} s per cell, {rounds} rounds interleaved; medians. Sliding expiry on."
    )
    if skipped:
        setup += f" Not run for: {', '.join(skipped)}."
    return {"setup": setup, "rows": rows}
