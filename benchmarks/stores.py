"""Store kits: for each store, how to start its server and configure every contender on it.

A kit gives each application its own namespace (a key prefix, a directory or a table), so that
the contenders never see each other's records, and knows how to count what a request cost the
store (see :mod:`benchmarks.counting`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import typing as t

from . import floors
from .apps import CONTENDERS
from .apps import VARIANTS
from .counting import CallCounter
from .counting import SocketCounter
from .counting import diff
from .counting import strace_available
from .counting import strace_syscalls

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask import Flask

#: Our store methods that reach the backend.
STORE_METHODS = (
    "load",
    "load_and_touch",
    "save",
    "save_if",
    "save_if_or_load",
    "touch",
    "delete",
    "purge_expired",
)


def round_trip_us(call: c.Callable[[], object], n: int = 500) -> str:
    """The median µs of one raw client call: what a round trip costs on this machine."""
    import statistics
    import time

    for _ in range(50):
        call()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return f"{statistics.median(samples):.0f} µs"


def installed_stores() -> set[str]:
    """The names of the installed flask-serverside stores."""
    return {ep.name for ep in importlib.metadata.entry_points(group="flask_serverside.stores")}


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


class StoreKit:
    """Base kit: subclasses fill in the store-specific parts."""

    #: Our store's entry-point name.
    name: t.ClassVar[str]
    #: The distribution that provides our store.
    dist: t.ClassVar[str]
    #: What the Flask-Session contender runs on.
    flask_session_backend: t.ClassVar[str]
    #: What the floor does.
    floor_label: t.ClassVar[str]
    #: How store-side cost is counted.
    counted_by: t.ClassVar[str]
    #: The counter that stands for round trips (``calls``, ``commands``, ``statements``, ...).
    primary: t.ClassVar[str] = "commands"
    #: The server executable the kit starts, if any.
    server_binary: t.ClassVar[str | None] = None
    #: The client modules the contenders import.
    client_modules: t.ClassVar[tuple[str, ...]] = ()
    #: Whether the variants of ours (raw keys, sealed records) are measured on this store.
    variants: t.ClassVar[bool] = False

    def __init__(self) -> None:
        self.floor_ops_by_ns: dict[str, floors.FloorOps] = {}

    def missing(self) -> str | None:
        """Why this store cannot be benchmarked here, or ``None``."""
        if self.server_binary is not None and shutil.which(self.server_binary) is None:
            return f"{self.server_binary} is not installed (scripts/install-servers)"
        for module in self.client_modules:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed"
        if self.name not in installed_stores():
            return f"our {self.name!r} store ({self.dist}) is not installed"
        return None

    def contenders(self) -> list[str]:
        """The contenders measured on this store: every one, and the variants of ours where
        :attr:`variants` is set."""
        return [*CONTENDERS, *(VARIANTS if self.variants else ())]

    def flask_session_missing(self) -> str | None:
        """Why the Flask-Session contender cannot run here, or ``None``."""
        if version("flask-session") == "not installed":
            return "Flask-Session is not installed (pip install flask-session==0.8.0)"
        return None

    def start(self) -> None:
        """Start the store's server, if it has one."""

    def close(self) -> None:
        """Stop what :meth:`start` started."""

    def describe(self) -> dict[str, str]:
        """Versions of what was measured."""
        return {self.dist: version(self.dist)}

    def ours_config(self, ns: str) -> dict[str, t.Any]:
        raise NotImplementedError

    def flask_session_config(self, ns: str) -> dict[str, t.Any]:
        raise NotImplementedError

    def floor_ops(self, ns: str) -> floors.FloorOps:
        raise NotImplementedError

    def floor(self, ns: str) -> floors.FloorOps:
        ops = self.floor_ops(ns)
        self.floor_ops_by_ns[ns] = ops
        return ops

    def instrument(self, contender: str, app: Flask, ns: str) -> None:
        """Hook counters into a contender's app (for client-side counting)."""

    def snapshot(self) -> dict[str, float]:
        """Cumulative store-side counters."""
        return {}

    @contextlib.contextmanager
    def counting(self, n: int) -> c.Iterator[dict[str, float]]:
        """Count what ``n`` requests inside the block cost the store, per request."""
        result: dict[str, float] = {}
        before = self.snapshot()
        yield result
        result.update(diff(before, self.snapshot(), n))

    def clear(self, contender: str, app: Flask, ns: str) -> None:
        """Remove the records of ``ns`` (between rounds of the login scenario)."""


# -- memory --------------------------------------------------------------------------------


class MemoryKit(StoreKit):
    name = "memory"
    dist = "flask-serverside"
    flask_session_backend = "cachelib SimpleCache (SESSION_TYPE='cachelib')"
    floor_label = "a dict of (expiry, bytes) behind a lock"
    counted_by = (
        "calls on the store object (ours: store methods; Flask-Session: cache get/set/delete)"
    )
    primary = "calls"
    variants = True

    def __init__(self) -> None:
        super().__init__()
        self.counter = CallCounter()
        self.caches: dict[str, t.Any] = {}

    def flask_session_missing(self) -> str | None:
        try:
            import cachelib  # noqa: F401
        except ImportError:
            return "cachelib is not installed (Flask-Session's in-memory backend)"
        return super().flask_session_missing()

    def describe(self) -> dict[str, str]:
        return {"flask-serverside": version("flask-serverside"), "cachelib": version("cachelib")}

    def ours_config(self, ns: str) -> dict[str, t.Any]:
        return {"SESSION_TYPE": "memory", "SESSION_KEY_PREFIX": f"{ns}:"}

    def flask_session_config(self, ns: str) -> dict[str, t.Any]:
        from cachelib import SimpleCache

        # threshold: SimpleCache's default (500) would prune on every login round.
        cache = SimpleCache(threshold=10**7)
        self.caches[ns] = cache
        return {
            "SESSION_TYPE": "cachelib",
            "SESSION_CACHELIB": cache,
            "SESSION_KEY_PREFIX": f"{ns}:",
        }

    def floor_ops(self, ns: str) -> floors.FloorOps:
        return floors.MemoryOps()

    def instrument(self, contender: str, app: Flask, ns: str) -> None:
        if contender == "ours" or contender in VARIANTS:
            self.counter.wrap(app.extensions["serverside"].store, STORE_METHODS)
        elif contender == "flask-session":
            self.counter.wrap(self.caches[ns], ("get", "set", "delete", "add", "has"))
        elif contender == "floor":
            self.counter.wrap(self.floor_ops_by_ns[ns], ("load", "save", "delete"))

    def snapshot(self) -> dict[str, float]:
        return self.counter.snapshot()

    def clear(self, contender: str, app: Flask, ns: str) -> None:
        if contender == "ours" or contender in VARIANTS:
            store = app.extensions["serverside"].store
            for sid in list(store.iter_sids()):
                store.delete(sid)
        elif contender == "flask-session":
            self.caches[ns].clear()
        elif contender == "floor":
            t.cast(floors.MemoryOps, self.floor_ops_by_ns[ns]).entries.clear()


# -- redis ---------------------------------------------------------------------------------


class RedisKit(StoreKit):
    name = "redis"
    dist = "flask-serverside-redis"
    flask_session_backend = "redis (SESSION_TYPE='redis', SESSION_REDIS=redis.Redis(...))"
    floor_label = "redis-py GET (GETEX when sliding) + SET EX"
    counted_by = (
        "round trips and bytes sent on the client's sockets; commands from the server's INFO"
        " commandstats (commands run inside a Lua script count there too)"
    )
    primary = "round trips"
    server_binary = "redis-server"
    client_modules = ("redis",)
    variants = True

    def start(self) -> None:
        import redis

        from serverside_testservers import RedisServer

        self.server = RedisServer()
        self.server.start()
        self.client = redis.Redis(host=self.server.host, port=self.server.port)
        self.admin = redis.Redis(host=self.server.host, port=self.server.port)
        # What one snapshot itself adds to the input byte count.
        a = self._raw_snapshot()
        b = self._raw_snapshot()
        self._info_bytes = b["net_in"] - a["net_in"]

    def close(self) -> None:
        self.client.close()
        self.admin.close()
        self.server.close()

    def describe(self) -> dict[str, str]:
        info = self.admin.info("server")
        return {
            self.dist: version(self.dist),
            "redis-py": version("redis"),
            "redis-server": str(info.get("redis_version")),
            "one raw GET round trip": round_trip_us(lambda: self.admin.get("bench:probe")),
        }

    def ours_config(self, ns: str) -> dict[str, t.Any]:
        return {
            "SESSION_TYPE": "redis",
            "SESSION_REDIS": self.client,
            "SESSION_KEY_PREFIX": f"{ns}:",
        }

    def flask_session_config(self, ns: str) -> dict[str, t.Any]:
        return {
            "SESSION_TYPE": "redis",
            "SESSION_REDIS": self.client,
            "SESSION_KEY_PREFIX": f"{ns}:",
        }

    def floor_ops(self, ns: str) -> floors.FloorOps:
        return floors.RedisOps(self.client)

    def _raw_snapshot(self) -> dict[str, float]:
        info = self.admin.info("all")
        snap: dict[str, float] = {"net_in": info["total_net_input_bytes"]}
        for key, value in info.items():
            if key.startswith("cmdstat_") and isinstance(value, dict):
                snap[key[len("cmdstat_") :]] = value["calls"]
        return snap

    def snapshot(self) -> dict[str, float]:
        raw = self._raw_snapshot()
        raw.pop("info", None)
        snap = {f"cmd:{key}": value for key, value in raw.items() if key != "net_in"}
        snap["commands"] = sum(snap.values())
        return snap

    @contextlib.contextmanager
    def counting(self, n: int) -> c.Iterator[dict[str, float]]:
        result: dict[str, float] = {}
        sockets = SocketCounter([self.server.port])
        before = self.snapshot()
        with sockets.active():
            yield result
        result.update(diff(before, self.snapshot(), n))
        result.update(diff({}, sockets.snapshot(), n))

    def clear(self, contender: str, app: Flask, ns: str) -> None:
        keys = list(self.admin.scan_iter(match=f"{ns}:*", count=1000))
        for start in range(0, len(keys), 500):
            self.admin.delete(*keys[start : start + 500])


# -- memcached -----------------------------------------------------------------------------


class MemcachedKit(StoreKit):
    name = "memcached"
    dist = "flask-serverside-memcached"
    flask_session_backend = (
        "memcached (SESSION_TYPE='memcached', a pymemcache Client whose writes wait for the"
        " reply, as ours do; pymemcache's default noreply is measured over HTTP only)"
    )
    floor_label = "pymemcache get (gat when sliding) + set, no_delay"
    counted_by = (
        "round trips and bytes sent on the client's sockets; commands from the server's stats"
        " (cmd_get, cmd_set, cmd_touch, deletes, cas)"
    )
    primary = "round trips"
    server_binary = "memcached"
    client_modules = ("pymemcache",)

    def start(self) -> None:
        from pymemcache.client.base import Client

        from serverside_testservers import MemcachedServer

        self.server = MemcachedServer()
        self.server.start()
        address = (self.server.host, self.server.port)
        self.client = Client(address, no_delay=True)
        # Like with like: Flask-Session's writes wait for memcached's reply, as ours do
        # (pymemcache's default is noreply: a write nobody checks; see the HTTP plans).
        self.fs_client = Client(address, no_delay=True, default_noreply=False)
        self.admin = Client(address)

    def close(self) -> None:
        for client in (self.client, self.fs_client, self.admin):
            client.close()
        self.server.close()

    def describe(self) -> dict[str, str]:
        stats = self.admin.stats()
        return {
            self.dist: version(self.dist),
            "pymemcache": version("pymemcache"),
            "memcached": stats[b"version"].decode(),
            "one raw get round trip": round_trip_us(lambda: self.client.get("bench_probe")),
        }

    def ours_config(self, ns: str) -> dict[str, t.Any]:
        # The form our README recommends: the store builds a no-delay client itself.
        return {
            "SESSION_TYPE": "memcached",
            "SESSION_MEMCACHED": [f"{self.server.host}:{self.server.port}"],
            "SESSION_KEY_PREFIX": f"{ns}:",
        }

    def flask_session_config(self, ns: str) -> dict[str, t.Any]:
        return {
            "SESSION_TYPE": "memcached",
            "SESSION_MEMCACHED": self.fs_client,
            "SESSION_KEY_PREFIX": f"{ns}:",
        }

    def floor_ops(self, ns: str) -> floors.FloorOps:
        return floors.MemcachedOps(self.client)

    def snapshot(self) -> dict[str, float]:
        stats = self.admin.stats()
        snap: dict[str, float] = {}
        for key in (
            "cmd_get",
            "cmd_set",
            "cmd_touch",
            "delete_hits",
            "delete_misses",
            "cas_hits",
            "cas_misses",
            "cas_badval",
        ):
            snap[f"cmd:{key}"] = float(stats.get(key.encode(), 0))
        return snap

    @contextlib.contextmanager
    def counting(self, n: int) -> c.Iterator[dict[str, float]]:
        result: dict[str, float] = {}
        sockets = SocketCounter([self.server.port])
        before = self.snapshot()
        with sockets.active():
            yield result
        result.update(diff(before, self.snapshot(), n))
        result.update(diff({}, sockets.snapshot(), n))


# -- filesystem ----------------------------------------------------------------------------


class FilesystemKit(StoreKit):
    name = "filesystem"
    dist = "flask-serverside-filesystem"
    flask_session_backend = (
        "filesystem (SESSION_TYPE='filesystem', SESSION_FILE_DIR; cachelib FileSystemCache,"
        " threshold 500)"
    )
    floor_label = (
        "one file read (open, fstat, read, close) + one atomic write (open O_EXCL, write,"
        " futimens, close, rename); the mtime is the expiry"
    )
    counted_by = (
        "file and descriptor syscalls of the process (strace attached for the counting pass)"
    )
    primary = "syscalls"

    def start(self) -> None:
        self.root = tempfile.mkdtemp(prefix="bench-files-")

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def describe(self) -> dict[str, str]:
        import platform

        return {
            self.dist: version(self.dist),
            "cachelib": version("cachelib"),
            "filesystem": _fs_type(self.root),
            "kernel": platform.release(),
        }

    def _dir(self, ns: str) -> str:
        path = os.path.join(self.root, ns)
        os.makedirs(path, exist_ok=True)
        return path

    def ours_config(self, ns: str) -> dict[str, t.Any]:
        return {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": self._dir(ns)}

    def flask_session_config(self, ns: str) -> dict[str, t.Any]:
        return {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": self._dir(ns)}

    def floor_ops(self, ns: str) -> floors.FloorOps:
        return floors.FileOps(self._dir(ns))

    @contextlib.contextmanager
    def counting(self, n: int) -> c.Iterator[dict[str, float]]:
        result: dict[str, float] = {}
        if not strace_available():
            yield result
            return
        with strace_syscalls(result, n):
            yield result

    def clear(self, contender: str, app: Flask, ns: str) -> None:
        path = self._dir(ns)
        for entry in os.scandir(path):
            if entry.is_file():
                os.unlink(entry.path)
            elif entry.is_dir():
                shutil.rmtree(entry.path)


# -- SQL (PostgreSQL) ------------------------------------------------------------------------


class SQLKit(StoreKit):
    name = "sqlalchemy"
    dist = "flask-serverside-sqlalchemy"
    flask_session_backend = (
        "sqlalchemy (SESSION_TYPE='sqlalchemy', SESSION_SQLALCHEMY = a Flask-SQLAlchemy db on"
        " PostgreSQL through psycopg 3; ours gets the same config)"
    )
    floor_label = (
        "psycopg 3 in autocommit, prepared: one SELECT (UPDATE ... RETURNING when sliding) + one"
        " INSERT ... ON CONFLICT DO UPDATE"
    )
    counted_by = (
        "SQLAlchemy engine events (statements, commits, rollbacks); round trips = statements +"
        " BEGIN + COMMIT/ROLLBACK of each transaction; the floor counts its own statements"
    )
    primary = "round trips"

    client_modules = ("flask_sqlalchemy", "psycopg", "sqlalchemy")

    def missing(self) -> str | None:
        if not _postgres_present():
            return "PostgreSQL is not installed (scripts/install-servers)"
        return super().missing()

    def start(self) -> None:
        import sqlalchemy as sa

        from serverside_testservers import PostgreSQLServer

        self.server = PostgreSQLServer()
        self.server.start()
        self.url = self.server.url.replace("postgresql://", "postgresql+psycopg://", 1)
        self.statements = 0
        self.transactions = 0
        self.bytes = 0
        self.begun = 0

        def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            self.statements += 1
            params = parameters if isinstance(parameters, (list, tuple)) else [parameters]
            for group in params:
                values = group.values() if hasattr(group, "values") else [group]
                for value in values:
                    value = getattr(value, "obj", value)  # psycopg's Binary wrapper
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        self.bytes += len(value)

        def on_commit(conn):  # type: ignore[no-untyped-def]
            # In autocommit mode the driver sends neither BEGIN nor COMMIT/ROLLBACK: SQLAlchemy
            # still fires the event, but nothing crosses the wire, so it is no round trip.
            if getattr(conn.connection.dbapi_connection, "autocommit", False):
                return
            self.transactions += 1

        self._listeners: list[tuple[t.Any, str, t.Any]] = [
            (sa.engine.Engine, "before_cursor_execute", before_cursor_execute),
            (sa.engine.Engine, "commit", on_commit),
            (sa.engine.Engine, "rollback", on_commit),
        ]
        for target, name, fn in self._listeners:
            sa.event.listen(target, name, fn)
        self.dbs: list[t.Any] = []

    def close(self) -> None:
        import sqlalchemy as sa

        for target, name, fn in self._listeners:
            sa.event.remove(target, name, fn)
        for ops in self.floor_ops_by_ns.values():
            t.cast(floors.SQLOps, ops).close()
        for app, db in self.dbs:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        self.server.close()

    def describe(self) -> dict[str, str]:
        import psycopg

        with psycopg.connect(self.server.dsn, autocommit=True, prepare_threshold=0) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            probe = round_trip_us(lambda: conn.execute("SELECT 1").fetchone())
        return {
            self.dist: version(self.dist),
            "SQLAlchemy": version("sqlalchemy"),
            "Flask-SQLAlchemy": version("flask-sqlalchemy"),
            "psycopg": version("psycopg"),
            "PostgreSQL": str(row[0] if row else "?"),
            "one raw SELECT round trip": probe,
        }

    def _config(self, ns: str) -> dict[str, t.Any]:
        from flask_sqlalchemy import SQLAlchemy

        db = SQLAlchemy()

        def before(app: Flask) -> None:
            db.init_app(app)
            self.dbs.append((app, db))

        return {
            "SESSION_TYPE": "sqlalchemy",
            "SQLALCHEMY_DATABASE_URI": self.url,
            "SESSION_SQLALCHEMY": db,
            "SESSION_SQLALCHEMY_TABLE": ns,
            "SESSION_KEY_PREFIX": f"{ns}:",
            "_before": before,
        }

    def ours_config(self, ns: str) -> dict[str, t.Any]:
        return self._config(ns)

    def flask_session_config(self, ns: str) -> dict[str, t.Any]:
        return self._config(ns)

    def floor_ops(self, ns: str) -> floors.FloorOps:
        return floors.SQLOps(self.server.dsn, ns)

    def snapshot(self) -> dict[str, float]:
        floor_ops = [t.cast(floors.SQLOps, ops) for ops in self.floor_ops_by_ns.values()]
        floor = sum(ops.statements for ops in floor_ops)
        return {
            "sql:statements": self.statements + floor,
            "sql:transactions": self.transactions,
            "round trips": self.statements + 2 * self.transactions + floor,
            "bytes": self.bytes + sum(ops.bytes for ops in floor_ops),
        }

    def clear(self, contender: str, app: Flask, ns: str) -> None:
        import psycopg

        with psycopg.connect(self.server.dsn, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {ns}")


def _postgres_present() -> bool:
    import glob

    return shutil.which("postgres") is not None or bool(
        glob.glob("/usr/lib/postgresql/*/bin/postgres")
    )


def _fs_type(path: str) -> str:
    try:
        best = ("", "?")
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mount, kind = parts[1], parts[2]
                if path.startswith(mount) and len(mount) > len(best[0]):
                    best = (mount, kind)
        return best[1]
    except OSError:
        return "?"


#: Every kit, in report order.
KITS: dict[str, type[StoreKit]] = {
    "memory": MemoryKit,
    "redis": RedisKit,
    "memcached": MemcachedKit,
    "filesystem": FilesystemKit,
    "sqlalchemy": SQLKit,
}
