"""The kit's log check finds secrets in messages and in chained tracebacks, and nowhere else;
the core logs no whole id, user id or data on its fault paths."""

from __future__ import annotations

import logging
import secrets

import pytest
from flask import Flask
from flask import request
from flask import session

from flask_serverside import MemoryStore
from flask_serverside import Session
from flask_serverside import StoreUnavailable
from flask_serverside import get_state
from flask_serverside import register_store
from flask_serverside import unregister_store
from flask_serverside.testing import assert_no_secrets
from flask_serverside.testing import find_secrets
from flask_serverside.testing import spy_on_store

log = logging.getLogger("test_log_secrets")


def _record(caplog, secret):
    with caplog.at_level(logging.DEBUG, "test_log_secrets"):
        log.info("plain line")
        try:
            try:
                raise KeyError(secret)
            except KeyError as exc:
                raise RuntimeError("wrapped") from exc
        except RuntimeError:
            log.exception("failed")
    return caplog.records


def test_a_secret_in_a_chained_traceback_is_found(caplog):
    secret = secrets.token_urlsafe(32)
    records = _record(caplog, secret)
    leaks = find_secrets(records, [secret, b"not-in-the-log", "short"])
    assert [(leak.where, leak.secret) for leak in leaks] == [("traceback", secret[:6])]
    assert secret not in str(leaks[0])  # the report itself shows no whole secret
    with pytest.raises(AssertionError, match="1 secrets in 2 log records"):
        assert_no_secrets(records, [secret])
    assert_no_secrets(records, [secrets.token_urlsafe(32)])


def test_a_secret_in_a_message_is_found(caplog):
    secret = secrets.token_hex(16)
    with caplog.at_level(logging.DEBUG, "test_log_secrets"):
        log.warning("user %s signed in", secret)
    assert [leak.where for leak in find_secrets(caplog.records, [secret.encode()])] == ["message"]


class BrokenStore(MemoryStore):
    """Fails every load while ``fail`` is set."""

    fail = False

    @classmethod
    def from_settings(cls, settings):
        return cls(key_prefix=settings.key_prefix)

    def load_and_touch(self, sid, ttl):
        if type(self).fail:
            raise StoreUnavailable("down")
        return super().load_and_touch(sid, ttl)


@pytest.fixture
def app():
    register_store("broken-for-logs", BrokenStore)
    app = Flask("log_secrets")
    app.config.update(SECRET_KEY="s", SESSION_TYPE="broken-for-logs", SESSION_BREAKER_WINDOW=0)
    Session(app)

    @app.post("/login")
    def login():
        session["_user_id"] = request.form["user"]
        session["note"] = request.form["note"]
        return "ok"

    @app.get("/me")
    def me():
        return session.get("_user_id", "anonymous")

    yield app
    BrokenStore.fail = False
    unregister_store("broken-for-logs")


def test_core_fault_paths_log_no_secret(app, caplog):
    """Failed loads (traceback and one-line forms), corrupt records and 503s."""
    user, note = f"user-{secrets.token_hex(8)}", f"note-{secrets.token_hex(8)}"
    client = app.test_client()
    client.post("/login", data={"user": user, "note": note})
    sid = client.get_cookie("session").value
    spy = spy_on_store(app, behind_guard=True)
    with caplog.at_level(logging.DEBUG):
        BrokenStore.fail = True
        assert client.get("/me").status_code == 503  # with a traceback
        assert client.get("/me").status_code == 503  # one line
        BrokenStore.fail = False
        key = get_state(app).store_key(sid)
        spy.wrapped.save(key, b'{"_user_id": "' + user.encode() + b'", "x": ', 60)  # corrupt
        assert client.get("/me").text == "anonymous"
    messages = [record.getMessage() for record in caplog.records]
    assert sum("failed to load a session" in message for message in messages) == 2
    assert caplog.records[0].exc_info is not None  # the first with its traceback
    assert any("has a corrupt record" in message for message in messages)
    assert_no_secrets(caplog.records, [sid, user, note, *spy.sids])
