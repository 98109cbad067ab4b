"""The ``sqlalchemy`` store: sessions in a table of a SQL database, through SQLAlchemy.

It runs on SQLite, PostgreSQL and MySQL/MariaDB with each one's native upsert, and on any other
SQLAlchemy dialect with a portable fallback. It uses its own connections and short transactions
from the engine's pool, one per operation, and never touches an application's ORM session: a
session save neither commits, flushes nor rolls back Flask-SQLAlchemy's ``db.session``.

The table (see :func:`define_table`) is a superset of Flask-Session 0.8's: the same ``id``,
``session_id`` (the key prefix plus the id), ``data`` and ``expiry`` (naive UTC) columns, plus a
``version`` column for the conditional save and an indexed ``user_id`` column. A table
Flask-Session made is upgraded in place at start-up when the store may create its table (the
two nullable columns and the two indexes added, one log line); otherwise the first statement
that meets it fails with the statements to run. Flask-Session 0.8 reads and writes the
upgraded table as its own (its ORM model names the four columns it knows), so its workers and
this store's can share it: with ``SESSION_COMPAT_FLASK_SESSION`` a conditional save compares
the stored ``data`` as well as ``version``, since Flask-Session's writes leave ``version`` as
it was.

Round trips: a load is one ``SELECT ... WHERE session_id = ? AND expiry > now``. With sliding
expiry, :meth:`SQLAlchemyStore.load_and_touch` issues that same SELECT and writes the new expiry
(an UPDATE of that column alone) only when the stored one is older than the refresh interval,
so a read-only request costs one SELECT and no commit most of the time. Every operation is a
single statement (bar the portable upsert), run in autocommit mode on PostgreSQL and on the
engines the store makes from MySQL URLs, so no ``BEGIN``/``COMMIT`` round trips go with it.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import time
import typing as t
import warnings

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from flask_serverside import Capability
from flask_serverside import ClientErrors
from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError
from flask_serverside import Record
from flask_serverside import StoreError

from ._engine import autocommits
from ._engine import engine_for
from ._table import define_table
from ._table import upgrade_message
from ._table import upgrade_statements

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask_serverside import StoreSettings

T = t.TypeVar("T")

log = logging.getLogger("flask_serverside.sqlalchemy")

#: Seconds a read-only request may leave a record's expiry behind (capped at a tenth of the TTL).
DEFAULT_REFRESH_INTERVAL = 600
#: Rows deleted per transaction by :meth:`SQLAlchemyStore.purge_expired`.
DEFAULT_PURGE_BATCH = 1000
#: The columns a save writes.
_WRITTEN = ("data", "expiry", "version", "user_id")
#: Error codes after which the transaction was rolled back and may be tried again: MySQL's
#: lock wait timeout and deadlock, PostgreSQL's serialization failure and deadlock, SQLite's
#: busy and locked (a lock upgrade SQLite refuses at once rather than wait for).
_RETRYABLE = {1205, 1213, "40001", "40P01", "sqlite:5", "sqlite:6"}
#: Error codes of a statement that names a column the table lacks: PostgreSQL's undefined
#: column, MySQL's unknown column (SQLite says "no such column", with a generic code).
_UNDEFINED_COLUMN = {"42703", "42S22", 1054}


def _describe(exc: BaseException) -> str:
    """The error's message without the statement and its parameters, which hold session ids
    and data."""
    text = str(exc.args[0] if isinstance(exc, sa.exc.StatementError) and exc.args else exc)
    return f"{type(exc).__name__}: {text[:300]}"


_errors = ClientErrors(
    "The session database",
    unavailable=(
        sa.exc.OperationalError,
        sa.exc.InterfaceError,
        sa.exc.DisconnectionError,
        sa.exc.TimeoutError,
    ),
    failed=(sa.exc.SQLAlchemyError,),
    describe=_describe,
)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class SQLAlchemyStore:
    """Sessions in a table, through a SQLAlchemy :class:`~sqlalchemy.engine.Engine`.

    :param engine: the engine; the store checks connections out of its pool.
    :param key_prefix: prepended to every session id in ``session_id``.
    :param table: the table name; see :func:`define_table` for ``schema`` and ``sequence``.
    :param create_table: create the table (with ``CHECK FIRST``) now, and check that an
        existing one has every column.
    :param refresh_interval: a read-only request rewrites the expiry only when it was last set
        more than this many seconds ago (at most a tenth of the time to live); 0 refreshes it
        on every request.
    :param purge_batch: rows deleted per transaction when purging.
    :param dispose_engine: dispose of the engine in :meth:`close` (when the store made it).
    :param compat: the compatibility write mode (``SESSION_COMPAT_FLASK_SESSION``): a
        conditional save also compares the stored ``data``.
    :raises StoreError: when ``create_table`` is on and the database cannot be reached.
    :raises ConfigurationError: when ``create_table`` is on and the existing table lacks
        columns that cannot be added in place (or adding them failed).

    .. versionchanged:: 0.2
        With ``create_table``, a table made by Flask-Session is upgraded in place; the
        ``compat`` parameter.
    """

    capabilities: t.ClassVar[Capability] = (
        Capability.TOUCH
        | Capability.LOAD_AND_TOUCH
        | Capability.CONDITIONAL_SAVE
        | Capability.PURGE
        | Capability.ENUMERATE
        | Capability.USER_INDEX
    )
    url_schemes = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
    config_keys = (
        "SESSION_SQLALCHEMY",
        "SESSION_SQLALCHEMY_TABLE",
        "SESSION_SQLALCHEMY_SCHEMA",
        "SESSION_SQLALCHEMY_SEQUENCE",
        "SESSION_SQLALCHEMY_BIND_KEY",
        "SESSION_SQLALCHEMY_CREATE_TABLE",
        "SESSION_SQLALCHEMY_REFRESH_INTERVAL",
        "SESSION_SQLALCHEMY_PURGE_BATCH",
    )

    def __init__(
        self,
        engine: sa.Engine,
        *,
        key_prefix: str = "session:",
        table: str = "sessions",
        schema: str | None = None,
        sequence: str | None = None,
        create_table: bool = True,
        refresh_interval: int = DEFAULT_REFRESH_INTERVAL,
        purge_batch: int = DEFAULT_PURGE_BATCH,
        dispose_engine: bool = False,
        compat: bool = False,
    ) -> None:
        #: The engine given.
        self.engine = engine
        #: Whether a conditional save also compares the stored data.
        self.compat = compat
        self._checked = create_table  # whether the table's columns are known to be complete
        self.key_prefix = key_prefix
        #: The sessions table, in a :class:`~sqlalchemy.schema.MetaData` of its own.
        self.table = define_table(sa.MetaData(), table, schema=schema, sequence=sequence)
        self.refresh_interval = refresh_interval
        self.purge_batch = purge_batch
        self._owned = ClientHandle(engine, owned=dispose_engine, closer=sa.Engine.dispose)
        self._dialect = engine.dialect.name
        # Each operation is one statement (bar the portable upsert), so it may run in autocommit
        # mode, its own transaction, with no BEGIN/COMMIT round trips: on PostgreSQL always (the
        # drivers switch it on the client side), elsewhere when the engine is in that mode (the
        # engines the store makes from MySQL URLs are).
        self._autocommit = self._dialect == "postgresql" or autocommits(engine)
        self._engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self._autocommit and not autocommits(engine)
            else engine
        )
        if isinstance(engine.pool, (sa.pool.StaticPool, sa.pool.SingletonThreadPool)):
            warnings.warn(
                "The session store's engine hands every caller one shared connection (an"
                " in-memory SQLite database?), so saving a session commits whatever the"
                " application left pending on it: use a database file, or SESSION_TYPE ="
                " 'memory' for tests.",
                UserWarning,
                stacklevel=2,
            )
        # The statements of every request, built once (only their parameters change).
        sessions = self.table
        live = sa.and_(
            sessions.c.session_id == sa.bindparam("k"), sessions.c.expiry > sa.bindparam("now")
        )
        self._select = sa.select(sessions.c.data, sessions.c.version, sessions.c.expiry).where(live)
        self._refresh = sa.update(sessions).where(live).values(expiry=sa.bindparam("until"))
        written: dict[str, t.Any] = {name: sa.bindparam(f"new_{name}") for name in _WRITTEN}
        same: sa.ColumnElement[bool] = sessions.c.version == sa.bindparam("expected")
        unversioned: sa.ColumnElement[bool] = sessions.c.version.is_(
            None
        )  # a row written by Flask-Session
        if compat:  # Flask-Session's writes change data and expiry, never version
            same_data = sessions.c.data == sa.bindparam("expected_data", type_=sa.LargeBinary)
            same, unversioned = sa.and_(same, same_data), sa.and_(unversioned, same_data)
        self._compare_and_set = sa.update(sessions).where(live, same).values(written)
        self._compare_and_set_unversioned = (
            sa.update(sessions).where(live, unversioned).values(written)
        )
        self._insert = sa.insert(sessions)
        self._delete = sa.delete(sessions).where(sessions.c.session_id == sa.bindparam("k"))
        if create_table:
            self._create_table()

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> SQLAlchemyStore:
        """Build the store from ``SESSION_SQLALCHEMY`` (an engine, a URL or a Flask-SQLAlchemy
        ``db``) or from ``SESSION_TYPE`` when it is a database URL, and the
        ``SESSION_SQLALCHEMY_*`` keys (see the README).

        :raises ConfigurationError: when no database is named or a key is wrong.
        """
        config = settings.config
        target = config.get("SESSION_SQLALCHEMY")
        if settings.url is not None:
            if target is not None:
                raise ConfigurationError(
                    "SESSION_TYPE is a database URL and SESSION_SQLALCHEMY is set too: set"
                    " SESSION_TYPE = 'sqlalchemy' to use SESSION_SQLALCHEMY, or remove it."
                )
            target = settings.url
        options: dict[str, t.Any] = {
            "key_prefix": settings.key_prefix,
            "table": settings.text("SESSION_SQLALCHEMY_TABLE", "sessions"),
            "schema": config.get("SESSION_SQLALCHEMY_SCHEMA"),
            "sequence": config.get("SESSION_SQLALCHEMY_SEQUENCE"),
            "create_table": settings.flag("SESSION_SQLALCHEMY_CREATE_TABLE", True),
            "refresh_interval": settings.integer(
                "SESSION_SQLALCHEMY_REFRESH_INTERVAL", DEFAULT_REFRESH_INTERVAL, minimum=0
            ),
            "purge_batch": settings.integer("SESSION_SQLALCHEMY_PURGE_BATCH", DEFAULT_PURGE_BATCH),
            "compat": settings.compat_flask_session,
        }
        engine, owned = engine_for(target, config.get("SESSION_SQLALCHEMY_BIND_KEY"), settings)
        try:
            return cls(engine, dispose_engine=owned, **options)
        except BaseException:
            if owned:
                engine.dispose()
            raise

    # -- plumbing ----------------------------------------------------------------------------

    def _run(self, work: c.Callable[[sa.Connection], T], *, write: bool = True) -> T:
        """Run ``work`` on a connection of its own: in a transaction committed at the end when
        ``write``, else with no commit. A dropped connection, a deadlock or a lock timeout is
        tried once more. A duplicate key is a :class:`StoreError` caused by an
        :class:`~sqlalchemy.exc.IntegrityError` (see :func:`_duplicate`)."""
        with _errors("run a statement"):
            for attempt in (1, 2):
                try:
                    if write and not self._autocommit:
                        with self._engine.begin() as conn:
                            return work(conn)
                    with self._engine.connect() as conn:
                        return work(conn)
                except sa.exc.DBAPIError as exc:
                    if not self._checked and _undefined_column(exc):
                        self._explain_missing_columns(exc)
                    if attempt == 2 or not (exc.connection_invalidated or _code(exc) in _RETRYABLE):
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _execute(self, statement: sa.Executable, params: dict[str, t.Any] | None = None) -> int:
        """Run one writing statement in a transaction of its own; return its row count."""
        return self._run(lambda conn: conn.execute(statement, params).rowcount)

    def _read(self, sid: str, now: datetime.datetime) -> t.Any:
        params = {"k": self.key_prefix + sid, "now": now}
        return self._run(lambda conn: conn.execute(self._select, params).first(), write=False)

    def _scalars(self, query: sa.Select[t.Any]) -> list[str]:
        return self._run(lambda conn: [str(v) for v in conn.execute(query).scalars()], write=False)

    def _mine(self) -> sa.ColumnElement[bool]:
        return self.table.c.session_id.startswith(self.key_prefix, autoescape=True)

    def _values(
        self, sid: str, data: bytes, ttl: int, user_id: str | None, now: datetime.datetime
    ) -> dict[str, t.Any]:
        return {
            "session_id": self.key_prefix + sid,
            "data": bytes(data),
            "expiry": now + datetime.timedelta(seconds=ttl),
            "version": secrets.randbits(62),
            "user_id": user_id,
        }

    def _gaps(self) -> tuple[list[sa.Column[t.Any]], list[sa.Index]]:
        """The columns and indexes of :attr:`table` the existing table lacks."""
        name, schema = self.table.name, self.table.schema
        inspector = sa.inspect(self.engine)
        columns = {col["name"] for col in inspector.get_columns(name, schema)}
        indexed = {index["column_names"][0] for index in inspector.get_indexes(name, schema)}
        missing = [col for col in self.table.c if col.name not in columns]
        indexes = [ix for ix in self.table.indexes if next(iter(ix.columns)).name not in indexed]
        return missing, indexes

    def _create_table(self) -> None:
        """Create the table when missing; add the columns and indexes a table made by
        Flask-Session lacks."""
        name, schema = self.table.name, self.table.schema
        with _errors("create the session table"):
            try:
                self.table.create(self.engine, checkfirst=True)
            except sa.exc.DBAPIError:  # another process created it first
                if not sa.inspect(self.engine).has_table(name, schema=schema):
                    raise
            missing, indexes = self._gaps()
            if not missing and not indexes:
                return
            if any(not col.nullable for col in missing):  # not a table this store can extend
                raise ConfigurationError(
                    upgrade_message(self.table, missing, indexes, self.engine.dialect)
                )
            statements = upgrade_statements(self.table, missing, indexes, self.engine.dialect)
            failure: sa.exc.DBAPIError | None = None
            for statement in statements:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(sa.text(statement))
                except sa.exc.DBAPIError as exc:  # done by another process meanwhile, or denied
                    failure = exc
            still_missing, still_unindexed = self._gaps()
        if still_missing or still_unindexed:
            raise ConfigurationError(
                "Adding the missing columns and indexes failed"
                f" ({_describe(failure) if failure else 'no error, yet they are missing'}). "
                + upgrade_message(self.table, still_missing, still_unindexed, self.engine.dialect)
            ) from failure
        log.warning(
            "upgraded the session table %s in place (a table made by Flask-Session): added %s",
            self.table.fullname,
            ", ".join(
                [f"column {col.name}" for col in missing]
                + [f"index {index.name}" for index in indexes]
            ),
        )

    def _explain_missing_columns(self, error: sa.exc.DBAPIError) -> t.NoReturn:
        """Raise the statements that add what the table lacks (a table made by Flask-Session,
        with ``create_table`` off), in place of a statement's missing-column error."""
        try:
            missing, indexes = self._gaps()
        except sa.exc.SQLAlchemyError:
            raise error from None
        if not missing:
            raise error
        raise StoreError(
            upgrade_message(self.table, missing, indexes, self.engine.dialect)
        ) from error

    # -- the three operations ----------------------------------------------------------------

    def load(self, sid: str) -> Record | None:
        """One ``SELECT``; an expired row is never returned."""
        row = self._read(sid, _utcnow())
        return None if row is None else Record(bytes(row.data), row.version)

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        """One upsert statement (``ON CONFLICT`` / ``ON DUPLICATE KEY``) with a new version."""
        values = self._values(sid, data, ttl, user_id, _utcnow())
        table = self.table
        if self._dialect in ("postgresql", "sqlite"):
            dialect = postgresql if self._dialect == "postgresql" else sqlite
            insert = dialect.insert(table).values(values)
            self._execute(
                insert.on_conflict_do_update(
                    index_elements=[table.c.session_id],
                    set_={name: insert.excluded[name] for name in _WRITTEN},
                )
            )
        elif self._dialect in ("mysql", "mariadb"):
            upsert = mysql.insert(table).values(values)
            self._execute(upsert.on_duplicate_key_update({n: upsert.inserted[n] for n in _WRITTEN}))
        else:  # any other dialect: update, else insert; a racing insert makes it update
            update = sa.update(table).where(table.c.session_id == values["session_id"])
            update = update.values({name: values[name] for name in _WRITTEN})

            def upsert_portably(conn: sa.Connection) -> None:
                if conn.execute(update).rowcount == 0:
                    conn.execute(sa.insert(table).values(values))

            try:
                self._run(upsert_portably)
            except StoreError as exc:
                if not _duplicate(exc):
                    raise
                self._execute(update)

    def delete(self, sid: str) -> None:
        self._execute(self._delete, {"k": self.key_prefix + sid})

    # -- TOUCH and LOAD_AND_TOUCH ------------------------------------------------------------

    def touch(self, sid: str, ttl: int) -> bool:
        """One ``UPDATE`` of the ``expiry`` column alone."""
        now = _utcnow()
        until = now + datetime.timedelta(seconds=ttl)
        return (
            self._execute(self._refresh, {"k": self.key_prefix + sid, "now": now, "until": until})
            > 0
        )

    def load_and_touch(self, sid: str, ttl: int) -> Record | None:
        """One ``SELECT`` of the data, version and expiry; the expiry is written (as
        :meth:`touch` does) only when it was set more than the refresh interval ago."""
        now = _utcnow()
        row = self._read(sid, now)
        if row is None:
            return None
        slack = min(self.refresh_interval, ttl // 10)
        if row.expiry < now + datetime.timedelta(seconds=ttl - slack):
            until = now + datetime.timedelta(seconds=ttl)
            self._execute(self._refresh, {"k": self.key_prefix + sid, "now": now, "until": until})
        return Record(bytes(row.data), row.version)

    # -- CONDITIONAL_SAVE --------------------------------------------------------------------

    def save_if(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> bool:
        """``UPDATE ... WHERE session_id = ? AND version = ?``; when ``expected`` is ``None``,
        an ``INSERT`` that fails on a live row and replaces an expired one."""
        now = _utcnow()
        values = self._values(sid, data, ttl, user_id, now)
        table = self.table
        if expected is None:
            for attempt in (1, 2):
                try:
                    self._execute(self._insert, values)
                    return True
                except StoreError as exc:
                    if not _duplicate(exc):
                        raise
                    if attempt == 2:
                        return False
                # The id is taken: by a live row (a conflict) or by an expired one (removed).
                stale = sa.or_(table.c.expiry <= now, table.c.expiry.is_(None))
                self._execute(
                    sa.delete(table).where(table.c.session_id == values["session_id"], stale)
                )
            return False  # pragma: no cover
        params = {f"new_{name}": values[name] for name in _WRITTEN}
        params.update(k=values["session_id"], now=now, expected=expected.version)
        if self.compat:
            params["expected_data"] = bytes(expected.data)
        if expected.version is None:
            return self._execute(self._compare_and_set_unversioned, params) > 0
        return self._execute(self._compare_and_set, params) > 0

    # -- PURGE, ENUMERATE, USER_INDEX --------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete expired rows of this key prefix, :attr:`purge_batch` rows per transaction,
        so row locks stay few and short: readers on PostgreSQL and MySQL never wait. SQLite
        locks the whole database per write and its waiters poll, so there the purge pauses
        between batches as long as a batch took, and other writers get their turn (readers do
        not wait in WAL mode)."""
        table = self.table
        total = 0
        while True:
            began = time.monotonic()
            stale = sa.or_(table.c.expiry <= _utcnow(), table.c.expiry.is_(None))
            condition = sa.and_(stale, self._mine())
            if self._dialect in ("mysql", "mariadb"):
                limit = {f"{self._dialect}_limit": self.purge_batch}
                statement = sa.delete(table).where(condition).with_dialect_options(**limit)
            else:
                batch = sa.select(table.c.id).where(condition).limit(self.purge_batch)
                statement = sa.delete(table).where(table.c.id.in_(batch))
            removed = self._execute(statement)
            total += removed
            if removed < self.purge_batch:
                return total
            if self._dialect == "sqlite":
                time.sleep(min(time.monotonic() - began, 0.25))

    def count(self) -> int:
        table = self.table
        query = sa.select(sa.func.count()).select_from(table)
        query = query.where(table.c.expiry > _utcnow(), self._mine())
        return int(self._run(lambda conn: conn.execute(query).scalar_one(), write=False))

    def iter_sids(self) -> c.Iterator[str]:
        """Yield the live ids page by page (keyset pagination, one short read per page)."""
        table = self.table
        cut = len(self.key_prefix)
        last = self.key_prefix
        while True:
            query = (
                sa.select(table.c.session_id)
                .where(table.c.expiry > _utcnow(), self._mine(), table.c.session_id > last)
                .order_by(table.c.session_id)
                .limit(self.purge_batch)
            )
            page = self._scalars(query)
            for key in page:
                yield key[cut:]
            if len(page) < self.purge_batch:
                return
            last = page[-1]

    def user_sids(self, user_id: str) -> list[str]:
        table = self.table
        query = sa.select(table.c.session_id).where(
            table.c.user_id == user_id, table.c.expiry > _utcnow(), self._mine()
        )
        keys = self._scalars(query)
        return [key[len(self.key_prefix) :] for key in keys]

    def close(self) -> None:
        """Dispose of the engine when the store made it from a URL; an engine or ``db``
        given by the application is left to it."""
        self._owned.close()


def _code(exc: sa.exc.DBAPIError) -> object:
    """The server's error code: MySQL's number, PostgreSQL's SQLSTATE, or SQLite's."""
    orig = exc.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if sqlite_code is not None:
        return f"sqlite:{sqlite_code & 0xFF}"
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate:
        return sqlstate
    args = getattr(orig, "args", ())
    return args[0] if args else None


def _undefined_column(exc: sa.exc.DBAPIError) -> bool:
    """Whether ``exc`` says a statement named a column the table lacks."""
    if _code(exc) in _UNDEFINED_COLUMN:
        return True
    return _code(exc) == "sqlite:1" and "no such column" in str(exc.orig)


def _duplicate(exc: StoreError) -> bool:
    """Whether ``exc`` is a duplicate key (or another integrity violation)."""
    return isinstance(exc.__cause__, sa.exc.IntegrityError)
