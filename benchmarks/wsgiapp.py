"""The contender apps for mode 2, built in a gunicorn worker from environment variables.

``gunicorn 'benchmarks.wsgiapp:create()'`` with ``BENCH_STORE`` (memory, redis, memcached,
filesystem, sqlalchemy), ``BENCH_CONTENDER`` (one of :data:`benchmarks.apps.CONTENDERS`, or
``cached``: ours on redis with ``SESSION_REDIS_CACHE``), ``BENCH_SLIDING`` (``1``/``0``),
``BENCH_TARGET`` (the server's URL or the session directory) and ``BENCH_NS`` (the key prefix,
subdirectory or table). With ``BENCH_STATS_DIR``, each worker of ours counts its requests and
the conditional saves it had to retry (:data:`flask_serverside.signals.write_conflicted`) and
writes them to a JSON file of its own in that directory when it exits.
"""

from __future__ import annotations

import atexit
import json
import os
import typing as t

from . import apps
from . import floors

if t.TYPE_CHECKING:
    from flask import Flask


def _count_conflicts(app: Flask, directory: str) -> None:
    """Count requests and conditional saves in this worker, and time the requests that lost a
    conditional save apart from the others; write it all to a file at exit."""
    import time

    from flask import g

    from flask_serverside import get_state
    from flask_serverside import signals

    counts = {"requests": 0, "conflicted": 0, "retries": 0, "unsaved": 0, "cas_lost": 0}
    times: dict[str, list[float]] = {"clean": [], "lost": []}
    state = get_state(app)
    store = state.store
    save_if = getattr(store, "save_if", None)
    save_if_or_load = getattr(store, "save_if_or_load", None)

    def lost() -> None:
        counts["cas_lost"] += 1
        g.bench_lost = True

    if save_if is not None:

        def counted_save_if(*args: t.Any, **kwargs: t.Any) -> bool:
            saved = bool(save_if(*args, **kwargs))
            if not saved:
                lost()
            return saved

        store.save_if = counted_save_if  # type: ignore[attr-defined]

    if save_if_or_load is not None:

        def counted_save_if_or_load(*args: t.Any, **kwargs: t.Any) -> t.Any:
            saved, current = save_if_or_load(*args, **kwargs)
            if not saved:
                lost()
            return saved, current

        store.save_if_or_load = counted_save_if_or_load  # type: ignore[attr-defined]

    @app.before_request
    def start() -> None:
        g.bench_started = time.perf_counter()

    @app.teardown_request
    def count_request(exc: BaseException | None) -> None:
        from flask import request

        if request.path in ("/read", "/login"):
            return  # only the writing scenarios: the same server also serves the read cells
        counts["requests"] += 1
        started = g.get("bench_started")
        if started is not None:
            kind = "lost" if g.get("bench_lost") else "clean"
            times[kind].append(time.perf_counter() - started)

    def conflicted(sender: t.Any, attempts: int, saved: bool, **extra: t.Any) -> None:
        counts["conflicted"] += 1
        counts["retries"] += attempts - 1
        counts["unsaved"] += not saved

    signals.write_conflicted.connect(conflicted, app, weak=False)

    def write() -> None:
        with open(os.path.join(directory, f"{os.getpid()}.json"), "w") as f:
            json.dump({**counts, "times": times}, f)

    atexit.register(write)


def _store_config(store: str, target: str, ns: str, contender: str) -> dict[str, t.Any]:
    prefix = {"SESSION_KEY_PREFIX": f"{ns}:"}
    if store == "memory":
        if contender == "flask-session":
            from cachelib import SimpleCache

            return {"SESSION_TYPE": "cachelib", "SESSION_CACHELIB": SimpleCache(10**7), **prefix}
        return {"SESSION_TYPE": "memory", **prefix}
    if store == "redis":
        import redis

        return {"SESSION_TYPE": "redis", "SESSION_REDIS": redis.Redis.from_url(target), **prefix}
    if store == "memcached":
        host, port = target.rsplit(":", 1)
        if contender.startswith("flask-session"):
            from pymemcache.client.base import Client

            # Like with like: writes wait for memcached's reply, as ours do; pymemcache's
            # default (noreply) only for the "flask-session-noreply" contender.
            noreply = contender == "flask-session-noreply"
            client = Client((host, int(port)), no_delay=True, default_noreply=noreply)
            return {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": client, **prefix}
        return {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": [target], **prefix}
    if store == "filesystem":
        path = os.path.join(target, ns)
        os.makedirs(path, exist_ok=True)
        return {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": path}
    if store == "sqlalchemy":
        from flask_sqlalchemy import SQLAlchemy

        db = SQLAlchemy()
        return {
            "SESSION_TYPE": "sqlalchemy",
            "SQLALCHEMY_DATABASE_URI": target,
            "SESSION_SQLALCHEMY": db,
            "SESSION_SQLALCHEMY_TABLE": ns,
            **prefix,
            "_before": db.init_app,
        }
    raise ValueError(f"mode 2 does not know the store {store!r}")


def _floor_ops(store: str, target: str, ns: str) -> floors.FloorOps:
    if store == "memory":
        return floors.MemoryOps()
    if store == "redis":
        import redis

        return floors.RedisOps(redis.Redis.from_url(target))
    if store == "memcached":
        from pymemcache.client.base import Client

        host, port = target.rsplit(":", 1)
        return floors.MemcachedOps(Client((host, int(port)), no_delay=True))
    if store == "filesystem":
        return floors.FileOps(os.path.join(target, ns))
    if store == "sqlalchemy":
        return floors.SQLOps(target.replace("postgresql+psycopg://", "postgresql://", 1), ns)
    raise ValueError(store)


def create() -> Flask:
    store = os.environ["BENCH_STORE"]
    contender = os.environ["BENCH_CONTENDER"]
    sliding = os.environ.get("BENCH_SLIDING", "1") == "1"
    target = os.environ.get("BENCH_TARGET", "")
    ns = os.environ["BENCH_NS"]
    if contender == "bare":
        return apps.make_app(contender, {}, sliding=sliding, setup=apps.setup_bare)
    if contender == "cookie":
        return apps.make_app(contender, {}, sliding=sliding)
    if contender == "floor":
        ops = _floor_ops(store, target, ns)

        def setup_floor(app: Flask) -> None:
            app.session_interface = floors.FloorInterface(ops, f"{ns}:")

        return apps.make_app(contender, {}, sliding=sliding, setup=setup_floor)
    config = _store_config(store, target, ns, contender)
    if contender == "cached":
        config["SESSION_REDIS_CACHE"] = True
    before = config.pop("_before", None)
    ours = contender in ("ours", "cached") or contender in apps.VARIANTS
    config.update(apps.VARIANTS.get(contender, {}))
    install = apps.setup_ours if ours else apps.setup_flask_session

    def setup(app: Flask) -> None:
        if before is not None:
            before(app)
        install(app)

    app = apps.make_app(contender, config, sliding=sliding, setup=setup)
    stats = os.environ.get("BENCH_STATS_DIR")
    if ours and stats:
        _count_conflicts(app, stats)
    return app
