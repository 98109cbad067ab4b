"""Purging, the threshold, the user index, the CLI, and expiry on the real clock."""

from __future__ import annotations

import os
import time
import typing as t

import pytest
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside import get_state
from flask_serverside.cli import session_cli
from flask_serverside.testing import new_sid
from flask_serverside.testing import spy_on_store
from flask_serverside_filesystem import FileSystemStore


@pytest.fixture
def store(tmp_path, clock):
    return FileSystemStore(tmp_path, clock=clock, threshold=0)


def test_expiry_on_the_real_clock(tmp_path):
    store = FileSystemStore(tmp_path)
    expiring, touched, loaded = new_sid(), new_sid(), new_sid()
    for sid in (expiring, touched, loaded):
        store.save(sid, b"data", 1)
    assert store.touch(touched, 60)
    assert store.load_and_touch(loaded, 60) is not None
    time.sleep(1.1)
    assert store.load(expiring) is None
    assert store.touch(expiring, 60) is False  # an expired record is not brought back
    assert store.load(touched) is not None and store.load(loaded) is not None
    assert store.count() == 2
    assert store.purge_expired() == 1


def test_refreshing_keeps_the_version(store):
    sid = new_sid()
    store.save(sid, b"data", 60)
    loaded = store.load(sid)
    assert store.touch(sid, 600)
    assert store.load_and_touch(sid, 600) == loaded
    assert store.save_if(sid, b"new", 60, expected=loaded)


def test_purge_keeps_live_records_and_refreshed_ones(store, clock):
    old, refreshed, live = new_sid(), new_sid(), new_sid()
    store.save(old, b"old", 10)
    store.save(refreshed, b"refreshed", 10)
    store.save(live, b"live", 600)
    clock.advance(5)
    store.touch(refreshed, 10)
    clock.advance(6)
    assert store.purge_expired() == 1
    assert store.load(old) is None
    assert store.load(refreshed) is not None and store.load(live) is not None
    assert store.count() == 2


def _threshold_store(tmp_path, clock, threshold):
    return FileSystemStore(tmp_path, clock=clock, threshold=threshold)


def test_over_the_threshold_expired_records_go_first(tmp_path, clock):
    store = _threshold_store(tmp_path, clock, 10)
    expired = [new_sid() for _ in range(8)]
    for sid in expired:
        store.save(sid, b"short", 5)
    clock.advance(10)
    live = [new_sid() for _ in range(5)]
    for number, sid in enumerate(live):
        store.save(sid, b"long", 600 + number)
    # 13 records, 3 over: every expired one goes, and no live one
    assert store.count() == 5
    assert all(store.load(sid) is not None for sid in live)
    assert sum(1 for _ in store._records()) == 5


def test_over_the_threshold_live_records_closest_to_expiry_go(tmp_path, clock, caplog):
    store = _threshold_store(tmp_path, clock, 10)
    ttls = {new_sid(): 600 + (number * 7) % 13 for number in range(13)}  # distinct, shuffled
    for sid, ttl in list(ttls.items())[:10]:
        store.save(sid, b"data", ttl)
    assert store.count() == 10
    for sid, ttl in list(ttls.items())[10:]:
        store.save(sid, b"data", ttl)
    kept = {sid for sid in ttls if store.load(sid) is not None}
    assert kept == set(sorted(ttls, key=ttls.__getitem__)[3:])
    assert "evicted" in caplog.text and "SESSION_FILE_THRESHOLD" in caplog.text


def test_the_threshold_is_checked_every_tenth_of_it(tmp_path, clock, monkeypatch):
    store = _threshold_store(tmp_path, clock, 100)
    checks = []
    monkeypatch.setattr(store, "_enforce_threshold", lambda: checks.append(1))
    for _ in range(25):
        store.save(new_sid(), b"data", 60)
    assert len(checks) == 2
    unlimited = _threshold_store(tmp_path, clock, 0)
    monkeypatch.setattr(unlimited, "_enforce_threshold", lambda: checks.append(1))
    for _ in range(25):
        unlimited.save(new_sid(), b"data", 60)
    assert len(checks) == 2


def test_the_user_index_cleans_itself(store, clock):
    moved, deleted, expired, kept = new_sid(), new_sid(), new_sid(), new_sid()
    for sid in (moved, deleted, kept):
        store.save(sid, b"data", 600, user_id="alice")
    store.save(expired, b"data", 5, user_id="alice")
    store.save(moved, b"data", 600, user_id="bob")
    store.delete(deleted)
    clock.advance(10)
    markers = os.path.dirname(store._marker_path("alice", "0" * 64))
    assert len(os.listdir(markers)) == 4
    assert store.user_sids("alice") == [kept]
    assert len(os.listdir(markers)) == 1  # the others were dropped on the way
    assert store.user_sids("bob") == [moved]


def test_purge_drops_index_entries_and_empty_user_directories(store, clock):
    sid = new_sid()
    store.save(sid, b"data", 5, user_id="carol")
    clock.advance(10)
    markers = os.path.dirname(store._marker_path("carol", "0" * 64))
    assert os.path.isdir(markers)
    assert store.purge_expired() == 1
    assert not os.path.exists(markers)
    store.save(sid, b"data", 60, user_id="carol")  # the directory comes back when needed
    assert store.user_sids("carol") == [sid]


def _app(tmp_path, **config: t.Any) -> Flask:
    app = Flask("maintenance_test")
    app.config.update(SECRET_KEY="k", SESSION_FILE_DIR=str(tmp_path), **config)
    Session(app)

    @app.post("/login/<user>")
    def login(user: str) -> dict[str, t.Any]:
        session["_user_id"] = user
        return {"ok": True}

    @app.get("/whoami")
    def whoami() -> dict[str, t.Any]:
        return {"user": session.get("_user_id")}

    return app


def test_log_out_everywhere(tmp_path):
    app = _app(tmp_path)
    alice = [app.test_client() for _ in range(3)]
    for client in alice:
        client.post("/login/alice")
    bob = app.test_client()
    bob.post("/login/bob")
    assert get_state(app).revoke_user("alice") == 3
    assert all(client.get("/whoami").get_json() == {"user": None} for client in alice)
    assert bob.get("/whoami").get_json() == {"user": "bob"}


def test_the_cli_counts_lists_and_purges(tmp_path, clock):
    app = _app(tmp_path, PERMANENT_SESSION_LIFETIME=60)
    store = get_state(app).store
    store._clock = clock
    client = app.test_client()
    client.post("/login/alice")
    runner = app.test_cli_runner()
    assert runner.invoke(session_cli, ["count"]).output.strip() == "1"
    sid = runner.invoke(session_cli, ["list", "--full"]).output.strip()
    assert store.load(sid) is not None
    clock.advance(61)
    assert runner.invoke(session_cli, ["purge"]).output.strip() == "purged 1 expired sessions"
    assert runner.invoke(session_cli, ["count"]).output.strip() == "0"


def test_cleanup_every_n_requests_purges(tmp_path):
    app = _app(tmp_path, SESSION_CLEANUP_N_REQUESTS=3)
    spy = spy_on_store(app)
    client = app.test_client()
    for _ in range(7):
        client.get("/whoami")
    assert spy.calls["purge_expired"] == 2


def test_eviction_spares_a_record_refreshed_or_replaced_since_the_scan(store, clock):
    touched, replaced = new_sid(), new_sid()
    store.save(touched, b"data", 60)
    store.save(replaced, b"data", 60)
    seen = {path: (bucket, st) for bucket, path, st in store._records()}
    clock.advance(1)
    store.touch(touched, 60)
    store.save(replaced, b"new", 60)
    for path, (bucket, st) in seen.items():
        assert store._unlink_unchanged(bucket, path, st) is False
    assert store.count() == 2


def test_a_long_user_id_is_indexed(store):
    sid = new_sid()
    user = "ü" * 5000
    store.save(sid, b"data", 60, user_id=user)
    assert store.user_sids(user) == [sid]
    assert list(store.iter_sids()) == [sid]
    loaded = store.load(sid)
    assert store.save_if(sid, b"new", 60, expected=loaded, user_id=user)


def test_a_failed_threshold_check_does_not_fail_the_write(tmp_path, clock, caplog, monkeypatch):
    store = FileSystemStore(tmp_path, clock=clock, threshold=1)

    def fail() -> None:
        raise PermissionError("denied")

    monkeypatch.setattr(store, "_enforce_threshold", fail)
    sid = new_sid()
    store.save(sid, b"data", 60)
    assert store.load(sid).data == b"data"
    assert "could not enforce SESSION_FILE_THRESHOLD" in caplog.text
