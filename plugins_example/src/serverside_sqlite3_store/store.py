"""A flask-serverside session store on the standard library's :mod:`sqlite3`.

Embedded (no server), transactional, and safe for several worker processes on one machine: the
database runs in WAL mode, so readers never wait for the writer, and a connection waits up to
``timeout`` seconds for a lock instead of failing at once.

The store is built in steps, one class each. The first has the three operations every store
needs; each class after it adds one capability and says what the core gains from it. Every step
is a complete, correct store: the core falls back for what a store does not declare.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import os
import secrets
import sqlite3
import time
import typing as t

from flask_serverside import Capability
from flask_serverside import ClientErrors
from flask_serverside import ConfigurationError
from flask_serverside import Record

if t.TYPE_CHECKING:
    from flask_serverside import StoreSettings

_S = t.TypeVar("_S", bound="_Sessions")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key        TEXT PRIMARY KEY,  -- the key prefix and the session id
    data       BLOB NOT NULL,     -- the bytes the core saved, unchanged
    expires_at REAL NOT NULL,     -- Unix time
    version    INTEGER NOT NULL,  -- random, new on every write
    user_id    TEXT
);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
CREATE INDEX IF NOT EXISTS sessions_user_id ON sessions (user_id) WHERE user_id IS NOT NULL;
"""
_COLUMNS = "(key, data, expires_at, version, user_id)"
#: SQL selecting this store's rows (its key prefix); parameters from ``_Sessions._prefixed``.
_MINE = "substr(key, 1, ?) = ?"


def _new_version() -> int:
    return secrets.randbits(63)


# -- Step 1: the three required operations ------------------------------------------------------


class _Sessions:
    """Load, save and delete, plus ``from_settings`` and ``close``.

    :param path: the database file; created with its table when missing.
    :param key_prefix: prepended to every session id.
    :param timeout: seconds to wait for another connection's lock.
    :raises ConfigurationError: when the file cannot be opened or the table created.
    """

    capabilities: t.ClassVar[Capability] = Capability.NONE
    #: Its entry-point name is also a URL scheme: ``SESSION_TYPE = "sqlite3:///sessions.db"``.
    url_schemes: t.ClassVar[tuple[str, ...]] = ("sqlite3",)
    #: The keys ``from_settings`` reads: ``Session(app)`` reports misspellings of them.
    config_keys: t.ClassVar[tuple[str, ...]] = ("SESSION_SQLITE3_PATH", "SESSION_SQLITE3_TIMEOUT")

    def __init__(
        self, path: str | os.PathLike[str], *, key_prefix: str = "session:", timeout: float = 5.0
    ) -> None:
        self.path = os.fspath(path)
        self.key_prefix = key_prefix
        self.timeout = timeout
        self._idle: list[sqlite3.Connection] = []
        # sqlite3's errors in the core's terms: a lock held past the timeout, a file that cannot
        # be opened or a disk error is an outage; any other error a failure.
        self._errors = ClientErrors(
            f"The sqlite3 database {self.path!r}",
            unavailable=(sqlite3.OperationalError,),
            failed=(sqlite3.Error,),
        )
        try:  # not a pooled connection: worker processes forked later must not inherit it
            with contextlib.closing(self._connect()) as db:
                db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"Cannot use {self.path!r} for sessions ({exc}): check SESSION_SQLITE3_PATH."
            ) from exc

    def load(self, sid: str) -> Record | None:
        with self._connection("load a session") as db:
            row = db.execute(
                "SELECT data, version FROM sessions WHERE key = ? AND expires_at > ?",
                (self.key_prefix + sid, time.time()),
            ).fetchone()
        return None if row is None else Record(bytes(row[0]), row[1])

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        row = (self.key_prefix + sid, data, time.time() + ttl, _new_version(), user_id)
        with self._connection("save a session") as db:
            db.execute(f"INSERT OR REPLACE INTO sessions {_COLUMNS} VALUES (?, ?, ?, ?, ?)", row)

    def delete(self, sid: str) -> None:
        with self._connection("delete a session") as db:
            db.execute("DELETE FROM sessions WHERE key = ?", (self.key_prefix + sid,))

    @classmethod
    def from_settings(cls: type[_S], settings: StoreSettings) -> _S:
        """Read ``SESSION_SQLITE3_PATH`` (or a ``sqlite3:///path`` URL in ``SESSION_TYPE``) and
        ``SESSION_SQLITE3_TIMEOUT``. A relative path is in the application's instance folder.

        :raises ConfigurationError: when no database file is configured.
        """
        path = settings.config.get("SESSION_SQLITE3_PATH")
        if settings.url is not None:
            if not settings.url.startswith("sqlite3:///"):
                raise ConfigurationError(
                    f"SESSION_TYPE = {settings.url!r} is not a sqlite3 URL: write"
                    " 'sqlite3:///relative/sessions.db' or 'sqlite3:////absolute/sessions.db'."
                )
            path = settings.url[len("sqlite3:///") :]
        if not path or path == ":memory:":
            raise ConfigurationError(
                "The sqlite3 session store needs a database file: set SESSION_SQLITE3_PATH ="
                " 'sessions.db' (relative paths are in the instance folder) or SESSION_TYPE ="
                " 'sqlite3:///sessions.db'."
            )
        if settings.app is not None and not os.path.isabs(path):
            os.makedirs(settings.app.instance_path, exist_ok=True)
            path = os.path.join(settings.app.instance_path, path)
        timeout = settings.seconds("SESSION_SQLITE3_TIMEOUT", 5.0)
        return cls(path, key_prefix=settings.key_prefix, timeout=timeout)

    def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            self._idle.pop().close()

    # Plumbing: a pool of connections, and sqlite3's errors in the core's terms.

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: each statement is its own transaction unless we BEGIN one.
        # check_same_thread=False: the pool hands a connection to one thread at a time.
        db = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent; fsync at checkpoints
        except BaseException:
            db.close()
            raise
        return db

    def _checkout(self) -> sqlite3.Connection:
        try:
            return self._idle.pop()  # atomic: two threads never get the same connection
        except IndexError:
            return self._connect()

    @contextlib.contextmanager
    def _connection(self, doing: str) -> c.Iterator[sqlite3.Connection]:
        """Lend an idle connection (or a new one) to do one thing, and turn sqlite3's errors
        into the core's."""
        db = None
        try:
            with self._errors(doing):
                db = self._checkout()
                yield db
        finally:
            if db is not None:
                self._idle.append(db)

    def _prefixed(self) -> tuple[int, str]:
        return len(self.key_prefix), self.key_prefix


# -- Step 2, TOUCH: a request that only reads the session refreshes its expiry without the core
# -- writing the whole record again.


class _Touch(_Sessions):
    capabilities = _Sessions.capabilities | Capability.TOUCH

    def touch(self, sid: str, ttl: int) -> bool:
        now = time.time()
        with self._connection("refresh a session") as db:
            cursor = db.execute(
                "UPDATE sessions SET expires_at = ? WHERE key = ? AND expires_at > ?",
                (now + ttl, self.key_prefix + sid, now),
            )
        return cursor.rowcount == 1


# -- Step 3, LOAD_AND_TOUCH: that read-only request costs one transaction instead of two (a load,
# -- then a touch).


class _LoadAndTouch(_Touch):
    capabilities = _Touch.capabilities | Capability.LOAD_AND_TOUCH

    def load_and_touch(self, sid: str, ttl: int) -> Record | None:
        now = time.time()
        key = self.key_prefix + sid
        # ``with db`` commits the transaction BEGIN opened; IMMEDIATE takes the write lock first,
        # so the update cannot fail on a lock upgrade.
        with self._connection("load a session") as db, db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT data, version FROM sessions WHERE key = ? AND expires_at > ?", (key, now)
            ).fetchone()
            if row is not None:
                db.execute("UPDATE sessions SET expires_at = ? WHERE key = ?", (now + ttl, key))
        return None if row is None else Record(bytes(row[0]), row[1])


# -- Step 4, CONDITIONAL_SAVE: two requests of one session that change different keys both land
# -- (the core reloads and merges on a conflict); without it the last writer wins.


class _ConditionalSave(_LoadAndTouch):
    capabilities = _LoadAndTouch.capabilities | Capability.CONDITIONAL_SAVE

    def save_if(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> bool:
        now = time.time()
        key = self.key_prefix + sid
        with self._connection("save a session") as db:
            if expected is None:  # create, or replace a record that has expired
                cursor = db.execute(
                    f"INSERT INTO sessions {_COLUMNS} VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET data = excluded.data,"
                    " expires_at = excluded.expires_at, version = excluded.version,"
                    " user_id = excluded.user_id WHERE sessions.expires_at <= ?",
                    (key, data, now + ttl, _new_version(), user_id, now),
                )
            else:  # replace the version that was loaded, if it is still there
                cursor = db.execute(
                    "UPDATE sessions SET data = ?, expires_at = ?, version = ?, user_id = ?"
                    " WHERE key = ? AND version = ? AND expires_at > ?",
                    (data, now + ttl, _new_version(), user_id, key, expected.version, now),
                )
        return cursor.rowcount == 1


# -- Step 5, PURGE: SQLite has no native expiry, so expired rows stay until deleted. The core
# -- calls this every SESSION_CLEANUP_N_REQUESTS requests, and `flask session purge` does.


class _Purge(_ConditionalSave):
    capabilities = _ConditionalSave.capabilities | Capability.PURGE

    def purge_expired(self) -> int:
        with self._connection("purge expired sessions") as db:
            cursor = db.execute(
                f"DELETE FROM sessions WHERE {_MINE} AND expires_at <= ?",
                (*self._prefixed(), time.time()),
            )
        return cursor.rowcount


# -- Step 6, ENUMERATE: `flask session count` and `flask session list` work.


class _Enumerate(_Purge):
    capabilities = _Purge.capabilities | Capability.ENUMERATE

    def count(self) -> int:
        with self._connection("count sessions") as db:
            row = db.execute(
                f"SELECT count(*) FROM sessions WHERE {_MINE} AND expires_at > ?",
                (*self._prefixed(), time.time()),
            ).fetchone()
        return int(row[0])

    def iter_sids(self) -> c.Iterator[str]:
        with self._connection("list sessions") as db:
            rows = db.execute(
                f"SELECT key FROM sessions WHERE {_MINE} AND expires_at > ?",
                (*self._prefixed(), time.time()),
            ).fetchall()
        return (key[len(self.key_prefix) :] for (key,) in rows)


# -- Step 7, USER_INDEX: "log out everywhere" (`revoke_user_sessions`, `flask session
# -- delete-user`) finds a user's sessions through the user_id column that save() fills.


class _UserIndex(_Enumerate):
    capabilities = _Enumerate.capabilities | Capability.USER_INDEX

    def user_sids(self, user_id: str) -> list[str]:
        with self._connection("list a user's sessions") as db:
            rows = db.execute(
                f"SELECT key FROM sessions WHERE {_MINE} AND user_id = ? AND expires_at > ?",
                (*self._prefixed(), user_id, time.time()),
            ).fetchall()
        return [key[len(self.key_prefix) :] for (key,) in rows]


class SQLite3Store(_UserIndex):
    """Flask sessions in a SQLite database file, with every capability.

    ``SESSION_TYPE = "sqlite3"`` with ``SESSION_SQLITE3_PATH``, or ``SESSION_TYPE =
    "sqlite3:///sessions.db"``.
    """
