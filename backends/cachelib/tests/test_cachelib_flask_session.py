"""Moving from Flask-Session 0.8: an application configured for its ``cachelib`` type exactly
as its documentation says (keys only) runs unchanged when only the import changes; and what
Flask-Session stored through cachelib (pickles) is never loaded: its users start afresh."""

from __future__ import annotations

import typing as t

import flask_session
import pytest
from cachelib import FileSystemCache
from flask import Flask
from flask import session

import flask_serverside
from flask_serverside.testing import spy_on_store

if t.TYPE_CHECKING:
    from pathlib import Path


def make_app(extension: type, config: dict[str, t.Any]) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "change me"
    app.config.update(config)
    extension(app)

    @app.post("/login")
    def login() -> str:
        session["user"] = "alice"
        return "logged in"

    @app.get("/read")
    def read() -> str:
        return str(session.get("user", "anonymous"))

    @app.post("/logout")
    def logout() -> str:
        session.clear()
        return "logged out"

    return app


@pytest.mark.parametrize(
    "extension", [flask_session.Session, flask_serverside.Session], ids=["Flask-Session", "ours"]
)
def test_the_documented_configuration_works_with_only_the_import_changed(
    extension: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # Flask-Session's configuration reference, "CacheLib":
    config = {
        "SESSION_TYPE": "cachelib",
        "SESSION_CACHELIB": FileSystemCache(cache_dir="flask_session", threshold=500),
    }
    app = make_app(extension, config)
    browser = app.test_client()
    assert browser.get("/read").text == "anonymous"
    assert browser.post("/login").text == "logged in"
    assert browser.get_cookie("session") is not None
    assert browser.get("/read").text == "alice"
    assert app.test_client().get("/read").text == "anonymous"  # another browser
    assert browser.post("/logout").text == "logged out"
    assert browser.get("/read").text == "anonymous"
    if extension is flask_serverside.Session:
        assert browser.get_cookie("session") is None
        flask_serverside.get_state(app).close()


def test_flask_session_pickles_are_not_loaded_and_their_users_start_afresh(
    tmp_path: Path,
) -> None:
    config = {
        "SESSION_TYPE": "cachelib",
        "SESSION_CACHELIB": FileSystemCache(cache_dir=str(tmp_path), threshold=500),
    }
    old = make_app(flask_session.Session, config)
    browser = old.test_client()
    browser.post("/login")
    cookie = browser.get_cookie("session")
    assert cookie is not None and browser.get("/read").text == "alice"

    new = make_app(flask_serverside.Session, config)
    spy = spy_on_store(new)
    moved = new.test_client()
    moved.set_cookie("session", cookie.value)
    response = moved.get("/read")
    assert response.status_code == 200 and response.text == "anonymous"
    assert cookie.value in spy.sids  # asked under the raw id too: nothing it can read
    moved.post("/login")
    new_cookie = moved.get_cookie("session")
    assert new_cookie is not None and new_cookie.value != cookie.value  # never adopted
    flask_serverside.get_state(new).close()
