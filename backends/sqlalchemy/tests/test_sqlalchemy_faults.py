"""The database going away under the store: errors are StoreUnavailable, requests answer 503,
and the store works again, with its sessions, once the database is back."""

from __future__ import annotations

import sqlite3
import threading
import time
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside import StoreError
from flask_serverside import StoreSettings
from flask_serverside import StoreUnavailable
from flask_serverside.testing import new_sid
from flask_serverside_sqlalchemy import SQLAlchemyStore


def make_app(**config: t.Any) -> Flask:
    app = Flask(__name__)
    # The circuit breaker has tests of its own; here every request reaches the database.
    app.config.update(SECRET_KEY="secret", SESSION_BREAKER_WINDOW=0, **config)
    Session(app)

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"user": session.get("user")}

    @app.post("/login")
    def login() -> dict[str, t.Any]:
        session["user"] = "alice"
        return {"ok": True}

    @app.post("/count")
    def count() -> dict[str, t.Any]:
        session["count"] = session.get("count", 0) + 1
        return {"count": session["count"]}

    return app


def _restart_under_the_store(server: t.Any, app: Flask) -> None:
    client = app.test_client()
    client.post("/login")
    client.post("/count")
    assert client.get("/read").get_json() == {"user": "alice"}
    server.stop()
    assert client.get("/read").status_code == 503
    assert client.post("/count").status_code == 503
    store = app.extensions["serverside"].store
    with pytest.raises(StoreUnavailable) as caught:
        store.load(new_sid())
    assert isinstance(caught.value.__cause__, sa.exc.OperationalError)
    server.start()
    # The pool's connections died with the server: the first request after it is back works.
    assert client.get("/read").get_json() == {"user": "alice"}
    assert client.post("/count").get_json() == {"count": 2}
    # A restart no request saw: the stale pooled connection is replaced and the query retried.
    server.stop()
    server.start()
    assert client.get("/read").get_json() == {"user": "alice"}
    assert client.post("/count").get_json() == {"count": 3}


def test_postgresql_restarting_under_the_store(make_postgresql_server: t.Any) -> None:
    server = make_postgresql_server()
    app = make_app(SESSION_TYPE=server.url)
    try:
        _restart_under_the_store(server, app)
    finally:
        app.extensions["serverside"].close()


def test_mariadb_restarting_under_the_store(make_mariadb_server: t.Any) -> None:
    server = make_mariadb_server()
    app = make_app(SESSION_TYPE=server.url)
    try:
        _restart_under_the_store(server, app)
    finally:
        app.extensions["serverside"].close()


def test_a_database_that_is_down_at_start_up(make_postgresql_server: t.Any) -> None:
    server = make_postgresql_server()
    server.stop()
    with pytest.raises(StoreUnavailable):
        make_app(SESSION_TYPE=server.url)
    app = make_app(SESSION_TYPE=server.url, SESSION_SQLALCHEMY_CREATE_TABLE=False)
    try:
        assert app.test_client().get("/read").get_json() == {"user": None}
        assert app.test_client().post("/login").status_code == 503
        server.start()
        SQLAlchemyStore(app.extensions["serverside"].store.engine)  # creates the table
        client = app.test_client()
        assert client.post("/login").status_code == 200
        assert client.get("/read").get_json() == {"user": "alice"}
    finally:
        app.extensions["serverside"].close()


def test_other_failures_are_store_errors(sqlite_engine: sa.Engine) -> None:
    store = SQLAlchemyStore(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE sessions"))
    with pytest.raises(StoreError) as caught:
        store.save(new_sid(), b"data", 60)
    assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)


def test_a_busy_sqlite_database_is_tried_again(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url, connect_args={"timeout": 0.3})
    store = SQLAlchemyStore(engine)
    sid = new_sid()
    store.save(sid, b"before", 60)
    locker = sqlite3.connect(
        engine.url.database or "", isolation_level=None, check_same_thread=False
    )
    locker.execute("BEGIN EXCLUSIVE")
    timer = threading.Timer(0.45, locker.rollback)
    timer.start()
    try:
        store.save(sid, b"after", 60)  # busy for 0.3 s (under half the timeout), tried again
    finally:
        timer.join()
        locker.close()
    record = store.load(sid)
    assert record is not None and record.data == b"after"
    engine.dispose()


def test_a_slow_statement_is_cancelled_by_the_server(postgresql_server: t.Any) -> None:
    """An engine built from a URL carries ``statement_timeout``: PostgreSQL itself cancels a
    statement that runs too long, and the connection stays usable."""
    store = SQLAlchemyStore.from_settings(
        StoreSettings(
            name="postgresql",
            config={"SESSION_SQLALCHEMY_TIMEOUT": 0.5},
            url=postgresql_server.url,
        )
    )
    try:
        began = time.monotonic()
        with pytest.raises(StoreUnavailable, match="statement timeout") as caught:
            store._run(lambda conn: conn.exec_driver_sql("SELECT pg_sleep(5)"), write=False)
        assert time.monotonic() - began < 3
        assert "did not answer" not in str(caught.value)  # the server answered: cancelled
        store.save(new_sid(), b"data", 60)
    finally:
        store.close()


@pytest.mark.parametrize("server_fixture", ["make_postgresql_server", "make_mariadb_server"])
def test_a_frozen_database_costs_one_timeout_on_an_engine_without_limits(
    server_fixture: str, request: pytest.FixtureRequest
) -> None:
    """An engine of the application's, with no timeout of its own: the store's deadline cuts
    the statement's connection when the server does not answer (SIGSTOP), and the store works
    again once the server does."""
    server = request.getfixturevalue(server_fixture)()
    url = server.url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url.replace("mysql://", "mysql+pymysql://", 1))
    store = SQLAlchemyStore(engine, timeout=0.5)
    sid = new_sid()
    store.save(sid, b"before", 60)
    server.freeze()
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            store.load(sid)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    try:
        began = time.monotonic()
        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "the load still waits on the frozen server"
        assert time.monotonic() - began < 4
    finally:
        server.thaw()
    (error,) = outcome
    assert isinstance(error, StoreUnavailable)
    assert "did not answer within 0.5 s" in str(error)
    record = store.load(sid)
    assert record is not None and record.data == b"before"
    engine.dispose()
