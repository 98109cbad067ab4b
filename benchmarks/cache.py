"""The redis store's worker-local cache (``--cache``): what a repeated read costs with
``SESSION_REDIS_CACHE`` on.

1. **Counted**: commands per repeated read-only request of a cached session, from the server's
   ``INFO commandstats``, over many requests (sliding expiry on and off). The cache's own
   channel sends a ``PING`` once a second per process, not per request; it is listed apart.
2. **In-process** (as mode 1): read-only requests, sliding on and off, interleaved rounds of the
   cached store (``cached``), ours without the cache, Flask-Session, Flask's cookie session and
   a bare app; the session's own cost is the median over rounds of (contender − bare).
3. **HTTP**: ``/read`` in gunicorn (one sync worker) loaded by wrk, the cached store against
   Flask's cookie session (and ours without the cache, and bare), rounds interleaved.
4. **Mix**: gunicorn with 4 sync workers (each its own cache) and 200 sessions; wrk picks a
   random session per request and sends one ``/write`` per five ``/read``. The hit rate is
   1 − fetches / requests: every request loads its session once, and a load that misses the
   cache runs the fetch script, whose ``PTTL`` nothing else sends.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t

from . import apps
from .http import ROOT
from .http import _free_port
from .http import _login
from .http import _stop
from .http import _wait
from .http import _wrk
from .inprocess import Cell
from .inprocess import build_app
from .inprocess import fetch
from .inprocess import session_cookie
from .inprocess import time_rounds
from .inprocess import wsgi_caller
from .report import paired_ratio
from .report import share
from .stores import RedisKit

if t.TYPE_CHECKING:
    import argparse
    import collections.abc as c

    from flask import Flask

#: The heading of the section in RESULTS.md.
HEADING = "## Worker-local cache (redis, `SESSION_REDIS_CACHE`)"
#: The contenders of the in-process part, in report order.
CONTENDERS = ("cached", "ours", "flask-session", "cookie", "bare")
#: Requests counted per sliding mode.
COUNTED = 1000
#: Sessions of the mix, and its share of writes.
MIX_SESSIONS = 200
MIX_WRITE_EVERY = 6  # one /write, then five /read, on average
MIX_WORKERS = 4


def _cached_app(kit: RedisKit, ns: str, sliding: bool) -> Flask:
    config = {**kit.ours_config(ns), "SESSION_REDIS_CACHE": True}
    app = apps.make_app("cached", config, sliding=sliding, setup=apps.setup_ours)
    cache = app.extensions["serverside"].store.cache
    if not cache.wait_serving(10):
        raise RuntimeError("the session cache's invalidation channel did not come up")
    return app


def _cells(kit: RedisKit, contenders: c.Sequence[str]) -> list[Cell]:
    cells = []
    for sliding in (True, False):
        for contender in contenders:
            ns = f"cache_{contender.replace('-', '_')}_{'s' if sliding else 'f'}"
            if contender == "cached":
                app = _cached_app(kit, ns, sliding)
            else:
                app = build_app(kit, contender, ns, sliding)
            cookie = None
            if contender != "bare":
                cookie = session_cookie(fetch(app, "/login", None)[1])
                if cookie is None:
                    raise RuntimeError(f"{contender} set no session cookie")
            for _ in range(3):  # the first read fetches, the next ones are served
                status, _ = fetch(app, "/read", cookie)
                if not status.startswith("200"):
                    raise RuntimeError(f"{contender} /read answered {status}")
            call = wsgi_caller(app, "/read", cookie or "x" * 43)
            cells.append(Cell("redis", "read", sliding, contender, ns, app, call))
    return cells


def _count(kit: RedisKit, cell: Cell) -> dict[str, t.Any]:
    cache = cell.app.extensions["serverside"].store.cache
    hits = cache.stats["hits"]
    cell.call()
    with kit.counting(COUNTED) as cost:
        for _ in range(COUNTED):
            cell.call()
    commands = {k[4:]: v for k, v in cost.items() if k.startswith("cmd:")}
    pings = commands.pop("ping", 0.0)
    return {
        "requests": COUNTED,
        "commands": sum(commands.values()),
        "breakdown": commands,
        "pings": pings * COUNTED,
        "hits": cache.stats["hits"] - hits - 1,
    }


def _in_process(kit: RedisKit, args: argparse.Namespace, rounds: int, batch: int) -> dict:
    contenders = [
        c for c in CONTENDERS if c != "flask-session" or kit.flask_session_missing() is None
    ]
    cells = _cells(kit, contenders)
    try:
        return _measure(kit, cells, contenders, rounds, batch)
    finally:
        for cell in cells:
            if cell.contender == "cached":
                cell.app.extensions["serverside"].close()


def _measure(
    kit: RedisKit, cells: list[Cell], contenders: c.Sequence[str], rounds: int, batch: int
) -> dict[str, t.Any]:
    time_rounds(kit, cells, rounds, batch)
    out: dict[str, t.Any] = {"rounds": rounds, "batch": batch, "rows": {}, "counted": {}}
    by = {(cell.sliding, cell.contender): cell for cell in cells}
    for sliding in (True, False):
        mode = "on" if sliding else "off"
        bare = by[(sliding, "bare")].samples
        row: dict[str, float] = {}
        for contender in contenders:
            samples = by[(sliding, contender)].samples
            row[f"us:{contender}"] = statistics.median(samples)
            row[f"share:{contender}"] = share(samples, bare)
        cached = by[(sliding, "cached")].samples
        for peer in ("flask-session", "cookie", "ours"):
            if (sliding, peer) in by:
                row[f"ratio:{peer}"] = paired_ratio(cached, by[(sliding, peer)].samples)
                if row[f"share:{peer}"] > 0:
                    row[f"share_ratio:{peer}"] = row["share:cached"] / row[f"share:{peer}"]
        out["rows"][mode] = row
        out["counted"][mode] = _count(kit, by[(sliding, "cached")])
    return out


# -- over HTTP -------------------------------------------------------------------------------


def _gunicorn(
    target: str, contender: str, workers: int, ns: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = dict(
        os.environ,
        BENCH_STORE="redis",
        BENCH_CONTENDER=contender,
        BENCH_SLIDING="1",
        BENCH_TARGET=target,
        BENCH_NS=ns,
    )
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
            "--log-level", "warning", "benchmarks.wsgiapp:create()",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait(port, proc)
    return proc, port


_MIX_SCRIPT = """
local cookies = {%s}
math.randomseed(%d)
request = function()
  local cookie = cookies[math.random(#cookies)]
  local path = "/read"
  if math.random(%d) == 1 then path = "/write" end
  return wrk.format("GET", path, {["Cookie"] = "session=" .. cookie})
end
"""


def _wrk_mix(port: int, script: str, seconds: float, connections: int) -> tuple[float, int]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script,
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise RuntimeError(f"wrk printed no request count: {out}")
    return float(rps.group(1)), int(total.group(1))


def _fetches(kit: RedisKit) -> int:
    stats = kit.admin.info("commandstats")
    return int(stats.get("cmdstat_pttl", {}).get("calls", 0))


def _http(kit: RedisKit, args: argparse.Namespace, log: c.Callable[[str], None]) -> dict:
    if shutil.which("wrk") is None:
        return {"note": "not run: wrk is not installed (apt-get install wrk)"}
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return {"note": "not run: gunicorn is not installed"}
    seconds = 2 if args.preset != "full" else 3
    rounds = 9 if args.preset != "full" else 15
    if args.preset == "smoke":
        seconds, rounds = 1, 1
    target = kit.server.url
    out: dict[str, t.Any] = {"seconds": seconds, "rounds": rounds}
    # /read, one worker each, rounds interleaved.
    procs: list[subprocess.Popen[bytes]] = []
    try:
        servers = {}
        for contender in ("cached", "ours", "cookie", "bare"):
            proc, port = _gunicorn(target, contender, 1, f"cache_http_{contender}")
            procs.append(proc)
            servers[contender] = (port, _login(port))
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        order = list(servers)
        rng = random.Random(2)
        for number in range(rounds):
            rng.shuffle(order)
            for contender in order:
                port, cookie = servers[contender]
                samples[contender].append(_wrk(port, "/read", cookie, seconds, 4))
            log(f"cache http: round {number + 1}/{rounds}")
        out["read"] = {
            name: {
                key: statistics.median(run[key] for run in runs) for key in ("rps", "p50", "p99")
            }
            for name, runs in samples.items()
        }
        # Paired per round, as in mode 1: a burst of load elsewhere hits both runs of a round.
        out["read_ratio"] = paired_ratio(
            [run["rps"] for run in samples["cached"]], [run["rps"] for run in samples["cookie"]]
        )
    finally:
        _stop(procs)
    # The mix: 4 workers, one /write per five /read over many sessions.
    out["mix"] = {}
    for contender in ("cached", "ours", "cookie"):
        proc, port = _gunicorn(target, contender, MIX_WORKERS, f"cache_mix_{contender}")
        scratch = tempfile.mkdtemp(prefix="bench-mix-")
        try:
            cookies = [_login(port) for _ in range(MIX_SESSIONS)]
            script = os.path.join(scratch, "mix.lua")
            with open(script, "w") as f:
                f.write(_MIX_SCRIPT % (", ".join(f'"{c}"' for c in cookies), 7, MIX_WRITE_EVERY))
            _wrk_mix(port, script, 1, 8)  # warm-up: every worker's channel up, caches filled
            time.sleep(0.2)
            before = _fetches(kit)
            runs = [_wrk_mix(port, script, seconds, 8) for _ in range(rounds)]
            fetches = _fetches(kit) - before
            requests = sum(total for _, total in runs)
            row: dict[str, float] = {
                "rps": statistics.median(rps for rps, _ in runs),
                "requests": requests,
            }
            if contender == "cached":
                row["fetches"] = fetches
                row["hit_rate"] = 1 - fetches / requests if requests else 0.0
            out["mix"][contender] = row
            log(f"cache mix: {contender} done")
        finally:
            _stop([proc])
            shutil.rmtree(scratch, ignore_errors=True)
    return out


def run_cache(
    args: argparse.Namespace, rounds: int, batch: int, log: c.Callable[[str], None]
) -> dict:
    """Run the four parts on a redis-server of their own."""
    kit = RedisKit()
    reason = kit.missing()
    if reason is not None:
        return {"note": f"not run: {reason}"}
    kit.start()
    try:
        out: dict[str, t.Any] = {"versions": kit.describe()}
        log("cache: in-process")
        out["inprocess"] = _in_process(kit, args, rounds, batch)
        log("cache: over HTTP")
        out["http"] = _http(kit, args, log)
        return out
    finally:
        kit.close()


def targets(cache: dict[str, t.Any]) -> list[tuple[str, str, str, str]]:
    """(target, measured, verdict, note) of the cache's targets."""
    rows: list[tuple[str, str, str, str]] = []
    if "inprocess" not in cache:
        note = cache.get("note", "not in this run (--cache)")
        return [("redis cache: 0 commands per repeated read", "-", "not measured", note)]
    inproc = cache["inprocess"]
    for mode in ("on", "off"):
        counted = inproc["counted"][mode]
        commands = counted["commands"]
        rows.append(
            (
                f"redis cache, sliding {mode}: 0 commands per repeated read-only request",
                f"{commands:g} over {counted['requests']} requests"
                f" ({counted['hits']} served from the cache)",
                "met" if commands == 0 else "**missed**",
                ""
                if commands == 0
                else ", ".join(f"{k} {v:g}" for k, v in counted["breakdown"].items()),
            )
        )
        row = inproc["rows"][mode]
        ratio = row.get("share_ratio:flask-session")
        if ratio is not None:
            rows.append(
                (
                    f"redis cache, sliding {mode}: session cost ≤ 0.3× Flask-Session's",
                    f"{ratio:.2f}× ({row['share:cached']:.0f} µs vs"
                    f" {row['share:flask-session']:.0f} µs over bare)",
                    "met" if ratio <= 0.3 else "**missed**",
                    "" if ratio <= 0.3 else f"missed by {(ratio / 0.3 - 1) * 100:.0f}%",
                )
            )
    http = cache.get("http", {})
    read = http.get("read")
    if read is None:
        rows.append(
            ("redis cache: HTTP /read within 15% of Flask's cookie session", "-", "not measured",
             http.get("note", ""))
        )  # fmt: skip
    else:
        ratio = http["read_ratio"]
        rows.append(
            (
                "redis cache: HTTP /read requests/s within 15% of Flask's cookie session",
                f"{ratio:.2f}× (median of per-round ratios; medians {read['cached']['rps']:.0f}"
                f" vs {read['cookie']['rps']:.0f} /s)",
                "met" if ratio >= 0.85 else "**missed**",
                "" if ratio >= 0.85 else f"missed by {(0.85 - ratio) * 100:.0f} points",
            )
        )
    return rows


def render(add: c.Callable[[str], None], cache: dict[str, t.Any]) -> None:
    """The section of RESULTS.md."""
    add(f"{HEADING}\n")
    run = cache.get("run")
    if run:
        add(
            f"Measured in a run of its own, not the one above: {run['date']}, `{run['command']}`,"
            f" load average before {run['load before']}, after {run['load after']},"
            f" {run['duration']:.0f} s.\n"
        )
    if "inprocess" not in cache:
        add(f"{cache.get('note', 'not run')}\n")
        return
    versions = ", ".join(f"{k} {v}" for k, v in cache["versions"].items())
    add(f"- versions: {versions}")
    add(
        "- method: see the docstring of `benchmarks/cache.py`; *cached* is our redis store with"
        " `SESSION_REDIS_CACHE = True`, *ours* the same store without it\n"
    )
    add("| target | measured | verdict | note |")
    add("| --- | --- | --- | --- |")
    for row in targets(cache):
        add("| " + " | ".join(row) + " |")
    add("")
    inproc = cache["inprocess"]
    add(
        f"In-process, read-only requests ({inproc['rounds']} rounds × {inproc['batch']} requests"
        " per cell, interleaved): µs per request (median over rounds) and *session* = median of"
        " (contender − bare).\n"
    )
    add("| sliding | contender | µs | session µs | cached / contender (whole request) |")
    add("| --- | --- | ---: | ---: | ---: |")
    for mode, row in inproc["rows"].items():
        for contender in CONTENDERS:
            if f"us:{contender}" not in row:
                continue
            ratio = row.get(f"ratio:{contender}")
            add(
                f"| {mode} | {contender} | {row[f'us:{contender}']:.0f} "
                f"| {row[f'share:{contender}']:.0f} | {'-' if ratio is None else f'{ratio:.2f}'} |"
            )
    add("")
    add("Counted (server's `INFO commandstats`) over repeated read-only requests of one session:\n")
    add(
        "| sliding | requests | commands per request | served from the cache"
        " | channel heartbeats (PING, not per request) |"
    )
    add("| --- | ---: | ---: | ---: | ---: |")
    for mode, counted in inproc["counted"].items():
        add(
            f"| {mode} | {counted['requests']} | {counted['commands']:g} | {counted['hits']} "
            f"| {counted['pings']:.0f} |"
        )
    add("")
    http = cache.get("http", {})
    if "read" not in http:
        add(f"HTTP: {http.get('note', 'not run')}\n")
        return
    add(
        f"HTTP `/read` (gunicorn, 1 sync worker; wrk -t1 -c4, {http['seconds']} s × "
        f"{http['rounds']} rounds interleaved; medians), sliding expiry on; cached / cookie,"
        f" median of the rounds' ratios: {http['read_ratio']:.2f}×\n"
    )
    add("| contender | requests/s | p50 ms | p99 ms |")
    add("| --- | ---: | ---: | ---: |")
    for name, row in http["read"].items():
        add(f"| {name} | {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} |")
    add("")
    add(
        f"The mix: gunicorn with {MIX_WORKERS} sync workers, {MIX_SESSIONS} sessions, a random"
        f" session per request, one `/write` per {MIX_WRITE_EVERY - 1} `/read` on average"
        f" (wrk -t1 -c8, {http['seconds']} s × {http['rounds']}); hit rate = 1 − fetches /"
        " requests.\n"
    )
    add("| contender | requests/s | requests | fetches from Redis | hit rate |")
    add("| --- | ---: | ---: | ---: | ---: |")
    for name, row in http["mix"].items():
        hit = row.get("hit_rate")
        add(
            f"| {name} | {row['rps']:.0f} | {row['requests']:.0f} "
            f"| {row.get('fetches', '-')} | {'-' if hit is None else f'{hit * 100:.1f}%'} |"
        )
    add("")
    add(
        "Why the hit rate is what it is: a write invalidates the session in every worker, the"
        " writer's included, so each worker that serves the session before its next write"
        " fetches it once. If every request went to a random one of 4 workers, the 6 loads of a"
        " write-and-5-reads cycle would reach about 3.3 distinct workers (a hit rate of"
        " 1 − 3.3/6 ≈ 45%; gunicorn's workers take connections unevenly, which helps a little);"
        " with sticky routing (one worker per session) the ceiling is 5/6 ≈ 83%. Read-mostly"
        " sessions come close to 100%.\n"
    )


def update_section(text: str, section: str) -> str:
    """Return the Markdown ``text`` with its cache section replaced by ``section`` (appended
    when it has none), the rest left as it was."""
    lines = text.rstrip("\n").split("\n")
    try:
        start = lines.index(HEADING)
    except ValueError:
        return "\n".join(lines) + "\n\n" + section
    end = next((n for n in range(start + 1, len(lines)) if lines[n].startswith("## ")), len(lines))
    rest = lines[end:]
    return (
        "\n".join(lines[:start]) + "\n" + section + ("\n" + "\n".join(rest) + "\n" if rest else "")
    )
