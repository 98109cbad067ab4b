"""Per-request cost of the filesystem store against Flask-Session 0.8's filesystem backend
(cachelib's ``FileSystemCache``), in the same run, and the cost of a load as the number of
sessions grows.

Run from the repository root (needs flask-session==0.8.0)::

    python backends/filesystem/benchmarks/bench_filesystem.py [--rounds 15] [--scale 100000]

Part 1 runs Flask applications on each contender, interleaved round by round, in a fresh
directory each: a read-only request (with and without ``SESSION_REFRESH_EACH_REQUEST``) and a
request that changes the session. It prints the median µs per request and the ratio.

Part 2 fills one directory with N sessions (100, then ten times more up to ``--scale``) and
times ``load``, ``load_and_touch`` and a conditional save of sessions chosen at random.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import tempfile
import time
import typing as t
import warnings

import flask_session
from flask import Flask
from flask import session

import flask_serverside
from flask_serverside_filesystem import FileSystemStore

KINDS = ("read, sliding", "read, fixed", "write")


def make_app(contender: str, directory: str, sliding: bool) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="bench",
        SESSION_TYPE="filesystem",
        SESSION_FILE_DIR=directory,
        SESSION_REFRESH_EACH_REQUEST=sliding,
    )
    if contender == "ours":
        flask_serverside.Session(app)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            flask_session.Session(app)

    @app.post("/login")
    def login() -> str:
        session["user"] = "alice"
        session["cart"] = list(range(20))
        session["count"] = 0
        return "ok"

    @app.get("/read")
    def read() -> str:
        return str(session.get("user"))

    @app.post("/write")
    def write() -> str:
        session["count"] = session.get("count", 0) + 1
        return "ok"

    return app


def request_costs(rounds: int, requests: int) -> dict[tuple[str, str], list[float]]:
    times: dict[tuple[str, str], list[float]] = {}
    clients = {}
    for contender in ("ours", "flask-session"):
        for kind in KINDS:
            app = make_app(contender, tempfile.mkdtemp(prefix="bench-fs-"), kind != "read, fixed")
            client = app.test_client()
            client.post("/login")
            clients[contender, kind] = client
    for _ in range(rounds + 1):  # the first round warms up
        for (contender, kind), client in clients.items():
            call = client.post if kind == "write" else client.get
            path = "/write" if kind == "write" else "/read"
            started = time.perf_counter()
            for _ in range(requests):
                call(path)
            times.setdefault((contender, kind), []).append(
                (time.perf_counter() - started) / requests * 1e6
            )
    return {key: values[1:] for key, values in times.items()}


def scale_costs(limit: int, probes: int) -> list[tuple[int, dict[str, float]]]:
    directory = tempfile.mkdtemp(prefix="bench-fs-scale-")
    store = FileSystemStore(directory, threshold=0)
    sids: list[str] = []
    results = []
    size = 100
    while size <= limit:
        while len(sids) < size:
            sid = secrets.token_urlsafe(32)
            store.save(sid, secrets.token_bytes(200), 3600)
            sids.append(sid)
        sample = random.sample(sids, min(probes, len(sids)))
        costs: dict[str, float] = {}
        operations: dict[str, t.Callable[[str], object]] = {
            "load": store.load,
            "load_and_touch": lambda sid: store.load_and_touch(sid, 3600),
            "save_if": lambda sid: store.save_if(sid, b"x" * 200, 3600, expected=store.load(sid)),
        }
        for name, operation in operations.items():
            rounds = []
            for _ in range(5):
                started = time.perf_counter()
                for sid in sample:
                    operation(sid)
                rounds.append((time.perf_counter() - started) / len(sample) * 1e6)
            costs[name] = statistics.median(rounds)
        results.append((size, costs))
        size *= 10
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=500)
    args = parser.parse_args()

    print(f"## Requests: median µs per request over {args.rounds} interleaved rounds")
    print("| request | ours | Flask-Session 0.8 | ours / Flask-Session |")
    print("| --- | ---: | ---: | ---: |")
    times = request_costs(args.rounds, args.requests)
    for kind in KINDS:
        ours = statistics.median(times["ours", kind])
        theirs = statistics.median(times["flask-session", kind])
        pairs = zip(times["ours", kind], times["flask-session", kind], strict=True)
        ratios = [a / b for a, b in pairs]
        print(f"| {kind} | {ours:.0f} | {theirs:.0f} | {statistics.median(ratios):.2f} |")

    print("\n## Scale: median µs per operation on random sessions")
    print("| sessions | load | load_and_touch | load + save_if |")
    print("| ---: | ---: | ---: | ---: |")
    for size, costs in scale_costs(args.scale, args.probes):
        print(
            f"| {size:,} | {costs['load']:.1f} | {costs['load_and_touch']:.1f}"
            f" | {costs['save_if']:.1f} |"
        )


if __name__ == "__main__":
    main()
