"""Moving from Flask-Session 0.8 (and back): the same configuration works, without its
deprecation warnings; its files (cachelib pickles) are read without unpickling, so its users
stay logged in; with ``SESSION_COMPAT_FLASK_SESSION`` the store writes those files itself, and
Flask-Session reads them as its own. (Both apps serving the same users in turn:
``tests/migration``.)"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import pathlib
import struct
import typing as t
import uuid

import cachelib
import flask_session
import pytest
from flask import Flask
from flask import flash
from flask import get_flashed_messages
from flask import session
from markupsafe import Markup

from flask_serverside import Session
from flask_serverside import get_state
from flask_serverside import load_legacy_pickle
from flask_serverside import revoke_user_sessions
from flask_serverside_filesystem import FileSystemStore

PREFIX = "session:"
WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
TOKEN = uuid.UUID(int=12345)


def _config(directory, **extra: t.Any) -> dict[str, t.Any]:
    return {
        "SECRET_KEY": "migration-secret",
        "SESSION_TYPE": "filesystem",
        "SESSION_FILE_DIR": str(directory),
        "SESSION_FILE_THRESHOLD": 100,
        "SESSION_FILE_MODE": 0o600,
        "SESSION_PERMANENT": True,
        "SESSION_USE_SIGNER": True,
        "SESSION_KEY_PREFIX": PREFIX,
        **extra,
    }


def _app(extension: t.Callable[[Flask], object], directory, **extra: t.Any) -> Flask:
    app = Flask("migration_test")
    app.config.update(_config(directory, **extra))
    extension(app)

    @app.post("/login/<user>")
    def login(user: str) -> dict[str, t.Any]:
        session["user"] = user
        session["_user_id"] = user
        session["cart"] = ("pear", 2)
        session["when"] = WHEN
        session["token"] = TOKEN
        flash(Markup("<b>welcome</b>"))
        return {"ok": True}

    @app.post("/add")
    def add() -> dict[str, t.Any]:
        session["extra"] = "plum"
        return {"ok": True}

    @app.post("/logout")
    def logout() -> dict[str, t.Any]:
        session.clear()
        return {"ok": True}

    @app.get("/whoami")
    def whoami() -> dict[str, t.Any]:
        return {"user": session.get("user"), "extra": session.get("extra")}

    @app.get("/exact")
    def exact() -> dict[str, t.Any]:
        flashed = get_flashed_messages()
        return {
            "cart": session.get("cart") == ("pear", 2) and type(session["cart"]) is tuple,
            "when": session.get("when") == WHEN,
            "token": session.get("token") == TOKEN and type(session["token"]) is uuid.UUID,
            "flash": [type(message).__name__ + ":" + message for message in flashed],
        }

    return app


def _flask_session_app(directory, **extra: t.Any) -> Flask:
    with pytest.warns(DeprecationWarning):
        return _app(flask_session.Session, directory, **extra)


def _cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return str(cookie.value)


def _flask_session_files(directory: pathlib.Path) -> dict[str, bytes]:
    """cachelib's session files in ``directory`` (not its count file), by name."""
    count = hashlib.sha256(b"__wz_cache_count").hexdigest()
    return {
        p.name: p.read_bytes()
        for p in directory.iterdir()
        if p.is_file() and len(p.name) == 64 and p.name != count
    }


def _cachelib_count(directory: pathlib.Path) -> int:
    raw = (directory / hashlib.sha256(b"__wz_cache_count").hexdigest()).read_bytes()
    return t.cast(int, load_legacy_pickle(raw[4:]))


def test_the_same_configuration_works_on_both(tmp_path):
    for app in (_flask_session_app(tmp_path / "old"), _app(Session, tmp_path / "new")):
        client = app.test_client()
        client.post("/login/alice")
        assert client.get("/whoami").get_json() == {"user": "alice", "extra": None}
    store = get_state(app).store
    assert (store.threshold, store.mode) == (100, 0o600)
    assert store.count() == 1


def test_flask_session_users_stay_logged_in_with_their_values(tmp_path):
    old_client = _flask_session_app(tmp_path).test_client()
    old_client.post("/login/alice")
    assert len(_flask_session_files(tmp_path)) == 1
    assert _cachelib_count(tmp_path) == 1

    client = _app(Session, tmp_path).test_client()
    client.set_cookie("session", _cookie(old_client))
    assert client.get("/whoami").get_json() == {"user": "alice", "extra": None}
    assert client.get("/exact").get_json() == {
        "cart": True,
        "when": True,
        "token": True,
        "flash": ["Markup:<b>welcome</b>"],
    }
    # The flash was taken: the session changed, and moved to this store's layout.
    assert _flask_session_files(tmp_path) == {}
    assert _cachelib_count(tmp_path) == 0
    assert client.get("/whoami").get_json() == {"user": "alice", "extra": None}
    client.post("/logout")
    assert client.get("/whoami").get_json() == {"user": None, "extra": None}


def test_a_flask_session_file_is_refreshed_in_place_and_deleted_with_its_session(tmp_path, clock):
    cache = cachelib.FileSystemCache(str(tmp_path), threshold=500)
    sid = "s" * 43
    cache.set(PREFIX + sid, {"user": "alice"}, timeout=60)
    (name,) = _flask_session_files(tmp_path)
    store = FileSystemStore(tmp_path, clock=clock)
    record = store.load_and_touch(sid, 3600)
    assert record is not None
    (expires,) = struct.unpack("I", (tmp_path / name).read_bytes()[:4])
    assert expires == int(clock.now) + 3600
    assert cache.get(PREFIX + sid) == {"user": "alice"}  # still Flask-Session's file
    clock.advance(1800)
    assert store.touch(sid, 3600)
    assert struct.unpack("I", (tmp_path / name).read_bytes()[:4])[0] == int(clock.now) + 3600
    assert store.count() == 1
    store.delete(sid)
    assert store.load(sid) is None
    assert cache.get(PREFIX + sid) is None
    assert cache.get("__wz_cache_count") == 0


def test_an_expired_flask_session_file_is_neither_read_nor_kept(tmp_path, clock):
    cache = cachelib.FileSystemCache(str(tmp_path), threshold=500)
    sid = "e" * 43
    cache.set(PREFIX + sid, {"user": "alice"}, timeout=60)
    store = FileSystemStore(tmp_path, clock=clock)
    clock.advance(120)
    assert store.load(sid) is None
    assert not store.touch(sid, 60)
    assert store.count() == 0
    assert store.purge_expired() == 1
    assert _flask_session_files(tmp_path) == {}


def test_an_old_cachelib_directory_with_md5_names_is_read(tmp_path):
    cache = cachelib.FileSystemCache(str(tmp_path), threshold=500, hash_method=hashlib.md5)
    sid = "m" * 43
    cache.set(PREFIX + sid, {"user": "alice"}, timeout=60)
    assert (tmp_path / hashlib.md5((PREFIX + sid).encode()).hexdigest()).exists()
    store = FileSystemStore(tmp_path)
    record = store.load(sid)
    assert record is not None
    assert get_state_free_loads(record.data) == {"user": "alice"}


def get_state_free_loads(data: bytes) -> dict[str, t.Any]:
    from flask_serverside.serialization import SessionSerializer

    return SessionSerializer().loads(data)


class Exploit:
    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_a_hostile_flask_session_file_never_runs(tmp_path, caplog):
    directory = tmp_path / "sessions"
    app = _app(Session, directory)
    client = app.test_client()
    sid = get_state(app).ids.generate()
    signed = get_state(app).signer().sign(sid)
    target = tmp_path / "ran"
    cache = cachelib.FileSystemCache(str(directory), threshold=500)
    cache.set(PREFIX + sid, {"user": "mallory", "x": Exploit(target)}, timeout=60)
    app = _app(Session, directory)  # starts on a directory that holds Flask-Session files
    client = app.test_client()
    client.set_cookie("session", signed)
    with caplog.at_level(logging.WARNING, logger="flask_serverside.filesystem"):
        assert client.get("/whoami").get_json() == {"user": None, "extra": None}
    assert not target.exists()
    assert "ignoring the Flask-Session file" in caplog.text
    assert "is not one sessions hold" in caplog.text
    assert sid not in caplog.text


# -- the compatibility write mode -------------------------------------------------------------


def test_in_compat_mode_flask_session_reads_what_the_store_writes(tmp_path):
    client = _app(Session, tmp_path, SESSION_COMPAT_FLASK_SESSION=True).test_client()
    client.post("/login/alice")
    (name,) = _flask_session_files(tmp_path)
    assert get_state(client.application).store.count() == 1
    cache = cachelib.FileSystemCache(str(tmp_path), threshold=0)
    sid = client.get_cookie("session").value.rsplit(".", 1)[0]
    data = cache.get(PREFIX + sid)
    assert data["user"] == "alice"
    assert data["cart"] == ("pear", 2) and type(data["cart"]) is tuple
    assert data["token"] == TOKEN and data["when"] == WHEN
    assert [type(m).__name__ for _, m in data["_flashes"]] == ["Markup"]
    assert name == hashlib.sha256((PREFIX + sid).encode()).hexdigest()

    old_client = _flask_session_app(tmp_path).test_client()
    old_client.set_cookie("session", _cookie(client))  # signed as Flask-Session signs
    assert old_client.get("/exact").get_json()["flash"] == ["Markup:<b>welcome</b>"]
    assert old_client.get("/whoami").get_json() == {"user": "alice", "extra": None}


def test_in_compat_mode_new_files_are_counted_for_cachelib(tmp_path):
    _flask_session_app(tmp_path).test_client().post("/login/alice")
    assert _cachelib_count(tmp_path) == 1
    app = _app(Session, tmp_path, SESSION_COMPAT_FLASK_SESSION=True)
    bob = app.test_client()
    bob.post("/login/bob")
    assert _cachelib_count(tmp_path) == 2
    bob.post("/add")  # an overwrite: not counted again
    assert _cachelib_count(tmp_path) == 2
    bob.post("/logout")
    assert _cachelib_count(tmp_path) == 1
    assert len(_flask_session_files(tmp_path)) == 1


def test_in_compat_mode_a_record_of_this_store_is_rewritten_for_flask_session(tmp_path):
    ours = _app(Session, tmp_path).test_client()
    ours.post("/login/alice")
    assert _flask_session_files(tmp_path) == {}
    compat = _app(Session, tmp_path, SESSION_COMPAT_FLASK_SESSION=True).test_client()
    compat.set_cookie("session", _cookie(ours))
    assert compat.get("/whoami").get_json() == {"user": "alice", "extra": None}
    assert len(_flask_session_files(tmp_path)) == 1
    store = get_state(compat.application).store
    assert sum(1 for _ in store.wrapped._records()) == 0  # nothing left in its own layout
    old = _flask_session_app(tmp_path).test_client()
    old.set_cookie("session", _cookie(compat))  # re-signed as Flask-Session signs
    assert old.get("/whoami").get_json() == {"user": "alice", "extra": None}


def test_in_compat_mode_saves_stay_conditional_between_this_stores_writers(tmp_path):
    store = FileSystemStore(tmp_path, compat=True)
    from flask_serverside.serialization import SessionSerializer

    serializer = SessionSerializer()
    sid = "c" * 43
    assert store.save_if(sid, serializer.dumps({"n": 1}), 60, expected=None)
    assert not store.save_if(sid, serializer.dumps({"n": 9}), 60, expected=None)
    first = store.load(sid)
    assert first is not None and first.version.startswith(b"cachelib:")
    assert store.save_if(sid, serializer.dumps({"n": 2}), 60, expected=first)
    assert not store.save_if(sid, serializer.dumps({"n": 3}), 60, expected=first)
    # A write by Flask-Session itself changes the version too.
    cachelib.FileSystemCache(str(tmp_path), threshold=0).set(PREFIX + sid, {"n": 4}, 60)
    second = store.load(sid)
    assert second is not None
    assert serializer.loads(second.data) == {"n": 4}
    store.touch(sid, 120)
    assert store.load(sid) == second  # a refresh is not a change
    assert store.save_if(sid, serializer.dumps({"n": 5}), 60, expected=second)


def test_in_compat_mode_log_out_everywhere_finds_flask_session_files(tmp_path):
    app = _app(Session, tmp_path, SESSION_COMPAT_FLASK_SESSION=True)
    devices = [app.test_client() for _ in range(2)]
    for device in devices:
        device.post("/login/alice")
    assert len(_flask_session_files(tmp_path)) == 2
    with app.app_context():
        assert revoke_user_sessions("alice") == 2
    assert _flask_session_files(tmp_path) == {}
    for device in devices:
        assert device.get("/whoami").get_json() == {"user": None, "extra": None}
