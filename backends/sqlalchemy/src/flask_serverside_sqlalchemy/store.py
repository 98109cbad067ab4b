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
from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError
from flask_serverside import Record
from flask_serverside import StoreError
from flask_serverside import StoreUnavailable

from ._deadline import watchdog
from ._engine import DEFAULT_CONNECT_TIMEOUT
from ._engine import DEFAULT_POOL_TIMEOUT
from ._engine import DEFAULT_TIMEOUT
from ._engine import Timeouts
from ._engine import autocommits
from ._engine import engine_for
from ._errors import RETRYABLE
from ._errors import code
from ._errors import describe
from ._errors import duplicate
from ._errors import errors
from ._errors import scrub
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
#: Seconds the store waits past ``timeout`` before it cuts a statement's connection, so that a
#: server-side limit of the same length (``statement_timeout``) ends it first when it can.
DEADLINE_GRACE = 0.1
#: Rows deleted per transaction by :meth:`SQLAlchemyStore.purge_expired`.
DEFAULT_PURGE_BATCH = 1000
#: The columns a save writes.
_WRITTEN = ("data", "expiry", "version", "user_id")


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
    :param timeout: seconds a statement may take before the store gives up on it and raises
        :class:`~flask_serverside.StoreUnavailable`, whatever the engine: the store cuts the
        connection of a statement still running this long (plus a tenth of a second, so that
        a server-side limit of the same length ends it first when the server still answers).
        A failure that took half of it is not tried again. ``None``: no limit.
    :param compat: the compatibility write mode (``SESSION_COMPAT_FLASK_SESSION``): a
        conditional save also compares the stored ``data``.
    :raises StoreError: when ``create_table`` is on and the database cannot be reached.
    :raises ConfigurationError: when ``create_table`` is on and the existing table lacks
        columns that cannot be added in place (or adding them failed).

    .. versionchanged:: 0.2
        ``timeout``; errors carry no statement parameters; with ``create_table``, a table made
        by Flask-Session is upgraded in place; the ``compat`` parameter.
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
        "SESSION_SQLALCHEMY_TIMEOUT",
        "SESSION_SQLALCHEMY_CONNECT_TIMEOUT",
        "SESSION_SQLALCHEMY_POOL_TIMEOUT",
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
        timeout: float | None = DEFAULT_TIMEOUT,
        compat: bool = False,
    ) -> None:
        #: The engine given.
        self.engine = engine
        #: Whether a conditional save also compares the stored data.
        self.compat = compat
        self._checked = create_table  # whether the table's columns are known to be complete
        #: Seconds a statement may take; ``None`` for no limit.
        self.timeout = timeout
        self._deadline = None if timeout is None else timeout + DEADLINE_GRACE
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
        ``SESSION_SQLALCHEMY_*`` keys (see the README). An engine built from a URL gets the
        ``SESSION_SQLALCHEMY_CONNECT_TIMEOUT``, ``SESSION_SQLALCHEMY_TIMEOUT`` and
        ``SESSION_SQLALCHEMY_POOL_TIMEOUT`` limits and ``hide_parameters``.

        :raises ConfigurationError: when no database is named or a key is wrong, or when the
            connect or pool timeout is set for an engine the application built.
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
            "timeout": settings.seconds("SESSION_SQLALCHEMY_TIMEOUT", DEFAULT_TIMEOUT),
            "compat": settings.compat_flask_session,
        }
        timeouts = Timeouts(
            statement=options["timeout"],
            connect=settings.seconds("SESSION_SQLALCHEMY_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
            pool=settings.seconds("SESSION_SQLALCHEMY_POOL_TIMEOUT", DEFAULT_POOL_TIMEOUT),
        )
        bind_key = config.get("SESSION_SQLALCHEMY_BIND_KEY")
        engine, owned = engine_for(target, bind_key, settings, timeouts)
        if not owned:
            for key in ("SESSION_SQLALCHEMY_CONNECT_TIMEOUT", "SESSION_SQLALCHEMY_POOL_TIMEOUT"):
                if config.get(key) is not None:
                    raise ConfigurationError(
                        f"{key} applies to an engine the store builds from a URL; the engine"
                        " of SESSION_SQLALCHEMY is yours: give it connect_args and pool_timeout"
                        " (SQLALCHEMY_ENGINE_OPTIONS with Flask-SQLAlchemy), see the store's"
                        f" README, and remove {key}."
                    )
        try:
            return cls(engine, dispose_engine=owned, **options)
        except BaseException:
            if owned:
                engine.dispose()
            raise

    # -- plumbing ----------------------------------------------------------------------------

    def _run(self, work: c.Callable[[sa.Connection], T], *, write: bool = True) -> T:
        """Run ``work`` on a connection of its own: in a transaction committed at the end when
        ``write``, else with no commit, within :attr:`timeout`. A dropped connection, a
        deadlock or a lock timeout is tried once more, unless it took half the timeout
        already. A duplicate key is a :class:`StoreError` caused by an
        :class:`~sqlalchemy.exc.IntegrityError` (see :func:`duplicate`). Errors carry no
        statement parameters (see :func:`scrub`).

        :raises StoreUnavailable: when the database is down or did not answer in time.
        """
        began = time.monotonic()
        with errors("run a statement"):
            for attempt in (1, 2):
                try:
                    with self._engine.connect() as conn:
                        return self._watched(conn, work, write and not self._autocommit)
                except sa.exc.StatementError as exc:
                    scrub(exc)
                    if not isinstance(exc, sa.exc.DBAPIError):
                        raise
                    if not self._checked and _undefined_column(exc):
                        self._explain_missing_columns(exc)
                    retry = exc.connection_invalidated or code(exc) in RETRYABLE
                    if attempt == 2 or not retry or self._late(began):
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _watched(
        self, conn: sa.Connection, work: c.Callable[[sa.Connection], T], transaction: bool
    ) -> T:
        """Run ``work`` on ``conn`` (in a transaction committed at the end when
        ``transaction``), its connection cut when it overruns :attr:`timeout`."""
        if self._deadline is None:
            return _in_transaction(conn, work) if transaction else work(conn)
        with watchdog.watch(conn, self._deadline) as watch:
            try:
                return _in_transaction(conn, work) if transaction else work(conn)
            except sa.exc.StatementError as exc:
                if watch is None or not watch.fired:
                    raise
                scrub(exc)
                raise StoreUnavailable(
                    f"The session database did not answer within {self.timeout:g} s"
                    " (SESSION_SQLALCHEMY_TIMEOUT)"
                ) from exc

    def _late(self, began: float) -> bool:
        """Whether half the timeout has passed since ``began``: no time for another try."""
        return self.timeout is not None and time.monotonic() - began >= self.timeout / 2

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
        with errors("create the session table"):
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
                f" ({describe(failure) if failure else 'no error, yet they are missing'}). "
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
                if not duplicate(exc):
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
                    if not duplicate(exc):
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


def _in_transaction(conn: sa.Connection, work: c.Callable[[sa.Connection], T]) -> T:
    with conn.begin():
        return work(conn)


#: Error codes of a statement that names a column the table lacks: PostgreSQL's undefined
#: column, MySQL's unknown column (SQLite says "no such column", with a generic code).
_UNDEFINED_COLUMN = {"42703", "42S22", 1054}


def _undefined_column(exc: sa.exc.DBAPIError) -> bool:
    """Whether ``exc`` says a statement named a column the table lacks."""
    if code(exc) in _UNDEFINED_COLUMN:
        return True
    return code(exc) == "sqlite:1" and "no such column" in str(exc.orig)
