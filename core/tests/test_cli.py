"""The ``flask session`` command group."""

from __future__ import annotations

import json

import pytest
from flask import session

from flask_serverside import get_state


@pytest.fixture
def app(make_app):
    app = make_app()

    @app.post("/login/<name>")
    def login(name):
        session["_user_id"] = name
        session["greeting"] = ("hello", name)
        return "ok"

    return app


def _login(app, *names):
    sids = []
    for name in names:
        client = app.test_client()
        client.post(f"/login/{name}")
        sids.append(client.get_cookie("session").value)
    return sids


def test_stores_lists_the_memory_store(app, flask_cli):
    result = flask_cli(app, "session", "stores")
    assert result.exit_code == 0, result.output
    assert "memory" in result.output and "flask-serverside 0.1.0" in result.output
    assert "conditional_save" in result.output


def test_count_list_show_delete(app, flask_cli):
    alice, bob = _login(app, "alice", "bob")
    assert flask_cli(app, "session", "count").output.strip() == "2"
    listed = flask_cli(app, "session", "list").output.split()
    assert sorted(listed) == sorted([alice, bob])
    assert len(flask_cli(app, "session", "list", "--limit", "1").output.split()) == 1
    shown = flask_cli(app, "session", "show", alice)
    assert shown.exit_code == 0
    assert json.loads(shown.output)["_user_id"] == "alice"
    assert flask_cli(app, "session", "delete", alice).exit_code == 0
    assert flask_cli(app, "session", "count").output.strip() == "1"
    missing = flask_cli(app, "session", "show", alice)
    assert missing.exit_code == 1 and "no such session" in missing.output


def test_ids_starting_with_a_dash_are_ids_not_options(app, flask_cli):
    state = get_state(app)
    sid = "-" + state.ids.generate()[1:]
    state.store.save(sid, state.serializer.dumps({"_user_id": "-dash"}), 60, user_id="-dash")
    shown = flask_cli(app, "session", "show", sid)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["_user_id"] == "-dash"
    assert flask_cli(app, "session", "delete-user", "-dash").output.startswith("deleted 1")
    state.store.save(sid, b"{}", 60)
    assert flask_cli(app, "session", "delete", sid).exit_code == 0
    assert state.store.load(sid) is None


def test_malformed_ids_are_refused(app, flask_cli):
    result = flask_cli(app, "session", "show", "../../etc/passwd")
    assert result.exit_code == 1 and "not a well-formed session id" in result.output


def test_delete_user_and_purge(app, flask_cli, clock=None):
    _login(app, "alice", "alice", "bob")
    result = flask_cli(app, "session", "delete-user", "alice")
    assert result.exit_code == 0 and "deleted 2 sessions" in result.output
    assert flask_cli(app, "session", "count").output.strip() == "1"
    store = get_state(app).store
    store.save("x" * 43, b"{}", 1)
    store.wrapped._clock = lambda: 1e12
    result = flask_cli(app, "session", "purge")
    assert result.exit_code == 0 and "purged 2 expired sessions" in result.output


def test_capability_errors_are_clear(app, flask_cli):
    state = get_state(app)
    state.store.capabilities = type(state.store.capabilities).NONE
    result = flask_cli(app, "session", "count")
    assert result.exit_code == 1 and "lacks the enumerate capability" in result.output
    result = flask_cli(app, "session", "delete-user", "alice")
    assert result.exit_code == 1 and "keeps no index of sessions by user" in result.output
    result = flask_cli(app, "session", "purge")
    assert result.exit_code == 0 and "nothing to purge" in result.output
