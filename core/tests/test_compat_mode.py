"""The compatibility write mode (``SESSION_COMPAT_FLASK_SESSION``) on the memory store: the core
writes Flask-Session 0.8's encoding and signatures, deletes on regeneration, re-encodes records
written before the mode was on, and hands the setting to the store. (The real Flask-Session
against every real store: ``tests/migration``.)"""

from __future__ import annotations

import datetime
import uuid

import msgspec
import pytest
from flask import session
from itsdangerous import Signer
from markupsafe import Markup

from flask_serverside import ConfigurationError
from flask_serverside import MemoryStore
from flask_serverside import StorePluginError
from flask_serverside import get_state
from flask_serverside import register_store
from flask_serverside import unregister_store
from flask_serverside.serialization import SessionSerializer
from flask_serverside.signing import SidSigner
from flask_serverside.writer import FORWARD_PREFIX

UTC = datetime.timezone.utc

#: What Flask-Session 0.8's MsgSpecSerializer.encode does: ``encoder.encode(dict(session))``.
FLASK_SESSION_ENCODERS = {"msgpack": msgspec.msgpack.Encoder(), "json": msgspec.json.Encoder()}

DATA = {
    "_permanent": True,
    "user": "alice",
    "cart": ("pear", 2),
    "avatar": b"\x00\xff",
    "when": datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    "naive": datetime.datetime(2026, 1, 2),
    "id": uuid.UUID(int=1),
    "seen": {1},
    "nested": {"a": [1, 2.5, None, True]},
}


def _routes(app):
    @app.post("/login")
    def login():
        session["user"] = "alice"
        session["cart"] = ("pear", 2)
        session.regenerate()
        return {"ok": True}

    @app.post("/markup")
    def markup():
        session["note"] = Markup("<b>x</b>")
        return {"ok": True}

    @app.get("/read")
    def read():
        return {"user": session.get("user"), "cart": session.get("cart")}

    return app


def _sid(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value.rsplit(".", 1)[0] if "." in cookie.value else cookie.value


@pytest.mark.parametrize("format", ["msgpack", "json"])
def test_the_serializer_writes_flask_sessions_bytes(format):
    serializer = SessionSerializer(format, compat=True)
    assert serializer.compat
    assert serializer.dumps(DATA) == FLASK_SESSION_ENCODERS[format].encode(dict(DATA))
    assert SessionSerializer(format).dumps(DATA) != serializer.dumps(DATA)  # tags otherwise
    loaded = serializer.loads(serializer.dumps(DATA))
    assert loaded["cart"] == ["pear", 2] and loaded["user"] == "alice"


def test_the_serializer_refuses_what_flask_session_cannot_store():
    with pytest.raises(TypeError, match="SESSION_COMPAT_FLASK_SESSION"):
        SessionSerializer(compat=True).dumps({"flash": Markup("<b>x</b>")})


def test_the_signer_signs_as_flask_session_and_reads_both():
    sid = "s" * 43
    flask_session = Signer("secret", salt="flask-session", key_derivation="hmac")
    legacy = SidSigner(["secret"], legacy=True)
    assert legacy.sign(sid) == flask_session.sign(sid).decode()
    ours = SidSigner(["secret"])
    assert ours.sign(sid) != legacy.sign(sid)
    assert legacy.unsign(ours.sign(sid)) == sid
    assert ours.unsign(legacy.sign(sid)) == sid


@pytest.mark.parametrize("value", ["yes", 1, None.__class__])
def test_the_key_takes_a_bool(make_app, value):
    with pytest.raises(ConfigurationError, match="SESSION_COMPAT_FLASK_SESSION must be True"):
        make_app(SESSION_COMPAT_FLASK_SESSION=value)


def test_the_mode_reaches_the_store_and_is_off_by_default(make_app):
    seen = []

    class Recording(MemoryStore):
        @classmethod
        def from_settings(cls, settings):
            seen.append(settings.compat_flask_session)
            return super().from_settings(settings)

    register_store("recording", Recording)
    try:
        off = make_app(SESSION_TYPE="recording")
        on = make_app(SESSION_TYPE="recording", SESSION_COMPAT_FLASK_SESSION=True)
    finally:
        unregister_store("recording")
    assert seen == [False, True]
    assert not get_state(off).serializer.compat
    assert get_state(on).serializer.compat


def test_a_store_that_pickles_gets_the_cores_own_records(make_app):
    class Pickling(MemoryStore):
        flask_session_encoding = "pickle"

    register_store("pickling", Pickling)
    try:
        app = make_app(SESSION_TYPE="pickling", SESSION_COMPAT_FLASK_SESSION=True)
    finally:
        unregister_store("pickling")
    assert not get_state(app).serializer.compat
    assert get_state(app).signer() is None


def test_an_unknown_encoding_is_refused():
    class Odd(MemoryStore):
        flask_session_encoding = "yaml"

    with pytest.raises(StorePluginError, match="flask_session_encoding"):
        register_store("odd", Odd)


@pytest.mark.parametrize("compat", [False, True])
def test_regeneration_leaves_no_forward_in_compat_mode(make_app, compat):
    app = _routes(make_app(SESSION_COMPAT_FLASK_SESSION=compat))
    client = app.test_client()
    client.post("/markup" if not compat else "/login")  # a first session
    first = _sid(client)
    client.post("/login")
    second = _sid(client)
    assert second != first
    state = get_state(app)
    old = state.store.load(state.store_key(first))
    if compat:
        assert old is None  # deleted, as Flask-Session deletes it
    else:
        assert old is not None and old.data.startswith(FORWARD_PREFIX)
    record = state.store.load(state.store_key(second))
    assert record is not None
    if compat:
        assert record.data == FLASK_SESSION_ENCODERS["msgpack"].encode(
            {"_permanent": True, "user": "alice", "cart": ["pear", 2]}
        )


def test_cookies_are_signed_as_flask_session_signs(make_app):
    app = _routes(make_app(SESSION_USE_SIGNER=True, SESSION_COMPAT_FLASK_SESSION=True))
    client = app.test_client()
    client.post("/login")
    value = client.get_cookie("session").value
    flask_session = Signer(app.secret_key, salt="flask-session", key_derivation="hmac")
    assert flask_session.unsign(value).decode() == _sid(client)


def test_a_record_of_the_cores_own_encoding_is_rewritten_by_a_read(make_app):
    entries: dict = {}

    class Shared(MemoryStore):
        @classmethod
        def from_settings(cls, settings):
            return cls(key_prefix=settings.key_prefix, entries=entries)

    register_store("shared", Shared)
    try:
        before = _routes(make_app(SESSION_TYPE="shared"))
        after = _routes(make_app(SESSION_TYPE="shared", SESSION_COMPAT_FLASK_SESSION=True))
    finally:
        unregister_store("shared")
    client = before.test_client()
    client.post("/login")
    sid = _sid(client)
    hashed = get_state(before).store_key(sid)
    assert hashed != sid  # SESSION_HASH_IDS, the default outside the mode
    tagged = get_state(before).store.load(hashed).data
    assert b" t" in tagged  # the tuple, tagged
    compat_client = after.test_client()
    compat_client.set_cookie("session", sid)
    assert compat_client.get("/read").get_json() == {"user": "alice", "cart": ["pear", 2]}
    assert get_state(after).store_key(sid) == sid  # Flask-Session finds records by id
    assert get_state(after).store.load(hashed) is None  # moved to its id
    rewritten = get_state(after).store.load(sid).data
    assert rewritten == FLASK_SESSION_ENCODERS["msgpack"].encode(
        {"_permanent": True, "user": "alice", "cart": ["pear", 2]}
    )
    version = get_state(after).store.load(sid).version
    compat_client.get("/read")  # already in Flask-Session's encoding: not written again
    assert get_state(after).store.load(sid).version == version

    # A value Flask-Session cannot hold, saved before the mode was on: left as it is.
    client.post("/markup")
    kept = get_state(before).store.load(hashed)
    assert compat_client.get("/read").status_code == 200
    moved = get_state(after).store.load(sid)
    assert moved is not None and moved.data == kept.data  # moved to its id, not re-encoded


@pytest.mark.parametrize("compat", [False, True])
def test_a_cookie_signed_the_other_way_is_signed_again_by_a_read(make_app, compat):
    """Without refreshing cookies on every request: one signed by Flask-Session is signed
    again with ours, and in the compatibility write mode ours with Flask-Session's."""
    app = _routes(
        make_app(
            SESSION_USE_SIGNER=True,
            SESSION_REFRESH_EACH_REQUEST=False,
            SESSION_COMPAT_FLASK_SESSION=compat,
        )
    )
    client = app.test_client()
    client.post("/login")
    sid = _sid(client)
    flask_session = Signer(app.secret_key, salt="flask-session", key_derivation="hmac")
    ours = SidSigner([app.secret_key])
    other = ours.sign(sid) if compat else flask_session.sign(sid).decode()
    client.set_cookie("session", other)
    response = client.get("/read")
    assert response.get_json()["user"] == "alice"
    expected = flask_session.sign(sid).decode() if compat else ours.sign(sid)
    assert client.get_cookie("session").value == expected
    assert "session=" in response.headers["Set-Cookie"]
    assert "Set-Cookie" not in client.get("/read").headers  # signed as it should be now


def test_flask_session_rewrite_re_encodes_every_session_for_a_rollback(make_app, flask_cli):
    entries: dict = {}

    class Shared(MemoryStore):
        @classmethod
        def from_settings(cls, settings):
            return cls(key_prefix=settings.key_prefix, entries=entries)

    register_store("shared", Shared)
    try:
        # Raw ids: a record under a hashed key stays there (moved to its id by a request).
        before = _routes(make_app(SESSION_TYPE="shared", SESSION_HASH_IDS=False))
        after = make_app(
            SESSION_TYPE="shared", SESSION_HASH_IDS=False, SESSION_COMPAT_FLASK_SESSION=True
        )
    finally:
        unregister_store("shared")
    sids = []
    for _ in range(3):
        client = before.test_client()
        client.post("/login")
        sids.append(_sid(client))
    marked = before.test_client()
    marked.post("/markup")
    sids.append(_sid(marked))
    result = flask_cli(after, "session", "rewrite")
    assert result.exit_code == 0, result.output
    assert "checked 4 sessions, re-encoded 3" in result.output
    assert "Flask-Session 0.8's layout" in result.output
    store = get_state(after).store
    for sid in sids[:3]:
        assert store.load(sid).data == FLASK_SESSION_ENCODERS["msgpack"].encode(
            {"_permanent": True, "user": "alice", "cart": ["pear", 2]}
        )
    assert b" m" in store.load(sids[3]).data  # its Markup: Flask-Session could not store it
    again = flask_cli(after, "session", "rewrite")
    assert "re-encoded 0" in again.output


def test_encryption_is_refused_in_compat_mode(make_app):
    key = "k" * 43  # 32 bytes in URL-safe base64
    with pytest.raises(ConfigurationError, match="cannot read encrypted ones"):
        make_app(SESSION_COMPAT_FLASK_SESSION=True, SESSION_ENCRYPTION_KEY=key)


def test_compat_mode_stores_under_raw_ids_and_finds_hashed_ones(make_app):
    app = make_app(SESSION_COMPAT_FLASK_SESSION=True)
    keys = get_state(app).keys()
    sid = "i" * 43
    assert keys.key(sid) == sid
    hashed = make_app().extensions["serverside"].store_key(sid)
    assert hashed != sid and keys.older_keys(sid) == [hashed]
    unhashed = make_app(SESSION_COMPAT_FLASK_SESSION=True, SESSION_HASH_IDS=False)
    assert get_state(unhashed).keys().older_keys(sid) == []
