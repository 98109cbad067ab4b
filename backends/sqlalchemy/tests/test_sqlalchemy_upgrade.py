"""A table made by the real Flask-Session 0.8, on SQLite, PostgreSQL and MariaDB: upgraded in
place at start-up when the store may create its table (one log line), or, with
``SESSION_SQLALCHEMY_CREATE_TABLE = False``, left alone with the statements to run in the
error; either way its users stay logged in."""

from __future__ import annotations

import collections.abc as c
import logging
import secrets
import typing as t

import flask_session
import pytest
import sqlalchemy as sa
from flask import Flask
from flask import session
from flask_sqlalchemy import SQLAlchemy

from flask_serverside import Session
from flask_serverside import StoreError
from flask_serverside_sqlalchemy import SQLAlchemyStore

from .conftest import psycopg_url
from .conftest import pymysql_url

DATABASES = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    if request.param == "postgresql":
        return psycopg_url(request.getfixturevalue("postgresql_server").url)
    return pymysql_url(request.getfixturevalue("mariadb_server").url)


@pytest.fixture
def table() -> str:
    return f"fs_{secrets.token_hex(4)}"


@pytest.fixture
def apps() -> c.Iterator[list[Flask]]:
    made: list[Flask] = []
    yield made
    for app in made:
        app.extensions["serverside"].close()


def _routes(app: Flask) -> None:
    @app.post("/login")
    def login() -> dict[str, t.Any]:
        session["user"] = "alice"
        return {"ok": True}

    @app.post("/cart")
    def cart() -> dict[str, t.Any]:
        session["cart"] = [*session.get("cart", []), "pear"]
        return {"ok": True}

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"user": session.get("user"), "cart": session.get("cart")}


def flask_session_login(url: str, table: str) -> str:
    """Let the real Flask-Session 0.8 create ``table`` and log a user in; return the cookie."""
    db = SQLAlchemy()
    old = Flask("flask_session_app")
    old.config.update(
        SECRET_KEY="secret",
        SQLALCHEMY_DATABASE_URI=url,
        SESSION_TYPE="sqlalchemy",
        SESSION_SQLALCHEMY=db,
        SESSION_SQLALCHEMY_TABLE=table,
    )
    db.init_app(old)
    flask_session.Session(old)
    _routes(old)
    client = old.test_client()
    client.post("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None
    with old.app_context():
        db.engine.dispose()
    return cookie.value


def our_app(apps: list[Flask], url: str, table: str, **config: t.Any) -> Flask:
    app = Flask("serverside_app")
    app.config.update(
        SECRET_KEY="secret", SESSION_TYPE=url, SESSION_SQLALCHEMY_TABLE=table, **config
    )
    Session(app)
    apps.append(app)
    _routes(app)
    return app


def shape(url: str, table: str) -> tuple[set[str], set[str]]:
    """The table's columns, and the columns that lead an index."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        columns = {col["name"] for col in inspector.get_columns(table)}
        indexed = {index["column_names"][0] for index in inspector.get_indexes(table)}
    finally:
        engine.dispose()
    return columns, indexed


def test_a_flask_session_table_is_upgraded_in_place(
    database_url: str, table: str, apps: list[Flask], caplog: pytest.LogCaptureFixture
) -> None:
    cookie = flask_session_login(database_url, table)
    columns, indexed = shape(database_url, table)
    assert columns == {"id", "session_id", "data", "expiry"}
    assert not {"expiry", "user_id"} & indexed

    with caplog.at_level(logging.INFO, logger="flask_serverside.sqlalchemy"):
        app = our_app(apps, database_url, table)
    lines = [r for r in caplog.records if r.name == "flask_serverside.sqlalchemy"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING
    message = lines[0].getMessage()
    assert "Flask-Session" in message
    for added in ("column version", "column user_id", "index ix_", "expiry"):
        assert added in message
    columns, indexed = shape(database_url, table)
    assert {"version", "user_id"} <= columns
    assert {"expiry", "user_id"} <= indexed

    client = app.test_client()
    client.set_cookie("session", cookie)
    assert client.get("/read").get_json() == {"user": "alice", "cart": None}
    assert client.post("/cart").status_code == 200  # a conditional save of an unversioned row
    assert client.get("/read").get_json() == {"user": "alice", "cart": ["pear"]}

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="flask_serverside.sqlalchemy"):
        our_app(apps, database_url, table)  # another worker: nothing left to do
    assert not [r for r in caplog.records if r.name == "flask_serverside.sqlalchemy"]


def test_without_table_creation_the_error_gives_the_statements(
    database_url: str, table: str, apps: list[Flask]
) -> None:
    cookie = flask_session_login(database_url, table)
    app = our_app(apps, database_url, table, SESSION_SQLALCHEMY_CREATE_TABLE=False)
    assert shape(database_url, table)[0] == {"id", "session_id", "data", "expiry"}

    client = app.test_client()
    client.set_cookie("session", cookie)
    assert client.get("/read").status_code == 503  # the store is unusable, and says why
    store: SQLAlchemyStore = app.extensions["serverside"].store
    with pytest.raises(StoreError, match="Flask-Session") as caught:
        store.load(cookie)
    message = str(caught.value)
    statements = message.split("keeping the sessions it holds: ")[1].split(" Or set")[0]
    assert statements.count("ALTER TABLE") == 2
    assert statements.count("CREATE INDEX") == 2
    engine = sa.create_engine(database_url)
    try:
        for statement in statements.split(";"):
            if statement.strip():
                with engine.begin() as conn:
                    conn.execute(sa.text(statement))
    finally:
        engine.dispose()

    assert client.get("/read").get_json() == {"user": "alice", "cart": None}
    assert client.post("/cart").status_code == 200
    assert client.get("/read").get_json() == {"user": "alice", "cart": ["pear"]}
