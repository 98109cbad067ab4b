"""A small real application with Flask-Login and Flask-WTF, on two stores (files and Redis).

Flask-Login's session protection, remember-me and logout, and Flask-WTF's CSRF token, as users
of Flask-Session rely on them; plus the "log out everywhere" recipe that also closes
remember-me cookies.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import re
import secrets

import pytest
from flask import Flask
from flask import render_template_string
from flask import request
from flask import session
from flask_login import LoginManager
from flask_login import UserMixin
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import logout_user
from flask_wtf import CSRFProtect

from flask_serverside import Session
from flask_serverside import get_state
from flask_serverside import revoke_user_sessions
from flask_serverside.testing import spy_on_store

pytestmark = pytest.mark.servers


@dataclasses.dataclass
class User(UserMixin):
    name: str
    #: Bumped to invalidate every remember-me cookie of the user (the recipe).
    version: int = 1

    def get_id(self) -> str:
        return f"{self.name}:{self.version}"


@pytest.fixture(params=["filesystem", "redis"])
def store_config(request, tmp_path) -> dict:
    if request.param == "filesystem":
        return {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(tmp_path / "sessions")}
    server = request.getfixturevalue("redis_server")
    return {"SESSION_TYPE": "redis", "SESSION_REDIS": server.url}


@pytest.fixture
def users() -> dict[str, User]:
    return {"alice": User("alice"), "bob": User("bob")}


@pytest.fixture
def make_app(store_config, users) -> c.Iterator[c.Callable[..., Flask]]:
    apps = []

    def make(protection: str = "basic", **config: object) -> Flask:
        app = Flask("extensions")
        app.config.update(
            SECRET_KEY="extensions-secret",
            SESSION_KEY_PREFIX=f"ext-{secrets.token_hex(4)}:",
            WTF_CSRF_TIME_LIMIT=None,
            **store_config,
        )
        app.config.update(config)
        Session(app)
        CSRFProtect(app)
        manager = LoginManager(app)
        manager.session_protection = protection

        @manager.user_loader
        def load(user_id: str) -> User | None:
            name, _, version = user_id.partition(":")
            user = users.get(name)
            # The recipe: an id of an older version (an old remember-me cookie) is refused.
            return user if user is not None and str(user.version) == version else None

        @app.get("/")
        def index() -> str:
            return current_user.name if current_user.is_authenticated else "anonymous"

        @app.get("/form")
        def form() -> str:
            return render_template_string("{{ csrf_token() }}")

        @app.post("/login")
        def login() -> str:
            login_user(users[request.form["name"]], remember="remember" in request.form)
            return "ok"

        @app.post("/logout")
        def logout() -> str:
            logout_user()
            session.destroy()
            return "ok"

        @app.get("/private")
        @login_required
        def private() -> str:
            return f"hello {current_user.name}"

        apps.append(app)
        return app

    yield make
    for app in apps:
        get_state(app).close()


def _login(app: Flask, name: str, *, remember: bool = False):
    client = app.test_client()
    token = client.get("/form").text
    data = {"name": name, "csrf_token": token}
    if remember:
        data["remember"] = "1"
    response = client.post("/login", data=data)
    assert response.status_code == 200, response.text
    return client


def _stored(app: Flask) -> int:
    return get_state(app).store.count()


@pytest.mark.parametrize("protection", ["basic", "strong"])
def test_an_anonymous_visitor_stores_nothing_and_gets_no_cookie(make_app, protection):
    app = make_app(protection)
    spy = spy_on_store(app)
    for _ in range(3):
        response = app.test_client().get("/")
        assert response.text == "anonymous"
        assert "Set-Cookie" not in response.headers
    assert spy.writes == 0
    assert _stored(app) == 0


def test_login_logout_and_login_required(make_app):
    app = make_app()
    client = _login(app, "alice")
    assert client.get("/").text == "alice"
    assert client.get("/private").text == "hello alice"
    assert _stored(app) == 1
    response = client.post("/logout", data={"csrf_token": client.get("/form").text})
    assert response.status_code == 200
    assert client.get("/").text == "anonymous"
    assert client.get("/private").status_code == 401
    assert _stored(app) <= 1  # at most the CSRF token's fresh session


def test_login_regenerates_nothing_by_itself_but_the_session_id_survives(make_app):
    app = make_app()
    client = _login(app, "alice")
    first = client.get_cookie("session").value
    client.get("/")
    assert client.get_cookie("session").value == first


def test_strong_protection_logs_out_a_session_seen_from_another_browser(make_app):
    # Flask-Login applies "strong" to sessions that are not permanent (else it acts as "basic").
    app = make_app("strong", SESSION_PERMANENT=False)
    client = _login(app, "alice")
    assert client.get("/", headers={"User-Agent": "Browser A"}).text == "anonymous"
    # Flask-Login's "strong" mode dropped the user from the session: it stays logged out.
    assert client.get("/").text == "anonymous"


def test_basic_protection_marks_the_session_not_fresh(make_app):
    app = make_app("basic")
    client = _login(app, "alice")
    with client.session_transaction() as sess:
        assert sess["_fresh"] is True
    assert client.get("/", headers={"User-Agent": "Browser B"}).text == "alice"
    with client.session_transaction() as sess:
        assert sess["_fresh"] is False


def test_remember_me_logs_back_in_after_the_session_cookie_is_gone(make_app):
    app = make_app()
    client = _login(app, "alice", remember=True)
    assert client.get_cookie("remember_token") is not None
    client.delete_cookie("session")  # the browser was closed
    assert client.get("/").text == "alice"


def test_the_csrf_token_lives_in_the_server_side_session(make_app):
    app = make_app()
    client = app.test_client()
    token = client.get("/form").text
    assert client.get_cookie("session") is not None
    sid = client.get_cookie("session").value
    state = get_state(app)
    key = state.store_key(sid)
    stored = state.decode(key, state.store.load(key))
    assert "csrf_token" in stored and token not in (sid,)
    assert client.post("/login", data={"name": "bob", "csrf_token": token}).status_code == 200
    missing = client.post("/login", data={"name": "bob"})
    assert missing.status_code == 400 and "CSRF" in missing.text
    forged = app.test_client().post("/login", data={"name": "bob", "csrf_token": token})
    assert forged.status_code == 400


def test_log_out_everywhere_and_the_remember_me_recipe(make_app, users):
    app = make_app()
    if "user_sids" not in dir(get_state(app).store.wrapped):
        pytest.skip("the store keeps no user index")
    laptop = _login(app, "alice", remember=True)
    phone = _login(app, "alice")
    bob = _login(app, "bob")
    # Sessions alone: revoking them leaves the remember-me cookie, which logs straight back in.
    with app.app_context():
        assert revoke_user_sessions(users["alice"].get_id()) == 2
    assert phone.get("/").text == "anonymous"
    assert laptop.get("/").text == "alice"  # through remember_token, as documented
    # The recipe: revoke the sessions and bump the user's id version.
    with app.app_context():
        revoke_user_sessions(users["alice"].get_id())
    users["alice"].version += 1
    laptop.delete_cookie("session")
    assert laptop.get("/").text == "anonymous"
    assert bob.get("/").text == "bob"
    assert re.fullmatch(r"alice:\d+", users["alice"].get_id())
