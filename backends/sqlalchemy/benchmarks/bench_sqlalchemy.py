"""Per-request cost of the sqlalchemy store against Flask-Session 0.8's sqlalchemy backend, on a
SQLite file and on a throwaway PostgreSQL, in the same run.

Run from the repository root (needs serverside-testservers, flask-session==0.8.0,
flask-sqlalchemy and psycopg)::

    python backends/sqlalchemy/benchmarks/bench_sqlalchemy.py [--requests 2000]

For each contender and request kind it prints the mean time per request and the statements
and commits SQLAlchemy sent per request (counted with engine events).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
import typing as t

import flask_session
import sqlalchemy as sa
from flask import Flask
from flask import session
from flask_sqlalchemy import SQLAlchemy

import flask_serverside
from serverside_testservers.postgresql import PostgreSQLServer

KINDS = ("read, sliding", "read, fixed", "write")


def make_app(contender: str, url: str, sliding: bool) -> tuple[Flask, sa.Engine]:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="bench",
        SQLALCHEMY_DATABASE_URI=url,
        SESSION_TYPE="sqlalchemy",
        SESSION_SQLALCHEMY_TABLE=f"bench_{contender}_{secrets.token_hex(3)}",
        SESSION_REFRESH_EACH_REQUEST=sliding,
    )
    db = SQLAlchemy()
    app.config["SESSION_SQLALCHEMY"] = db
    db.init_app(app)
    if contender == "ours":
        flask_serverside.Session(app)
    else:
        flask_session.Session(app)

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"user": session.get("user")}

    @app.post("/write")
    def write() -> dict[str, t.Any]:
        session["count"] = session.get("count", 0) + 1
        session["user"] = "alice"
        return {"ok": True}

    with app.app_context():
        engine = db.engine
    return app, engine


def measure(contender: str, url: str, kind: str, requests: int) -> dict[str, float]:
    app, engine = make_app(contender, url, sliding=kind != "read, fixed")
    client = app.test_client()
    client.post("/write")
    counts = {"statements": 0, "commits": 0}

    def on_execute(*args: t.Any) -> None:
        counts["statements"] += 1

    def on_commit(*args: t.Any) -> None:
        counts["commits"] += 1

    call = (lambda: client.post("/write")) if kind == "write" else (lambda: client.get("/read"))
    for _ in range(50):
        call()
    sa.event.listen(engine, "before_cursor_execute", on_execute)
    sa.event.listen(engine, "commit", on_commit)
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        response = call()
        times.append(time.perf_counter() - began)
        assert response.status_code == 200
    sa.event.remove(engine, "before_cursor_execute", on_execute)
    sa.event.remove(engine, "commit", on_commit)
    if "serverside" in app.extensions:
        app.extensions["serverside"].close()
    engine.dispose()
    return {
        "ms": statistics.fmean(times) * 1000,
        "p99": sorted(times)[int(len(times) * 0.99)] * 1000,
        "statements": counts["statements"] / requests,
        "commits": counts["commits"] / requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    server = PostgreSQLServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as directory:
            databases = {
                "sqlite": f"sqlite:///{directory}/bench.db",
                "postgresql": server.url.replace("postgresql://", "postgresql+psycopg://"),
            }
            print(f"{'database':<11} {'request':<14} {'contender':<14} {'ms/req':>7} "
                  f"{'p99 ms':>7} {'stmts':>6} {'commits':>7} {'speed-up':>8}")  # fmt: skip
            for database, url in databases.items():
                for kind in KINDS:
                    results = {c: measure(c, url, kind, args.requests) for c in ("ours", "fs08")}
                    for contender, name in (("ours", "ours"), ("fs08", "Flask-Session")):
                        r = results[contender]
                        speedup = results["fs08"]["ms"] / r["ms"]
                        print(f"{database:<11} {kind:<14} {name:<14} {r['ms']:7.3f} "
                              f"{r['p99']:7.3f} {r['statements']:6.2f} {r['commits']:7.2f} "
                              f"{speedup:7.1f}x")  # fmt: skip
    finally:
        server.close()


if __name__ == "__main__":
    main()
