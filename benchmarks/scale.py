"""Scale runs (``--scale``): does a request cost the same with 1k, 100k or 1M stored sessions?

For redis, SQL (PostgreSQL) and filesystem, our store's app (sliding expiry on) is timed on a
read-only and a writing request while the store holds more and more other sessions. Filler
records are written in bulk with the raw client in the store's own layout (redis keys under the
same prefix, rows in the same table, files through the store itself). Then purge throughput:
how fast expired records are deleted (ours, and Flask-Session's sqlalchemy cleanup).
"""

from __future__ import annotations

import secrets
import statistics
import time
import typing as t

from .inprocess import build_app
from .inprocess import fetch
from .inprocess import session_cookie
from .inprocess import wsgi_caller
from .stores import KITS

if t.TYPE_CHECKING:
    import argparse
    import collections.abc as c

    from .stores import StoreKit

SIZES = {
    "redis": (1_000, 100_000, 1_000_000),
    "sqlalchemy": (1_000, 100_000, 1_000_000),
    "filesystem": (1_000, 10_000, 100_000),
}
PAYLOAD = b"\x81\xa4name\xadAlice Example"


def _time(calls: c.Sequence[c.Callable[[], None]], rounds: int, batch: int) -> list[list[float]]:
    """Time the calls interleaved, batch by batch: per-request µs of each round, per call."""
    for call in calls:
        for _ in range(batch):
            call()
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for index, call in enumerate(calls):
            start = time.perf_counter_ns()
            for _ in range(batch):
                call()
            samples[index].append((time.perf_counter_ns() - start) / batch / 1000)
    return samples


def _fill(kit: StoreKit, name: str, store: t.Any, ns: str, start: int, stop: int) -> None:
    if name == "redis":
        client = kit.admin  # type: ignore[attr-defined]
        for first in range(start, stop, 10_000):
            pipe = client.pipeline(transaction=False)
            for i in range(first, min(stop, first + 10_000)):
                pipe.set(f"{ns}:fill{i:07d}", PAYLOAD, ex=3600)
            pipe.execute()
    elif name == "sqlalchemy":
        import psycopg

        with psycopg.connect(kit.server.dsn, autocommit=True) as conn:  # type: ignore[attr-defined]
            conn.execute(
                f"INSERT INTO {ns} (session_id, data, expiry, version)"
                " SELECT %s || 'fill' || lpad(i::text, 7, '0'), %s,"
                " (now() AT TIME ZONE 'utc') + interval '1 hour', 1"
                " FROM generate_series(%s::int, %s::int) AS i",
                (f"{ns}:", PAYLOAD, start, stop - 1),
            )
            # A table in steady state: not measured while autovacuum digests the bulk insert.
            conn.execute(f"VACUUM ANALYZE {ns}")
    elif name == "filesystem":
        for _ in range(start, stop):
            store.save(secrets.token_urlsafe(32), PAYLOAD, 3600)


def run_scale(args: argparse.Namespace, log: c.Callable[[str], None]) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    quick = args.preset != "full"
    rounds, batch = (30, 20) if quick else (60, 50)
    for name in ("redis", "sqlalchemy", "filesystem"):
        if name not in args.stores:
            continue
        kit = KITS[name]()
        reason = kit.missing()
        if reason is not None:
            out[name] = {"note": f"not run: {reason}"}
            continue
        kit.start()
        try:
            out[name] = _scale_store(kit, name, rounds, batch, log)
        finally:
            kit.close()
    if "memory" in args.stores:
        from .footprint import memory_rss

        out["memory"] = {"rss": [memory_rss("ours"), memory_rss("flask-session")]}
        log(f"memory footprint: {out['memory']['rss']}")
    return out


def _scale_store(
    kit: StoreKit, name: str, rounds: int, batch: int, log: c.Callable[[str], None]
) -> dict[str, t.Any]:
    ns = "scale"
    if name == "filesystem":
        original = kit.ours_config

        def unlimited(ns: str) -> dict[str, t.Any]:
            return {**original(ns), "SESSION_FILE_THRESHOLD": 0}

        kit.ours_config = unlimited  # type: ignore[method-assign]
    app = build_app(kit, "ours", ns, True)
    store = app.extensions["serverside"].store
    _, headers = fetch(app, "/login", None)
    cookie = session_cookie(headers)
    read = wsgi_caller(app, "/read", cookie)
    write = wsgi_caller(app, "/write", cookie)
    bare_app = build_app(kit, "bare", "bare", True)
    bare = wsgi_caller(bare_app, "/read", "x" * 43)
    points = []
    filled = 0
    for size in SIZES[name]:
        started = time.monotonic()
        _fill(kit, name, store, ns, filled, size)
        filled = size
        fill_s = time.monotonic() - started
        reads, writes, bares = _time([read, write, bare], rounds, batch)
        points.append(
            {
                "n": size,
                "us": statistics.median(reads),
                "write_us": statistics.median(writes),
                "bare_us": statistics.median(bares),
                "read_share": statistics.median(r - b for r, b in zip(reads, bares, strict=True)),
                "write_share": statistics.median(w - b for w, b in zip(writes, bares, strict=True)),
            }
        )
        log(f"scale {name}: {size:,} sessions (filled in {fill_s:.0f} s): {points[-1]}")
    result: dict[str, t.Any] = {
        "points": points,
        "note": "sliding on; filler records written in bulk; ours and a bare app interleaved",
    }
    if name == "filesystem":
        from .footprint import disk_use

        result["disk"] = {"n": filled, **disk_use(kit._dir(ns))}  # type: ignore[attr-defined]
        log(f"scale {name}: disk use {result['disk']}")
    result["purge"] = _purge(kit, name, log)
    return result


def _purge(kit: StoreKit, name: str, log: c.Callable[[str], None]) -> list[dict[str, t.Any]]:
    n = 20_000
    rows: list[dict[str, t.Any]] = []
    if name == "sqlalchemy":
        import psycopg

        ours = build_app(kit, "ours", "purge_ours", True)
        fs = build_app(kit, "flask-session", "purge_fs", True)
        with psycopg.connect(kit.server.dsn, autocommit=True) as conn:  # type: ignore[attr-defined]
            conn.execute(
                "INSERT INTO purge_ours (session_id, data, expiry, version)"
                " SELECT 'purge_ours:x' || i, %s, (now() AT TIME ZONE 'utc') - interval '1 hour', 1"
                " FROM generate_series(1, %s::int) AS i",
                (PAYLOAD, n),
            )
            conn.execute(
                "INSERT INTO purge_fs (session_id, data, expiry)"
                " SELECT 'purge_fs:x' || i, %s, (now() AT TIME ZONE 'utc') - interval '1 hour'"
                " FROM generate_series(1, %s::int) AS i",
                (PAYLOAD, n),
            )
        store = ours.extensions["serverside"].store
        started = time.perf_counter()
        removed = store.purge_expired()
        rows.append({"contender": "ours", "n": removed, "seconds": time.perf_counter() - started})
        with fs.app_context():
            started = time.perf_counter()
            fs.session_interface._delete_expired_sessions()  # type: ignore[attr-defined]
            seconds = time.perf_counter() - started
        with psycopg.connect(kit.server.dsn, autocommit=True) as conn:  # type: ignore[attr-defined]
            counted = conn.execute("SELECT count(*) FROM purge_fs").fetchone()
        left = int(counted[0]) if counted else 0
        rows.append({"contender": "flask-session", "n": n - left, "seconds": seconds})
    elif name == "filesystem":
        app = build_app(kit, "ours", "purge_ours", True)
        store = app.extensions["serverside"].store
        for _ in range(n):
            store.save(secrets.token_urlsafe(32), PAYLOAD, 1)
        time.sleep(2.1)
        started = time.perf_counter()
        removed = store.purge_expired()
        rows.append({"contender": "ours", "n": removed, "seconds": time.perf_counter() - started})
    for row in rows:
        log(f"purge {name}: {row}")
    return rows
