"""Moving from Flask-Session 0.8: the same configuration works, without its deprecation
warnings; its pickled files are never read (users sign in again) nor deleted."""

from __future__ import annotations

import typing as t

import flask_session
import pytest
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside import get_state


def _config(directory) -> dict[str, t.Any]:
    return {
        "SECRET_KEY": "migration-secret",
        "SESSION_TYPE": "filesystem",
        "SESSION_FILE_DIR": str(directory),
        "SESSION_FILE_THRESHOLD": 100,
        "SESSION_FILE_MODE": 0o600,
        "SESSION_PERMANENT": True,
        "SESSION_USE_SIGNER": True,
        "SESSION_KEY_PREFIX": "session:",
    }


def _app(extension: t.Callable[[Flask], object], directory) -> Flask:
    app = Flask("migration_test")
    app.config.update(_config(directory))
    extension(app)

    @app.post("/login/<user>")
    def login(user: str) -> dict[str, t.Any]:
        session["user"] = user
        return {"ok": True}

    @app.get("/whoami")
    def whoami() -> dict[str, t.Any]:
        return {"user": session.get("user")}

    return app


def _flask_session_app(directory) -> Flask:
    with pytest.warns(DeprecationWarning):
        return _app(flask_session.Session, directory)


def test_the_same_configuration_works_on_both(tmp_path):
    for app in (_flask_session_app(tmp_path / "old"), _app(Session, tmp_path / "new")):
        client = app.test_client()
        client.post("/login/alice")
        assert client.get("/whoami").get_json() == {"user": "alice"}
    store = get_state(app).store
    assert (store.threshold, store.mode) == (100, 0o600)
    assert store.count() == 1


def test_flask_session_files_are_left_alone(tmp_path):
    old_app = _flask_session_app(tmp_path)
    old_client = old_app.test_client()
    old_client.post("/login/alice")
    pickled = sorted(p for p in tmp_path.iterdir() if p.is_file())
    assert pickled, "Flask-Session wrote its files"
    contents = {p: p.read_bytes() for p in pickled}

    app = _app(Session, tmp_path)
    client = app.test_client()
    cookie = old_client.get_cookie("session")
    assert cookie is not None
    client.set_cookie("session", cookie.value)
    assert client.get("/whoami").get_json() == {"user": None}
    client.post("/login/bob")
    store = get_state(app).store
    assert store.count() == 1
    assert store.purge_expired() == 0
    assert {p: p.read_bytes() for p in pickled} == contents
