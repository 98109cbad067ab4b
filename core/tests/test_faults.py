"""Store outages and write conflicts follow the configured policy, never a bare 500."""

from __future__ import annotations

import json
import logging

from flask import Flask
from flask import session

from flask_serverside import Capability
from flask_serverside import MemoryStore
from flask_serverside import Record
from flask_serverside import Session
from flask_serverside import StoreUnavailable
from flask_serverside import WriteConflict
from flask_serverside import get_state
from flask_serverside import register_store
from flask_serverside import unregister_store
from flask_serverside.writer import merge


def _app(**config):
    app = Flask("faults")
    config.setdefault("SESSION_BREAKER_WINDOW", 0)  # the breaker has tests of its own
    app.config.update(SECRET_KEY="s", SESSION_TYPE="flaky", **config)
    Session(app)

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return "ok"

    @app.get("/me")
    def me():
        return session.get("user", "anonymous")

    @app.get("/public")
    def public():
        return "public page"

    return app


def test_outage_answers_503_only_where_the_session_is_needed(flaky, caplog, clock):
    app = _app(SESSION_BREAKER_WINDOW=5)
    get_state(app).breaker._clock = clock
    client = app.test_client()
    client.post("/login")
    flaky.fault = StoreUnavailable("connection refused")
    with caplog.at_level(logging.ERROR, logger="flask_serverside"):
        response = client.get("/me")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Traceback" not in response.text and "session store is unavailable" in response.text
    assert "failed to load" in caplog.text
    assert client.get("/public").status_code == 200
    flaky.fault = None
    assert client.get("/me").status_code == 503  # the breaker still fails fast
    clock.advance(5)
    assert client.get("/me").text == "alice"


def test_errorhandler_renders_the_503(flaky):
    app = _app()

    @app.errorhandler(503)
    def unavailable(error):
        return "come back soon", 503

    client = app.test_client()
    client.post("/login")
    flaky.fault = StoreUnavailable("connection refused")
    response = client.get("/me")
    assert (response.status_code, response.text) == (503, "come back soon")


def test_empty_policy_serves_an_anonymous_session(flaky):
    app = _app(SESSION_ON_STORE_ERROR="empty")
    client = app.test_client()
    client.post("/login")
    flaky.fault = StoreUnavailable("connection refused")
    response = client.get("/me")
    assert (response.status_code, response.text) == (200, "anonymous")


def test_a_write_that_cannot_be_saved_is_a_503_not_a_silent_loss(flaky, caplog):
    app = _app()
    client = app.test_client()
    flaky.fault = StoreUnavailable("connection refused")
    with caplog.at_level(logging.ERROR, logger="flask_serverside"):
        response = client.post("/login")
    assert response.status_code == 503
    assert "Set-Cookie" not in response.headers
    assert "failed to save" in caplog.text
    # The empty policy does not hide a failed write either.
    app = _app(SESSION_ON_STORE_ERROR="empty")
    assert app.test_client().post("/login").status_code == 503


class AlwaysConflicting(MemoryStore):
    capabilities = MemoryStore.capabilities & ~Capability.SAVE_IF_OR_LOAD

    @classmethod
    def from_settings(cls, settings):
        return cls(key_prefix=settings.key_prefix)

    def save_if(self, sid, data, ttl, *, expected, user_id=None):
        if expected is None:
            return super().save_if(sid, data, ttl, expected=None, user_id=user_id)
        # Someone else always wins the race, with another value for the same key (a writer
        # that stored this request's own changes would have made its save unneeded).
        other = json.loads(data)
        other["value"] = f"{other.get('value')}, theirs"
        self.save(sid, json.dumps(other).encode(), ttl)
        return False


def test_endless_conflicts_end_in_a_503_at_the_deadline(caplog):
    register_store("conflicting", AlwaysConflicting)
    try:
        app = Flask("conflicts")
        app.config.update(
            SECRET_KEY="s", SESSION_TYPE="conflicting", SESSION_SERIALIZATION_FORMAT="json"
        )
        Session(app)
        get_state(app).writer.deadline = 0.05

        @app.post("/set/<value>")
        def set_value(value):
            session["value"] = value
            return "ok"

        client = app.test_client()
        assert client.post("/set/a").status_code == 200
        with caplog.at_level(logging.ERROR, logger="flask_serverside"):
            assert client.post("/set/b").status_code == 503
        assert WriteConflict.__name__ in caplog.text
        assert "conditional saves in 0.05 s" in caplog.text
    finally:
        unregister_store("conflicting")


def test_merge_applies_our_changes_onto_theirs():
    base = {"a": 1, "b": 2, "c": {"x": 1}, "gone": 0}
    ours = {"a": 1, "b": 20, "c": {"x": 2}, "new": True}
    theirs = {"a": 10, "b": 2, "c": {"x": 1}, "gone": 0, "theirs": "kept"}
    assert merge(base, ours, theirs) == {
        "a": 10,
        "b": 20,
        "c": {"x": 2},
        "theirs": "kept",
        "new": True,
    }


def test_a_session_deleted_meanwhile_is_not_resurrected():
    app = Flask("deleted")
    app.config.update(SECRET_KEY="s", SESSION_TYPE="memory")
    Session(app)

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return "ok"

    client = app.test_client()
    client.post("/login")
    cookie = f"session={client.get_cookie('session').value}"
    store = app.extensions["serverside"].store
    with app.test_request_context("/", headers={"Cookie": cookie}) as ctx:
        ctx.session["theme"] = "dark"
        store.delete(ctx.session.key)  # another request logs out meanwhile
        response = app.response_class()
        app.session_interface.save_session(app, ctx.session, response)
    assert store.count() == 0
    # The cookie is left to the request that deleted the session (it may have set a new one).
    assert "Set-Cookie" not in response.headers


def test_records_are_records():
    assert Record(b"x").version is None


def test_an_outage_logs_every_failure_but_one_traceback(flaky, caplog):
    app = _app()
    client = app.test_client()
    client.post("/login")
    flaky.fault = StoreUnavailable("connection refused")
    with caplog.at_level(logging.ERROR, logger="flask_serverside"):
        for _ in range(5):
            assert client.get("/me").status_code == 503
    failures = [r for r in caplog.records if "failed to load" in r.getMessage()]
    assert len(failures) == 5
    assert sum(1 for r in failures if r.exc_info) == 1
    assert "StoreUnavailable: connection refused" in failures[-1].getMessage()
