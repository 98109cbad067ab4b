"""Flask's and Flask-Session's session behaviour that applications rely on."""

from __future__ import annotations

import pytest
from flask import Flask
from flask import session

from flask_serverside import MemoryStore
from flask_serverside import ServerSideSession
from flask_serverside import Session
from flask_serverside import StoreError
from flask_serverside import get_state
from flask_serverside import register_store
from flask_serverside import unregister_store
from flask_serverside.testing import spy_on_store


def _cookies(response):
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]


def test_a_session_holding_only_internal_keys_is_false():
    assert not ServerSideSession({"_permanent": True})
    assert not ServerSideSession()
    assert ServerSideSession({"_permanent": True, "user": "alice"})
    assert ServerSideSession({"_fresh": False})


def test_a_new_session_is_false_inside_a_request(make_app):
    app = make_app()

    @app.get("/")
    def index():
        return {"truthy": bool(session), "permanent": session.permanent}

    response = app.test_client().get("/")
    assert response.get_json() == {"truthy": False, "permanent": True}
    assert _cookies(response) == []


@pytest.mark.parametrize(
    "config",
    [{"SESSION_PERMANENT": False}, {"SESSION_REFRESH_EACH_REQUEST": False}, {}],
    ids=["not-permanent", "no-refresh", "defaults"],
)
def test_a_view_that_never_touches_the_session_sends_no_vary(make_app, config):
    app = make_app(**config)

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return "ok"

    @app.get("/static-page")
    def static_page():
        return "the same for everyone"

    client = app.test_client()
    client.post("/login")
    spy = spy_on_store(app)
    response = client.get("/static-page")
    assert "Cookie" not in response.vary
    assert _cookies(response) == []
    assert sum(spy.calls.values()) == 0  # not even loaded


def test_an_unserializable_value_is_a_programming_error_not_an_outage(make_app):
    app = make_app()

    @app.post("/bad")
    def bad():
        session["x"] = object()
        return "ok"

    app.config["TESTING"] = True  # re-raised, as Flask does for any error of the app
    with pytest.raises(TypeError, match=r"^session\['x'\]: object cannot be stored"):
        app.test_client().post("/bad")
    app.config["TESTING"] = False
    response = app.test_client().post("/bad")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers


def test_an_invalid_samesite_setting_is_a_programming_error(make_app):
    app = make_app(SESSION_COOKIE_SAMESITE="Sometimes", PROPAGATE_EXCEPTIONS=False)

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return "ok"

    response = app.test_client().post("/login")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers


class RaisingStore(MemoryStore):
    """A third-party store with a bug: it raises KeyError instead of a StoreError."""

    broken = False

    @classmethod
    def from_settings(cls, settings):
        return cls(key_prefix=settings.key_prefix)

    def load_and_touch(self, sid, ttl):
        if type(self).broken:
            raise KeyError("internal state")
        return super().load_and_touch(sid, ttl)


@pytest.fixture
def raising():
    register_store("raising", RaisingStore)
    yield RaisingStore
    RaisingStore.broken = False
    unregister_store("raising")


def test_a_store_that_raises_something_else_is_wrapped_once_into_a_store_error(raising):
    app = Flask("third_party")
    app.config.update(SECRET_KEY="s", SESSION_TYPE="raising", SESSION_BREAKER_WINDOW=0)
    Session(app)

    @app.route("/", methods=["GET", "POST"])
    def index():
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    client = app.test_client()
    assert client.post("/").text == "1"
    raising.broken = True
    response = client.get("/")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    store = get_state(app).store
    with pytest.raises(StoreError) as caught:
        store.load_and_touch("x" * 43, 60)
    assert isinstance(caught.value.__cause__, KeyError)
    assert "raising" in str(caught.value) and "KeyError" in str(caught.value)


def test_a_changed_secret_key_is_honoured(make_app):
    app = make_app(SESSION_USE_SIGNER=True, SECRET_KEY="first")

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return "ok"

    @app.get("/me")
    def me():
        return session.get("user", "anonymous")

    client = app.test_client()
    client.post("/login")
    assert client.get("/me").text == "alice"
    app.secret_key = "second"
    app.config["SECRET_KEY_FALLBACKS"] = ["first"]
    assert client.get("/me").text == "alice"  # rotation: the old key still verifies
    client.post("/login")  # signed with the new key
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/me").text == "alice"
    app.secret_key = "third"
    assert client.get("/me").text == "anonymous"  # signed with a key no longer accepted
