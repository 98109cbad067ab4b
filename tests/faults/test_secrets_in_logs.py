"""No whole session id, user id or session data in any log line (tracebacks included) on the
failure paths a test can trigger for real: a user id too long for the store, a PostgreSQL
that turned read-only (as after a fail-over), a disk that refuses writes. The outages of every
store (stop, kill -9, SIGSTOP) are checked the same way by ``test_outages.py``."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import typing as t

import psycopg
import pytest
from flask import Flask
from flask import request
from flask import session

from flask_serverside import Session
from flask_serverside import get_state
from flask_serverside.testing import assert_no_secrets
from flask_serverside.testing import spy_on_store


def _app(config: dict[str, t.Any]) -> Flask:
    app = Flask("secrets_in_logs")
    # No breaker: every request reaches the store and fails on its own.
    app.config.update(SECRET_KEY="secrets-in-logs", SESSION_BREAKER_WINDOW=0, **config)
    Session(app)

    @app.post("/login")
    def login() -> str:
        session["_user_id"] = request.form["user"]
        session["note"] = request.form["note"]
        return "ok"

    @app.get("/me")
    def me() -> dict[str, t.Any]:
        return {"user": session.get("_user_id"), "note": session.get("note")}

    return app


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The core's and the stores' records, and any warning or error of anyone's."""
    return [r for r in caplog.records if r.name.startswith("flask_serverside") or r.levelno >= 30]


def _config(store: str, request: pytest.FixtureRequest, tmp_path: t.Any) -> dict[str, t.Any]:
    if store == "redis":
        return {
            "SESSION_TYPE": "redis",
            "SESSION_REDIS": request.getfixturevalue("redis_server").url,
        }
    if store == "memcached":
        server = request.getfixturevalue("memcached_server")
        return {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": [f"127.0.0.1:{server.port}"]}
    if store == "mongodb":
        url = request.getfixturevalue("mongodb_server").url
        return {"SESSION_TYPE": "mongodb", "SESSION_MONGODB": url}
    if store == "postgresql":
        return {"SESSION_TYPE": request.getfixturevalue("postgresql_server").url}
    if store == "mariadb":
        return {"SESSION_TYPE": request.getfixturevalue("mariadb_server").url}
    if store == "sqlite":
        return {"SESSION_TYPE": f"sqlite:///{tmp_path / 'sessions.db'}"}
    if store == "filesystem":
        return {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(tmp_path / "sessions")}
    return {"SESSION_TYPE": "memory"}


@pytest.mark.parametrize(
    "store",
    ["redis", "memcached", "mongodb", "postgresql", "mariadb", "sqlite", "filesystem", "memory"],
)
def test_a_user_id_too_long_for_the_store(store, request, tmp_path, caplog):
    """Redis refuses a user id over 64 KiB, the SQL column holds 255 characters; whatever
    the store does with it, its logs never show it (nor the session's id or data)."""
    app = _app(_config(store, request, tmp_path))
    spy = spy_on_store(app, behind_guard=True)
    user = "u" + secrets.token_hex(35_000)  # 70,001 characters
    note = f"note-{secrets.token_hex(12)}"
    caplog.set_level(logging.DEBUG, logger="flask_serverside")
    try:
        client = app.test_client()
        response = client.post("/login", data={"user": user, "note": note})
        assert response.status_code in (200, 503)
        if response.status_code == 200:
            assert client.get("/me").get_json() == {"user": user, "note": note}
    finally:
        get_state(app).close()
    assert_no_secrets(_records(caplog), [user, note, *spy.sids])


@pytest.fixture
def read_only_postgresql(postgresql_server: t.Any) -> t.Iterator[tuple[str, t.Callable[[], None]]]:
    """A database of its own on the shared server, and a function that turns it read-only
    for new connections (as a fail-over to a standby does)."""
    name = f"ro_{secrets.token_hex(4)}"
    admin = psycopg.connect(postgresql_server.dsn, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")

    def turn_read_only() -> None:
        admin.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")

    try:
        yield postgresql_server.url.rsplit("/", 1)[0] + f"/{name}", turn_read_only
    finally:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def test_a_postgresql_turned_read_only(read_only_postgresql, caplog):
    url, turn_read_only = read_only_postgresql
    # The expiry is written on every read, as a busy site's would be sooner or later.
    app = _app({"SESSION_TYPE": url, "SESSION_SQLALCHEMY_REFRESH_INTERVAL": 0})
    spy = spy_on_store(app, behind_guard=True)
    user, note = f"user-{secrets.token_hex(12)}", f"note-{secrets.token_hex(12)}"
    caplog.set_level(logging.DEBUG, logger="flask_serverside")
    try:
        client = app.test_client()
        assert client.post("/login", data={"user": user, "note": note}).status_code == 200
        turn_read_only()
        get_state(app).store.engine.dispose()  # new connections see it
        assert client.get("/me").status_code == 503  # the expiry refresh is refused
        other = app.test_client()
        other_user = f"user-{secrets.token_hex(12)}"
        assert other.post("/login", data={"user": other_user, "note": note}).status_code == 503
    finally:
        get_state(app).close()
    records = _records(caplog)
    assert any("read-only transaction" in r.getMessage() for r in records)
    assert_no_secrets(records, [user, other_user, note, *spy.sids])


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("chattr") is None,
    reason="making files immutable needs root and chattr",
)
def test_a_disk_that_refuses_writes(tmp_path, caplog):
    directory = tmp_path / "sessions"
    app = _app({"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(directory)})
    spy = spy_on_store(app, behind_guard=True)
    user, note = f"user-{secrets.token_hex(12)}", f"note-{secrets.token_hex(12)}"
    caplog.set_level(logging.DEBUG, logger="flask_serverside")
    client = app.test_client()
    assert client.post("/login", data={"user": user, "note": note}).status_code == 200
    immutable = subprocess.run(["chattr", "-R", "+i", str(directory)], capture_output=True)
    if immutable.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {immutable.stderr.decode().strip()}")
    try:
        # The refresh fails (logged), the session is served; a write fails with a 503.
        assert client.get("/me").get_json() == {"user": user, "note": note}
        other = f"user-{secrets.token_hex(12)}"
        assert client.post("/login", data={"user": other, "note": note}).status_code == 503
    finally:
        subprocess.run(["chattr", "-R", "-i", str(directory)], check=True)
    records = _records(caplog)
    assert any("refresh the expiry" in r.getMessage() for r in records)
    assert any(r.exc_info for r in records)  # the failed save, with its traceback
    assert_no_secrets(records, [user, other, note, *spy.sids])
