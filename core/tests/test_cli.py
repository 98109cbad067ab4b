"""The ``flask session`` command group, and ``flask session_cleanup``."""

from __future__ import annotations

import base64
import datetime
import json
import uuid

import pytest
from flask import session
from markupsafe import Markup

from flask_serverside import get_state
from flask_serverside.cli import session_cli


@pytest.fixture
def app(make_app):
    return _with_views(make_app())


def _with_views(app):
    @app.post("/login/<name>")
    def login(name):
        session["_user_id"] = name
        session["greeting"] = ("hello", name)
        return "ok"

    @app.post("/typed")
    def typed():
        session["raw"] = b"\x00bytes\xff"
        session["pair"] = (1, "two")
        session["markup"] = Markup("<b>bold</b>")
        session["when"] = datetime.datetime(2026, 12, 1, 12, 30, tzinfo=datetime.timezone.utc)
        session["uuid"] = uuid.UUID(int=7)
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
    line = next(line for line in result.output.splitlines() if line.startswith("memory "))
    assert "flask-serverside 0.1.0" in line
    assert "conditional_save" in result.output


def test_count_list_show_delete(app, flask_cli):
    alice, bob = _login(app, "alice", "bob")
    key = get_state(app).store_key
    assert flask_cli(app, "session", "count").output.strip() == "2"
    listed = flask_cli(app, "session", "list", "--full").output.split()
    assert sorted(listed) == sorted([key(alice), key(bob)])  # store keys: not the ids
    assert alice not in listed and bob not in listed
    assert len(flask_cli(app, "session", "list", "--full", "--limit", "1").output.split()) == 1
    shown = flask_cli(app, "session", "show", alice)
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["_user_id"] == "alice"
    assert "took it as a session id" in shown.stderr
    by_key = flask_cli(app, "session", "show", key(bob))
    assert by_key.exit_code == 0 and "took it as a store key" in by_key.stderr
    deleted = flask_cli(app, "session", "delete", alice)
    assert deleted.exit_code == 0
    assert deleted.stdout.strip() == f"deleted session {key(alice)[:6]}…"
    assert flask_cli(app, "session", "count").output.strip() == "1"
    missing = flask_cli(app, "session", "show", alice)
    assert missing.exit_code == 1 and "no such session" in missing.output


def test_list_shortens_ids_unless_full(make_app, flask_cli):
    app = _with_views(make_app(SESSION_HASH_IDS=False))  # keys are the ids: bearer tokens
    alice, bob = _login(app, "alice", "bob")
    result = flask_cli(app, "session", "list")
    assert result.exit_code == 0
    assert sorted(result.output.split()) == sorted([alice[:6] + "…", bob[:6] + "…"])
    assert alice not in result.output and bob not in result.output
    assert sorted(flask_cli(app, "session", "list", "--full").output.split()) == sorted(
        [alice, bob]
    )


def test_show_prints_json_with_bytes_as_base64(app, flask_cli):
    client = app.test_client()
    client.post("/typed")
    result = flask_cli(app, "session", "show", client.get_cookie("session").value)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert base64.b64decode(data["raw"]) == b"\x00bytes\xff"
    assert data["pair"] == [1, "two"]
    assert data["markup"] == "<b>bold</b>"
    assert data["when"] == "2026-12-01T12:30:00+00:00"
    assert data["uuid"] == str(uuid.UUID(int=7))
    assert "b'" not in result.stdout


def test_show_raw_writes_the_records_bytes(app, flask_cli):
    client = app.test_client()
    client.post("/typed")
    sid = client.get_cookie("session").value
    result = flask_cli(app, "session", "show", "--raw", sid)
    assert result.exit_code == 0
    state = get_state(app)
    assert result.stdout_bytes == state.store.load(state.store_key(sid)).data


@pytest.fixture
def signed_app(make_app):
    return _with_views(make_app(SESSION_USE_SIGNER=True))


def test_show_and_delete_take_the_signed_cookie_value(signed_app, flask_cli):
    client = signed_app.test_client()
    client.post("/login/alice")
    cookie = client.get_cookie("session").value
    sid = cookie.rpartition(".")[0]
    shown = flask_cli(signed_app, "session", "show", cookie)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["_user_id"] == "alice"
    assert f"checked the cookie's signature: session {sid[:6]}…" in shown.stderr
    assert sid not in shown.output
    assert flask_cli(signed_app, "session", "show", sid).exit_code == 0  # the bare id too
    assert flask_cli(signed_app, "session", "delete", cookie).exit_code == 0
    state = get_state(signed_app)
    assert state.store.load(state.store_key(sid)) is None


def test_a_tampered_signature_is_explained(signed_app, flask_cli):
    client = signed_app.test_client()
    client.post("/login/alice")
    cookie = client.get_cookie("session").value
    sid, _, signature = cookie.rpartition(".")
    forged = f"{sid}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    result = flask_cli(signed_app, "session", "show", forged)
    assert result.exit_code == 1
    assert "signature does not match this application's SECRET_KEY" in result.output
    assert sid not in result.output


def test_a_signed_value_on_an_app_that_does_not_sign_is_explained(app, flask_cli):
    (sid,) = _login(app, "alice")
    result = flask_cli(app, "session", "show", f"{sid}.c2lnbmF0dXJl")
    assert result.exit_code == 1
    assert "does not sign session ids (SESSION_USE_SIGNER is off)" in result.output
    assert "the part before the '.'" in result.output


def test_show_takes_a_store_key(make_app, flask_cli):
    app = _with_views(make_app(SESSION_KEY_PREFIX="myapp:"))
    (sid,) = _login(app, "alice")
    key = get_state(app).store_key(sid)
    result = flask_cli(app, "session", "show", f"myapp:{key}")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["_user_id"] == "alice"
    assert f"took it as a store key: store key {key[:6]}…" in result.stderr
    other = flask_cli(app, "session", "show", f"session:{key}")
    assert other.exit_code == 1
    assert "not with this application's key prefix 'myapp:'" in other.output


def test_a_shortened_id_is_explained(app, flask_cli):
    (sid,) = _login(app, "alice")
    result = flask_cli(app, "session", "show", sid[:6] + "…")
    assert result.exit_code == 1
    assert "it is shortened" in result.output and "list --full" in result.output


def test_malformed_ids_are_refused_saying_what_to_pass(app, flask_cli):
    result = flask_cli(app, "session", "show", "../../etc/passwd")
    assert result.exit_code == 1
    assert "that is not a session id: it is not 43 characters of [A-Za-z0-9_-]" in result.output
    assert (
        "the session cookie's value, or a store key as `flask session list --full`" in result.output
    )
    assert "passwd" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_delete_of_a_missing_session_fails(app, flask_cli):
    sid = get_state(app).ids.generate()
    result = flask_cli(app, "session", "delete", sid)
    assert result.exit_code == 1
    assert "no such session (or it has expired): nothing deleted" in result.output


def test_ids_starting_with_a_dash_are_ids_not_options(app, flask_cli):
    state = get_state(app)
    sid = "-" + state.ids.generate()[1:]
    state.store.save(sid, state.serializer.dumps({"_user_id": "-dash"}), 60, user_id="-dash")
    shown = flask_cli(app, "session", "show", sid)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["_user_id"] == "-dash"
    assert flask_cli(app, "session", "delete-user", "-dash").output.startswith("deleted 1")
    state.store.save(sid, b"{}", 60)
    assert flask_cli(app, "session", "delete", sid).exit_code == 0
    assert state.store.load(sid) is None


def test_delete_user_and_purge(app, flask_cli):
    _login(app, "alice", "alice", "bob")
    result = flask_cli(app, "session", "delete-user", "alice")
    assert result.exit_code == 0 and "deleted 2 sessions" in result.output
    assert flask_cli(app, "session", "count").output.strip() == "1"
    store = get_state(app).store
    store.save("x" * 43, b"{}", 1)
    store.wrapped._clock = lambda: 1e12
    result = flask_cli(app, "session", "purge")
    assert result.exit_code == 0 and "purged 2 expired sessions" in result.output


def test_session_cleanup_is_flask_sessions_name_for_purge(app, flask_cli):
    """``flask session_cleanup``, found through the ``flask.commands`` entry point."""
    store = get_state(app).store
    store.save("y" * 43, b"{}", 1)
    store.wrapped._clock = lambda: 1e12
    result = flask_cli(app, "session_cleanup")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "purged 1 expired sessions"
    assert store.load("y" * 43) is None


def test_check_reports_the_store_its_capabilities_and_a_round_trip(app, flask_cli):
    result = flask_cli(app, "session", "check")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "store: memory (flask_serverside.MemoryStore)"
    assert lines[1].startswith("capabilities: touch, load_and_touch, conditional_save")
    assert lines[2].startswith("round trip: ") and " ms for the first load" in lines[2]
    assert lines[-1] == "ok"
    assert flask_cli(app, "session", "count").output.strip() == "0"  # it stored nothing


def test_capability_errors_are_clear(app, flask_cli):
    state = get_state(app)
    state.store.capabilities = type(state.store.capabilities).NONE
    result = flask_cli(app, "session", "count")
    assert result.exit_code == 1 and "lacks the enumerate capability" in result.output
    result = flask_cli(app, "session", "delete-user", "alice")
    assert result.exit_code == 1 and "keeps no index of sessions by user" in result.output
    result = flask_cli(app, "session", "purge")
    assert result.exit_code == 0 and "nothing to purge" in result.output


def test_the_group_runs_without_the_flask_command_too(app):
    result = app.test_cli_runner().invoke(session_cli, ["count"])
    assert result.exit_code == 0 and result.output.strip() == "0"
