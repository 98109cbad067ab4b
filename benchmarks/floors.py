"""The raw-client floor: the least a server-side session can do per request.

:class:`FloorInterface` is a Flask session interface with no policy at all: it reads the id from
the cookie, loads the record with one raw client call (refreshing its expiry in the same call
when sliding expiry is on and the backend can), decodes it with msgpack, and on a change
encodes the whole dict and writes it with one raw client call. It does what any correct
server-side session must (cookie, expiry, serialization) and nothing else: no id validation,
no signing, no conflict handling, no fault policy, no change detection beyond ``modified``.

The per-store operations (:class:`FloorOps`) are the calls the issue names: redis-py GET (GETEX
when sliding) + SET EX; pymemcache get (gat when sliding) + set on a ``no_delay`` client; one
SELECT (an UPDATE ... RETURNING when sliding) + one upsert; one file read + one atomic write.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import typing as t

import msgspec
from flask.sessions import SessionInterface
from flask.sessions import SessionMixin
from werkzeug.datastructures import CallbackDict

if t.TYPE_CHECKING:
    from flask import Flask
    from flask import Request
    from flask import Response


class FloorOps(t.Protocol):
    def load(self, key: str, touch_ttl: int | None) -> bytes | None: ...

    def save(self, key: str, data: bytes, ttl: int) -> None: ...

    def delete(self, key: str) -> None: ...


class FloorSession(CallbackDict[str, t.Any], SessionMixin):
    def __init__(self, initial: t.Any = None, sid: str | None = None) -> None:
        def on_update(self: FloorSession) -> None:
            self.modified = True
            self.accessed = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.modified = False
        self.accessed = False

    def __getitem__(self, key: str) -> t.Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: t.Any = None) -> t.Any:
        self.accessed = True
        return super().get(key, default)


class FloorInterface(SessionInterface):
    """See the module docstring."""

    def __init__(self, ops: FloorOps, prefix: str) -> None:
        self.ops = ops
        self.prefix = prefix
        self.encode = msgspec.msgpack.Encoder().encode
        self.decode = msgspec.msgpack.Decoder().decode

    def open_session(self, app: Flask, request: Request) -> FloorSession:
        sid = request.cookies.get(app.config["SESSION_COOKIE_NAME"])
        if sid:
            ttl = int(app.permanent_session_lifetime.total_seconds())
            touch = ttl if app.config["SESSION_REFRESH_EACH_REQUEST"] else None
            data = self.ops.load(self.prefix + sid, touch)
            if data is not None:
                return FloorSession(self.decode(data), sid)
        session = FloorSession()
        dict.__setitem__(session, "_permanent", True)
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, FloorSession)
        if session.accessed:
            response.vary.add("Cookie")
        if session.keys() <= {"_permanent"}:
            return
        ttl = int(app.permanent_session_lifetime.total_seconds())
        if session.modified:
            if session.sid is None:
                session.sid = secrets.token_urlsafe(32)
            self.ops.save(self.prefix + session.sid, self.encode(dict(session)), ttl)
        if self.should_set_cookie(app, session):
            response.set_cookie(
                app.config["SESSION_COOKIE_NAME"],
                t.cast(str, session.sid),
                expires=self.get_expiration_time(app, session),
                httponly=True,
                path=self.get_cookie_path(app),
                samesite="Lax",
            )
            response.vary.add("Cookie")


# -- per-store operations ------------------------------------------------------------------


class MemoryOps:
    """A dict of (expiry, data): the floor for the ``memory`` store."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, bytes]] = {}
        self.lock = threading.Lock()

    def load(self, key: str, touch_ttl: int | None) -> bytes | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or entry[0] <= time.monotonic():
                return None
            if touch_ttl is not None:
                self.entries[key] = (time.monotonic() + touch_ttl, entry[1])
            return entry[1]

    def save(self, key: str, data: bytes, ttl: int) -> None:
        with self.lock:
            self.entries[key] = (time.monotonic() + ttl, data)

    def delete(self, key: str) -> None:
        with self.lock:
            self.entries.pop(key, None)


class RedisOps:
    """redis-py: GET (GETEX when sliding) and SET EX."""

    def __init__(self, client: t.Any) -> None:
        self.client = client

    def load(self, key: str, touch_ttl: int | None) -> bytes | None:
        if touch_ttl is None:
            return self.client.get(key)  # type: ignore[no-any-return]
        return self.client.getex(key, ex=touch_ttl)  # type: ignore[no-any-return]

    def save(self, key: str, data: bytes, ttl: int) -> None:
        self.client.set(key, data, ex=ttl)

    def delete(self, key: str) -> None:
        self.client.delete(key)


class MemcachedOps:
    """pymemcache (``no_delay=True``): get (gat when sliding) and set."""

    def __init__(self, client: t.Any) -> None:
        self.client = client

    def load(self, key: str, touch_ttl: int | None) -> bytes | None:
        if touch_ttl is None:
            return self.client.get(key)  # type: ignore[no-any-return]
        gat = getattr(self.client, "gat", None)
        if gat is not None:
            return gat(key, expire=touch_ttl)  # type: ignore[no-any-return]
        # pymemcache 4.0 parses gat replies but has no method for it.
        found = self.client._fetch_cmd(
            b"gat %d" % touch_ttl, [key], False, key_prefix=self.client.key_prefix
        )
        return found.get(key)  # type: ignore[no-any-return]

    def save(self, key: str, data: bytes, ttl: int) -> None:
        self.client.set(key, data, expire=ttl, noreply=False)

    def delete(self, key: str) -> None:
        self.client.delete(key, noreply=False)


class FileOps:
    """One file per session, its mtime the expiry: one read; a write to a temporary file
    renamed over the old one."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def load(self, key: str, touch_ttl: int | None) -> bytes | None:
        path = os.path.join(self.directory, key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            stat = os.fstat(fd)
            data = os.read(fd, stat.st_size)
        finally:
            os.close(fd)
        now = time.time()
        if stat.st_mtime <= now:
            return None
        if touch_ttl is not None:
            os.utime(path, (now, now + touch_ttl))
        return data

    def save(self, key: str, data: bytes, ttl: int) -> None:
        path = os.path.join(self.directory, key)
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            expires = time.time() + ttl
            os.utime(fd, (expires, expires))
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def delete(self, key: str) -> None:
        try:
            os.unlink(os.path.join(self.directory, key))
        except FileNotFoundError:
            pass


class SQLOps:
    """A psycopg connection in autocommit with server-side prepared statements: one SELECT
    (an UPDATE ... RETURNING when sliding) and one INSERT ... ON CONFLICT DO UPDATE."""

    def __init__(self, dsn: str, table: str) -> None:
        import psycopg

        self.table = table
        self.conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=0)
        self.statements = 0
        self.bytes = 0
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, data bytea NOT NULL,"
            " expiry timestamptz NOT NULL)"
        )
        self._select = f"SELECT data FROM {table} WHERE id = %s AND expiry > now()"
        self._touch = (
            f"UPDATE {table} SET expiry = now() + make_interval(secs => %s)"
            " WHERE id = %s AND expiry > now() RETURNING data"
        )
        self._upsert = (
            f"INSERT INTO {table} (id, data, expiry) VALUES (%s, %s, now() + make_interval(secs"
            " => %s)) ON CONFLICT (id) DO UPDATE SET data = excluded.data, expiry ="
            " excluded.expiry"
        )

    def load(self, key: str, touch_ttl: int | None) -> bytes | None:
        self.statements += 1
        if touch_ttl is None:
            row = self.conn.execute(self._select, (key,)).fetchone()
        else:
            row = self.conn.execute(self._touch, (touch_ttl, key)).fetchone()
        return None if row is None else bytes(row[0])

    def save(self, key: str, data: bytes, ttl: int) -> None:
        self.statements += 1
        self.bytes += len(data)
        self.conn.execute(self._upsert, (key, data, ttl))

    def delete(self, key: str) -> None:
        self.statements += 1
        self.conn.execute(f"DELETE FROM {self.table} WHERE id = %s", (key,))

    def close(self) -> None:
        self.conn.close()


class CountingOps:
    """Wraps floor ops to count the calls (for stores that count nothing server-side)."""

    def __init__(self, inner: FloorOps) -> None:
        self.inner = inner
        self.calls = 0

    def load(self, key: str, touch_ttl: int | None) -> bytes | None:
        self.calls += 1
        return self.inner.load(key, touch_ttl)

    def save(self, key: str, data: bytes, ttl: int) -> None:
        self.calls += 1
        self.inner.save(key, data, ttl)

    def delete(self, key: str) -> None:
        self.calls += 1
        self.inner.delete(key)
