"""The engine the store uses when it is given a URL or a Flask-SQLAlchemy ``db``, the time
limits of the engines it builds, and whether an engine runs each statement in autocommit mode."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import math
import typing as t

import sqlalchemy as sa

from flask_serverside import ConfigurationError

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask_serverside import StoreSettings

#: A driver to use for a URL that names none, when SQLAlchemy's default one is not installed.
_DRIVERS = {
    "postgresql": (("psycopg2", "psycopg2"), ("psycopg", "psycopg")),
    "mysql": (("MySQLdb", "mysqldb"), ("pymysql", "pymysql")),
    "mariadb": (("MySQLdb", "mysqldb"), ("pymysql", "pymysql")),
}
#: Whether ``create_engine`` takes ``skip_autocommit_rollback`` (SQLAlchemy 2.0.43+).
_SKIP_AUTOCOMMIT_ROLLBACK = (
    "skip_autocommit_rollback" in inspect.signature(sa.engine.default.DefaultDialect).parameters
)


#: Seconds a statement may take (``SESSION_SQLALCHEMY_TIMEOUT``).
DEFAULT_TIMEOUT = 2.0
#: Seconds to open a connection (``SESSION_SQLALCHEMY_CONNECT_TIMEOUT``); libpq's minimum is 2.
DEFAULT_CONNECT_TIMEOUT = 2.0
#: Seconds to wait for a free pooled connection (``SESSION_SQLALCHEMY_POOL_TIMEOUT``).
DEFAULT_POOL_TIMEOUT = 2.0


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """The time limits of an engine the store builds from a URL, in seconds."""

    #: Each statement: PostgreSQL's ``statement_timeout``, the MySQL drivers' read and write
    #: timeouts, SQLite's busy timeout.
    statement: float = DEFAULT_TIMEOUT
    #: Opening a connection: the drivers' ``connect_timeout``.
    connect: float = DEFAULT_CONNECT_TIMEOUT
    #: Waiting for a connection from a full pool: ``pool_timeout``.
    pool: float = DEFAULT_POOL_TIMEOUT


def connect_args(url: sa.URL, timeouts: Timeouts) -> dict[str, t.Any]:
    """The driver arguments that bound connecting and each statement, for ``url``'s driver.

    A limit the URL's query already sets is left to it (``?connect_timeout=5``); PostgreSQL's
    ``statement_timeout`` is added to the URL's ``options`` unless they set one.
    """
    driver = url.get_driver_name()
    query = url.query
    args: dict[str, t.Any] = {}
    if url.get_backend_name() == "postgresql" and driver in ("psycopg", "psycopg2"):
        # libpq takes whole seconds, and at least 2.
        args["connect_timeout"] = max(2, math.ceil(timeouts.connect))
        options = query.get("options", "")
        if isinstance(options, tuple):
            options = " ".join(options)
        if "statement_timeout" not in options:
            limit = f"-c statement_timeout={math.ceil(timeouts.statement * 1000)}"
            args["options"] = f"{options} {limit}".strip()
    elif driver == "pymysql":
        args.update(
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.statement,
            write_timeout=timeouts.statement,
        )
    elif driver == "mysqldb":  # whole seconds
        args.update(
            connect_timeout=math.ceil(timeouts.connect),
            read_timeout=math.ceil(timeouts.statement),
            write_timeout=math.ceil(timeouts.statement),
        )
    elif url.get_backend_name() == "sqlite":
        args["timeout"] = timeouts.statement
    return {n: value for n, value in args.items() if n == "options" or n not in query}


def engine_for(
    target: object, bind_key: str | None, settings: StoreSettings, timeouts: Timeouts
) -> tuple[sa.Engine, bool]:
    """Return the engine ``target`` names, and whether the store made it (with
    ``timeouts``)."""
    if target is None:
        raise ConfigurationError(
            "The sqlalchemy session store needs a database: set SESSION_SQLALCHEMY to your"
            " Flask-SQLAlchemy db, a SQLAlchemy Engine or a URL such as"
            " 'postgresql+psycopg://user@host/db' or 'sqlite:///sessions.db' (or set"
            " SESSION_TYPE to such a URL)."
        )
    is_db = hasattr(type(target), "engines")  # Flask-SQLAlchemy 3
    if bind_key is not None and not is_db:
        raise ConfigurationError(
            "SESSION_SQLALCHEMY_BIND_KEY names a bind of a Flask-SQLAlchemy db: set"
            " SESSION_SQLALCHEMY to that db, or remove the bind key."
        )
    if isinstance(target, sa.Engine):
        return target, False
    if isinstance(target, (str, sa.URL)):
        return engine_from_url(target, timeouts), True
    if is_db:
        if settings.app is None:
            raise ConfigurationError(
                "SESSION_SQLALCHEMY is a Flask-SQLAlchemy db, which needs the application:"
                " set up the store through Session(app)."
            )
        try:
            with settings.app.app_context():
                engines: c.Mapping[str | None, sa.Engine] = t.cast(t.Any, target).engines
                return engines[bind_key], False
        except KeyError:
            binds = ", ".join(repr(key) for key in engines if key is not None) or "none"
            raise ConfigurationError(
                f"SESSION_SQLALCHEMY_BIND_KEY is {bind_key!r}, which is not in"
                f" SQLALCHEMY_BINDS (binds: {binds})."
            ) from None
        except RuntimeError as exc:
            raise ConfigurationError(
                f"SESSION_SQLALCHEMY's db is not set up on this application ({exc}): call"
                " db.init_app(app) before Session(app)."
            ) from exc
    raise ConfigurationError(
        "SESSION_SQLALCHEMY must be a Flask-SQLAlchemy db, a SQLAlchemy Engine or a database"
        f" URL, not {type(target).__name__}."
    )


def engine_from_url(value: str | sa.URL, timeouts: Timeouts | None = None) -> sa.Engine:
    """Build an engine for a URL: a driver where the URL names none, autocommit where each
    operation is one statement, ``timeouts`` (the defaults when ``None``), and
    ``hide_parameters`` so that no error or log line of SQLAlchemy's shows session ids or
    data."""
    timeouts = Timeouts() if timeouts is None else timeouts
    try:
        url = sa.make_url(value)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"SESSION_SQLALCHEMY is not a database URL: {exc}") from exc
    if url.drivername.startswith("postgres") and not url.drivername.startswith("postgresql"):
        url = url.set(drivername="postgresql" + url.drivername[len("postgres") :])
    if url.drivername in _DRIVERS:
        found = [driver for module, driver in _DRIVERS[url.drivername] if _installed(module)]
        if found:
            url = url.set(drivername=f"{url.drivername}+{found[0]}")
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ConfigurationError(
            "An in-memory SQLite database is not shared between threads: give a file"
            " ('sqlite:///sessions.db'), or use SESSION_TYPE = 'memory' for tests."
        )
    # Every operation is one statement: in autocommit mode it needs no COMMIT, and (on MySQL,
    # with SQLAlchemy 2.0.43+) no ROLLBACK when the connection goes back to the pool.
    options: dict[str, t.Any] = {"hide_parameters": True, "pool_timeout": timeouts.pool}
    if url.get_backend_name() in ("postgresql", "mysql", "mariadb"):
        options["isolation_level"] = "AUTOCOMMIT"
    if url.get_backend_name() in ("mysql", "mariadb") and _SKIP_AUTOCOMMIT_ROLLBACK:
        options["skip_autocommit_rollback"] = True
    try:
        options["connect_args"] = connect_args(url, timeouts)  # needs the dialect's driver
        return sa.create_engine(url, **options)
    except (ImportError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigurationError(
            f"Cannot use the database URL {url.render_as_string()!r}: {exc}. Install its"
            " driver (for example: pip install 'psycopg[binary]' or pymysql)."
        ) from exc


def autocommits(engine: sa.Engine) -> bool:
    """Whether every connection of ``engine`` runs in autocommit mode: set as an execution
    option, or given to ``create_engine`` (which SQLAlchemy 1.4 to 2.1 keep on the dialect as
    ``_on_connect_isolation_level``; its ``isolation_level`` attribute stays ``None``)."""
    level = engine.get_execution_options().get("isolation_level")
    if level is None:
        dialect = engine.dialect
        level = getattr(dialect, "_on_connect_isolation_level", None) or getattr(
            dialect, "isolation_level", None
        )
    return level == "AUTOCOMMIT"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
