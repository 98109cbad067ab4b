"""Sessions at rest: store keys are keyed hashes of the ids, records can be encrypted, and both
keys rotate without logging anyone out."""

from __future__ import annotations

import logging
import secrets

import pytest
from flask import session

from flask_serverside import CorruptRecord
from flask_serverside import get_state
from flask_serverside.codec import RecordCodec
from flask_serverside.codec import parse_key
from flask_serverside.keys import StoreKeys
from flask_serverside.keys import derive_key

KEY_A = secrets.token_bytes(32)
KEY_B = secrets.token_bytes(32)


def _with_views(app):
    @app.post("/login/<name>")
    def login(name):
        session["_user_id"] = name
        session["note"] = f"private note of {name}"
        return "ok"

    @app.post("/note/<text>")
    def note(text):
        session["note"] = text
        return "ok"

    @app.get("/me")
    def me():
        return {"user": session.get("_user_id"), "note": session.get("note")}

    return app


def _sid(client):
    return client.get_cookie("session").value


# -- store keys -------------------------------------------------------------------------------


def test_keys_are_keyed_hashes_of_the_id_in_the_id_alphabet():
    sid = secrets.token_urlsafe(32)
    keys = StoreKeys(hashing=True, keys=[KEY_A])
    key = keys.key(sid)
    assert key == keys.key(sid) and key != sid
    assert len(key) == 43 and key.replace("-", "").replace("_", "").isalnum()
    assert StoreKeys(hashing=True, keys=[KEY_B]).key(sid) != key  # keyed
    assert StoreKeys(hashing=True).key(sid) not in (key, sid)  # unkeyed SHA-256
    assert StoreKeys(hashing=False).key(sid) == sid


def test_older_keys_are_the_fallback_hashes_then_the_raw_id():
    sid = secrets.token_urlsafe(32)
    keys = StoreKeys(hashing=True, keys=[KEY_A, KEY_B])
    assert keys.older_keys(sid) == [StoreKeys(hashing=True, keys=[KEY_B]).key(sid), sid]
    assert StoreKeys(hashing=True, keys=[KEY_A], migration=False).older_keys(sid) == []
    assert StoreKeys(hashing=False).older_keys(sid) == []
    assert derive_key("secret") != derive_key("other") and len(derive_key("secret")) == 32


def test_the_store_holds_hashes_never_the_ids(make_app):
    app = _with_views(make_app())
    client = app.test_client()
    client.post("/login/alice")
    sid = _sid(client)
    state = get_state(app)
    stored = list(state.store.iter_sids())
    assert stored == [state.store_key(sid)] and sid not in stored
    assert list(state.store.user_sids("alice")) == stored
    assert client.get("/me").get_json()["user"] == "alice"


def test_rotating_the_secret_key_keeps_users_logged_in(make_app):
    app = _with_views(make_app(SECRET_KEY="old secret"))
    client = app.test_client()
    client.post("/login/alice")
    sid = _sid(client)
    state = get_state(app)
    old_key = state.store_key(sid)
    app.secret_key = "new secret"
    app.config["SECRET_KEY_FALLBACKS"] = ["old secret"]
    new_key = state.store_key(sid)
    assert new_key != old_key
    assert client.get("/me").get_json()["user"] == "alice"  # found under the old key...
    assert state.store.load(old_key) is None  # ...and moved by that first request
    assert state.store.load(new_key) is not None
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/me").get_json()["user"] == "alice"


def test_a_dedicated_hash_key_rotates_through_its_fallbacks(make_app):
    app = _with_views(make_app(SESSION_ID_HASH_KEY="first"))
    client = app.test_client()
    client.post("/login/alice")
    app.config.update(SESSION_ID_HASH_KEY="second", SESSION_ID_HASH_KEY_FALLBACKS=["first"])
    app.secret_key = "changed too, but it does not matter"
    assert client.get("/me").get_json()["user"] == "alice"
    app.config["SESSION_ID_HASH_KEY_FALLBACKS"] = []
    assert client.get("/me").get_json()["user"] == "alice"


def test_records_under_raw_ids_are_found_and_moved(make_app):
    state_app = _with_views(make_app())
    state = get_state(state_app)
    sid = state.ids.generate()
    raw = state.serializer.dumps({"_user_id": "bob", "note": "written by 0.1"})
    state.store.save(sid, raw, 60)  # as this project's 0.1 and Flask-Session key records
    client = state_app.test_client()
    client.set_cookie("session", sid)
    assert client.get("/me").get_json() == {"user": "bob", "note": "written by 0.1"}
    assert state.store.load(sid) is None
    assert state.store.load(state.store_key(sid)) is not None


def test_without_migration_raw_ids_are_not_looked_up(make_app):
    app = _with_views(make_app(SESSION_HASH_IDS_MIGRATION=False))
    state = get_state(app)
    sid = state.ids.generate()
    state.store.save(sid, state.serializer.dumps({"_user_id": "bob"}), 60)
    client = app.test_client()
    client.set_cookie("session", sid)
    assert client.get("/me").get_json()["user"] is None


# -- encryption -------------------------------------------------------------------------------


def test_sealed_records_open_only_under_their_key_and_unchanged():
    codec = RecordCodec([KEY_A])
    sealed = codec.seal("key-1", b"secret data")
    assert b"secret data" not in sealed and sealed[0] == 0xC2
    assert codec.open("key-1", sealed) == b"secret data"
    assert codec.seal("key-1", b"secret data") != sealed  # a fresh nonce each time
    with pytest.raises(CorruptRecord, match="moved from another session"):
        codec.open("key-2", sealed)
    for position in (0, 1, 6, len(sealed) - 1):
        tampered = bytearray(sealed)
        tampered[position] ^= 1
        with pytest.raises(CorruptRecord):
            codec.open("key-1", bytes(tampered))
    with pytest.raises(CorruptRecord, match="not encrypted"):
        codec.open("key-1", b"\x81\xa1a\x01")
    assert (
        RecordCodec([KEY_A], accept_plain=True).open("key-1", b"\x81\xa1a\x01") == b"\x81\xa1a\x01"
    )
    with pytest.raises(CorruptRecord, match="truncated"):
        codec.open("key-1", sealed[:20])


def test_rotation_opens_with_any_key_and_seals_with_the_first():
    old, both = RecordCodec([KEY_A]), RecordCodec([KEY_B, KEY_A])
    sealed_old = old.seal("k", b"data")
    assert both.open("k", sealed_old) == b"data"
    sealed_new = both.seal("k", b"data")
    with pytest.raises(CorruptRecord, match="key that is not configured"):
        old.open("k", sealed_new)
    assert RecordCodec([KEY_B]).open("k", sealed_new) == b"data"


def test_keys_are_parsed_from_bytes_or_base64_text():
    text = secrets.token_urlsafe(32)
    assert len(parse_key(text)) == 32 and parse_key(KEY_A) == KEY_A
    for bad in ("short", b"x" * 31, "not base64 at all !!"):
        with pytest.raises(Exception, match="SESSION_ENCRYPTION_KEY must be 32 random bytes"):
            parse_key(bad)


def test_an_encrypted_store_holds_no_plain_data(make_app):
    app = _with_views(make_app(SESSION_ENCRYPTION_KEY=secrets.token_urlsafe(32)))
    client = app.test_client()
    client.post("/login/alice")
    state = get_state(app)
    record = state.store.load(state.store_key(_sid(client)))
    assert b"private note" not in record.data and b"alice" not in record.data
    assert client.get("/me").get_json() == {"user": "alice", "note": "private note of alice"}
    client.post("/note/changed")  # the write path: change detection on the plain bytes
    assert client.get("/me").get_json()["note"] == "changed"


def test_a_record_copied_to_another_users_key_is_refused(make_app, caplog):
    app = _with_views(make_app(SESSION_ENCRYPTION_KEY=KEY_A))
    alice, mallory = app.test_client(), app.test_client()
    alice.post("/login/alice")
    mallory.post("/login/mallory")
    state = get_state(app)
    alice_record = state.store.load(state.store_key(_sid(alice)))
    state.store.save(state.store_key(_sid(mallory)), alice_record.data, 60)
    with caplog.at_level(logging.WARNING, logger="flask_serverside"):
        assert mallory.get("/me").get_json() == {"user": None, "note": None}
    assert "fails authentication" in caplog.text
    assert alice.get("/me").get_json()["user"] == "alice"


def test_rotating_the_encryption_key_keeps_users_logged_in(make_app):
    app = _with_views(make_app(SESSION_ENCRYPTION_KEY=KEY_A))
    client = app.test_client()
    client.post("/login/alice")
    rotated = _with_views(make_app(SESSION_ENCRYPTION_KEY=[KEY_B, KEY_A]))
    get_state(rotated).store.wrapped._entries = get_state(app).store.wrapped._entries
    client2 = rotated.test_client()
    client2.set_cookie("session", _sid(client))
    assert client2.get("/me").get_json()["user"] == "alice"
    client2.post("/note/resealed")  # written again: sealed with the new key
    only_new = _with_views(make_app(SESSION_ENCRYPTION_KEY=KEY_B))
    get_state(only_new).store.wrapped._entries = get_state(app).store.wrapped._entries
    client3 = only_new.test_client()
    client3.set_cookie("session", _sid(client))
    assert client3.get("/me").get_json() == {"user": "alice", "note": "resealed"}


def test_switching_encryption_on_with_the_migration_flag(make_app):
    plain = _with_views(make_app())
    client = plain.test_client()
    client.post("/login/alice")
    entries = get_state(plain).store.wrapped._entries
    for flag, user in ((False, None), (True, "alice")):
        encrypted = _with_views(
            make_app(SESSION_ENCRYPTION_KEY=KEY_A, SESSION_ENCRYPTION_MIGRATION=flag)
        )
        get_state(encrypted).store.wrapped._entries = dict(entries)
        other = encrypted.test_client()
        other.set_cookie("session", _sid(client))
        assert other.get("/me").get_json()["user"] == user


def test_conditional_saves_and_merges_work_on_sealed_records(make_app):
    app = _with_views(make_app(SESSION_ENCRYPTION_KEY=KEY_A))
    client = app.test_client()
    client.post("/login/alice")
    cookie = f"session={_sid(client)}"
    interface = app.session_interface
    with app.test_request_context("/", headers={"Cookie": cookie}) as first:
        with app.test_request_context("/", headers={"Cookie": cookie}) as second:
            first.session["theme"] = "dark"
            second.session["lang"] = "fr"
            for ctx in (first, second):
                interface.save_session(app, ctx.session, app.response_class())
    state = get_state(app)
    data = state.decode(
        state.store_key(_sid(client)), state.store.load(state.store_key(_sid(client)))
    )
    assert data["theme"] == "dark" and data["lang"] == "fr" and data["_user_id"] == "alice"
