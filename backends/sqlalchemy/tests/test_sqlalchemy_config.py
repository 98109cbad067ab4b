"""Configuration forms and mistakes, the table's name, schema and sequence, and migrations.
Tables made by Flask-Session 0.8: ``test_sqlalchemy_upgrade.py``."""

from __future__ import annotations

import collections.abc as c
import datetime
import pathlib
import secrets
import socket
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import session

from flask_serverside import ConfigurationError
from flask_serverside import Session
from flask_serverside_sqlalchemy import SQLAlchemyStore
from flask_serverside_sqlalchemy import define_table


@pytest.fixture
def make_app() -> c.Iterator[c.Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(**config: t.Any) -> Flask:
        app = Flask(__name__)
        app.config.update(SECRET_KEY="secret", **config)
        Session(app)
        apps.append(app)

        @app.get("/read")
        def read() -> dict[str, t.Any]:
            return {"user": session.get("user")}

        @app.post("/login")
        def login() -> dict[str, t.Any]:
            session["user"] = "alice"
            return {"ok": True}

        return app

    yield make
    for app in apps:
        app.extensions["serverside"].close()


def works(app: Flask) -> None:
    client = app.test_client()
    client.post("/login")
    assert client.get("/read").get_json() == {"user": "alice"}


@pytest.mark.parametrize(
    "config",
    [
        {"SESSION_TYPE": "sqlalchemy"},
        {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY": 42},
        {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY": "not a url"},
        {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY": "sqlite://"},
        {"SESSION_TYPE": "sqlite:///:memory:"},
        {"SESSION_TYPE": "sqlite:///x.db", "SESSION_SQLALCHEMY": "sqlite:///y.db"},
        {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY": "nosuchdb://host/db"},
        {"SESSION_TYPE": "sqlite:///x.db", "SESSION_SQLALCHEMY_REFRESH_INTERVAL": -1},
        {"SESSION_TYPE": "sqlite:///x.db", "SESSION_SQLALCHEMY_REFRESH_INTERVAL": "60"},
        {"SESSION_TYPE": "sqlite:///x.db", "SESSION_SQLALCHEMY_PURGE_BATCH": 0},
        {"SESSION_TYPE": "sqlite:///x.db", "SESSION_SQLALCHEMY_BIND_KEY": "sessions"},
        {"SESSION_TYPE": "sqlite:///x.db", "SESSION_SQLALCHEMY_TIMEOUT": 0},
        {"SESSION_TYPE": "sqlite:///x.db", "SESSION_SQLALCHEMY_CONNECT_TIMEOUT": "2"},
        {"SESSION_TYPE": "sqlite:///x.db", "SESSION_SQLALCHEMY_POOL_TIMEOUT": -1},
    ],
    ids=[
        "nothing",
        "wrong type",
        "not a url",
        "memory url",
        "memory type",
        "both",
        "unknown dialect",
        "negative interval",
        "string interval",
        "zero batch",
        "bind key without a db",
        "zero timeout",
        "string connect timeout",
        "negative pool timeout",
    ],
)
def test_mistakes_fail_at_start_up_saying_what_to_set(
    config: dict[str, t.Any], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = Flask(__name__)
    app.config.update(config)
    with pytest.raises(ConfigurationError, match="SESSION_|sqlite:///sessions.db|driver"):
        Session(app)
    assert not list(tmp_path.iterdir())


def test_an_engine_a_url_and_a_session_type_url(
    make_app: c.Callable[..., Flask], sqlite_engine: sa.Engine, sqlite_url: str
) -> None:
    works(make_app(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=sqlite_engine))
    works(make_app(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=sqlite_url))
    works(make_app(SESSION_TYPE=sqlite_url))
    works(make_app(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=sa.make_url(sqlite_url)))


def test_postgres_urls_without_a_driver(
    make_app: c.Callable[..., Flask], postgresql_server: t.Any
) -> None:
    url = postgresql_server.url
    works(make_app(SESSION_TYPE=url.replace("postgresql://", "postgres://")))
    app = make_app(SESSION_TYPE=url.replace("postgresql://", "postgresql+psycopg://"))
    assert app.extensions["serverside"].store.engine.dialect.driver == "psycopg"


def test_a_store_made_from_a_url_disposes_of_its_engine(sqlite_url: str) -> None:
    app = Flask(__name__)
    app.config.update(SESSION_TYPE=sqlite_url)
    Session(app)
    engine = app.extensions["serverside"].store.engine
    engine.connect().close()
    assert engine.pool.checkedin() == 1
    app.extensions["serverside"].close()
    assert engine.pool.checkedin() == 0


def test_without_create_table_start_up_needs_no_database(make_app: c.Callable[..., Flask]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://nobody@127.0.0.1:{port}/none"
    app = make_app(SESSION_TYPE=url, SESSION_SQLALCHEMY_CREATE_TABLE=False)
    assert app.test_client().post("/login").status_code == 503


def test_table_name_schema_and_sequence(
    make_app: c.Callable[..., Flask], postgresql_engine: sa.Engine
) -> None:
    schema, name = f"s_{secrets.token_hex(4)}", f"t_{secrets.token_hex(4)}"
    with postgresql_engine.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    app = make_app(
        SESSION_TYPE="sqlalchemy",
        SESSION_SQLALCHEMY=postgresql_engine,
        SESSION_SQLALCHEMY_TABLE=name,
        SESSION_SQLALCHEMY_SCHEMA=schema,
        SESSION_SQLALCHEMY_SEQUENCE=f"{name}_ids",
    )
    works(app)
    inspector = sa.inspect(postgresql_engine)
    assert inspector.has_table(name, schema=schema)
    assert f"{name}_ids" in inspector.get_sequence_names(schema=schema)
    indexed = {
        col for index in inspector.get_indexes(name, schema) for col in index["column_names"]
    }
    assert {"expiry", "user_id"} <= indexed


def test_migrations_create_the_table_from_define_table(
    make_app: c.Callable[..., Flask], sqlite_engine: sa.Engine
) -> None:
    metadata = sa.MetaData()  # an application's, e.g. db.metadata under Flask-Migrate
    define_table(metadata, "app_sessions")
    metadata.create_all(sqlite_engine)
    app = make_app(
        SESSION_TYPE="sqlalchemy",
        SESSION_SQLALCHEMY=sqlite_engine,
        SESSION_SQLALCHEMY_TABLE="app_sessions",
        SESSION_SQLALCHEMY_CREATE_TABLE=False,
    )
    works(app)


def test_a_shared_connection_is_warned_about() -> None:
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    with pytest.warns(UserWarning, match="commits whatever the application left pending"):
        SQLAlchemyStore(engine)
    engine.dispose()


@pytest.mark.parametrize("database", ["postgresql_server", "mariadb_server"])
def test_the_longest_ids_fit(
    make_app: c.Callable[..., Flask], database: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(database)
    works(
        make_app(
            SESSION_TYPE=server.url,
            SESSION_ID_LENGTH=192,
            SESSION_KEY_PREFIX="a-long-prefix-for-this-application:" * 5,
            SESSION_SQLALCHEMY_TABLE=f"long_{secrets.token_hex(4)}",
        )
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://u@h/db",
            {"connect_timeout": 3, "options": "-c statement_timeout=1500"},
        ),
        (
            "postgresql+psycopg://u@h/db?connect_timeout=9&options=-c%20search_path%3Dx",
            {"connect_timeout": "9", "options": "-c search_path=x -c statement_timeout=1500"},
        ),
        (
            "postgresql+psycopg://u@h/db?options=-c%20statement_timeout%3D100",
            {"connect_timeout": 3, "options": "-c statement_timeout=100"},
        ),
        (
            "mysql+pymysql://u@h/db",
            {"connect_timeout": 2.5, "read_timeout": 1.5, "write_timeout": 1.5},
        ),
        ("sqlite:///sessions.db", {"timeout": 1.5}),
    ],
    ids=[
        "postgresql",
        "postgresql, the url's own",
        "postgresql, its statement_timeout",
        "mysql",
        "sqlite",
    ],
)
def test_engines_built_from_a_url_get_time_limits(url: str, expected: dict[str, t.Any]) -> None:
    from flask_serverside_sqlalchemy._engine import Timeouts
    from flask_serverside_sqlalchemy._engine import connect_args
    from flask_serverside_sqlalchemy._engine import engine_from_url

    timeouts = Timeouts(statement=1.5, connect=2.5, pool=0.5)
    engine = engine_from_url(url, timeouts)
    try:
        cparams = engine.dialect.create_connect_args(engine.url)[1]
        cparams.update(connect_args(engine.url, timeouts))
        assert {key: cparams.get(key) for key in expected} == expected
        assert engine.hide_parameters
        assert engine.pool.timeout() == 0.5  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_the_time_limit_keys_reach_the_engine(
    make_app: c.Callable[..., Flask], sqlite_url: str
) -> None:
    app = make_app(
        SESSION_TYPE=sqlite_url,
        SESSION_SQLALCHEMY_TIMEOUT=0.75,
        SESSION_SQLALCHEMY_CONNECT_TIMEOUT=3,
        SESSION_SQLALCHEMY_POOL_TIMEOUT=datetime.timedelta(seconds=4),
    )
    store = app.extensions["serverside"].store
    assert store.timeout == 0.75
    assert store.engine.pool.timeout() == 4
    assert store.engine.hide_parameters
    with store.engine.connect() as conn:  # SQLite's busy timeout, in milliseconds
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 750
    works(app)


@pytest.mark.parametrize(
    "key", ["SESSION_SQLALCHEMY_CONNECT_TIMEOUT", "SESSION_SQLALCHEMY_POOL_TIMEOUT"]
)
def test_engine_limits_are_refused_for_an_engine_of_the_application(
    key: str, sqlite_engine: sa.Engine
) -> None:
    app = Flask(__name__)
    app.config.update(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=sqlite_engine, **{key: 2})
    with pytest.raises(ConfigurationError, match=f"{key} applies to an engine the store builds"):
        Session(app)
    app = Flask(__name__)
    app.config.update(
        SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=sqlite_engine, SESSION_SQLALCHEMY_TIMEOUT=1
    )
    Session(app)  # the statement deadline applies to any engine
    assert app.extensions["serverside"].store.timeout == 1
