"""Paths come from validated ids only: hostile cookies and ids never reach a path outside the
directory; the layout spreads records over two levels; odd files are never trusted."""

from __future__ import annotations

import errno
import logging
import os
import pathlib
import time
import typing as t

import pytest
from flask import Flask

import flask_serverside_filesystem._posix as posix_module
from flask_serverside import Session
from flask_serverside import StoreError
from flask_serverside.testing import new_sid
from flask_serverside_filesystem import FileSystemStore

NOT_IDS = [
    "../../etc/passwd",
    "..",
    "/etc/passwd",
    "a/../../b",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e",
    "a\x00b",
    "x" * 513,
    "",
    "A" * 42 + "/",
    "é" * 43,
    "a b",
]
#: Cookie values: none is a well-formed id of the application.
HOSTILE = [*NOT_IDS[:8], "x" * 4000, "con", "nul", "A" * 42 + "/", "é" * 43, new_sid()]


def _inside(path: str, directory: pathlib.Path) -> bool:
    return os.path.commonpath([os.path.abspath(path), str(directory)]) == str(directory)


@pytest.mark.parametrize("signed", [False, True], ids=["plain", "signed"])
def test_hostile_cookies_touch_no_path_outside_the_directory(tmp_path, spy_on_os, signed):
    directory = tmp_path / "sessions"
    secret = tmp_path / "secret"
    secret.write_text("do not touch")
    app = Flask("safety_test")
    app.config.update(SECRET_KEY="k", SESSION_FILE_DIR=str(directory), SESSION_USE_SIGNER=signed)
    Session(app)

    @app.get("/")
    def index() -> dict[str, t.Any]:
        from flask import session

        session["visits"] = session.get("visits", 0) + 1
        return {"visits": session["visits"]}

    calls = spy_on_os()
    for value in [*HOSTILE, "../secret", str(secret)]:
        client = app.test_client()
        client.set_cookie("session", value)
        assert client.get("/").get_json() == {"visits": 1}
    client = app.test_client()
    client.get("/")
    assert client.get("/").get_json() == {"visits": 2}
    paths = [path for _, paths in calls for path in paths]
    assert paths, "the spy saw the store's file operations"
    outside = [path for path in paths if not _inside(path, directory)]
    assert outside == []
    assert secret.read_text() == "do not touch"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret", "sessions"]


@pytest.mark.parametrize("sid", NOT_IDS, ids=range(len(NOT_IDS)))
def test_the_store_refuses_ids_that_are_not_ids(tmp_path, spy_on_os, sid):
    store = FileSystemStore(tmp_path)
    calls = spy_on_os()
    for call in (
        lambda: store.load(sid),
        lambda: store.load_and_touch(sid, 60),
        lambda: store.touch(sid, 60),
        lambda: store.save(sid, b"x", 60),
        lambda: store.save_if(sid, b"x", 60, expected=None),
        lambda: store.delete(sid),
    ):
        with pytest.raises(StoreError, match="not a session id"):
            call()
    assert calls == []


def test_records_are_spread_over_two_levels_of_hashed_names(tmp_path):
    store = FileSystemStore(tmp_path, threshold=0)
    sids = [new_sid() for _ in range(50)]
    for sid in sids:
        store.save(sid, b"data", 60)
    records = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"]
    assert len(records) == 50
    for record in records:
        namespace, sessions, first, second, name = record.relative_to(tmp_path).parts
        assert sessions == "sessions" and len(namespace) == 32
        assert (first, second) == (name[:2], name[2]) and len(name) == 64
        assert record.read_bytes().startswith(b"FSSN\x01")
    text = " ".join(str(p) for p in tmp_path.rglob("*"))
    assert not any(sid in text for sid in sids)  # ids are never path components


def test_a_symlink_in_place_of_a_record_is_never_followed(tmp_path):
    store = FileSystemStore(tmp_path / "sessions")
    sid = new_sid()
    store.save(sid, b"mine", 60)
    _, path = store._locate(sid)
    outside = tmp_path / "outside"
    os.replace(path, outside)  # a well-formed record of this very session, outside
    os.symlink(outside, path)
    with pytest.raises(StoreError):
        store.load(sid)
    store.save(sid, b"replaced", 60)
    assert not os.path.islink(path)
    assert store.load(sid).data == b"replaced"
    assert outside.read_bytes().endswith(b"mine")


def test_an_unreadable_record_is_a_miss_and_a_log_line(tmp_path, caplog):
    store = FileSystemStore(tmp_path)
    sid, other = new_sid(), new_sid()
    store.save(sid, b"data", 60)
    store.save(other, b"other", 60)
    _, path = store._locate(sid)
    _, other_path = store._locate(other)
    with caplog.at_level(logging.WARNING, logger="flask_serverside"):
        for content in (b"", b"FSSN", b"garbage" * 10, pathlib.Path(other_path).read_bytes()):
            pathlib.Path(path).write_bytes(content)
            os.utime(path, (0, time.time() + 60))  # not expired
            assert store.load(sid) is None
            assert store.load_and_touch(sid, 60) is None
    assert "unreadable session file" in caplog.text
    assert store.save_if(sid, b"fresh", 60, expected=None)
    assert store.load(sid).data == b"fresh"


def test_operations_outside_the_store_raise_store_error(tmp_path):
    store = FileSystemStore(tmp_path / "sessions")
    sid = new_sid()
    store.save(sid, b"data", 60)
    _, path = store._locate(sid)
    os.mkdir(path + ".tmp")  # where the next write of the session would go
    with pytest.raises(StoreError) as info:
        store.save(sid, b"new", 60)
    assert isinstance(info.value.__cause__, OSError)
    assert store.load(sid).data == b"data"


def test_records_are_exchanged_where_the_filesystem_can(tmp_path, spy_on_os):
    store = FileSystemStore(tmp_path)
    sid = new_sid()
    store.save(sid, b"first", 60)
    _, path = store._locate(sid)
    kept_open = os.open(path, os.O_RDONLY)
    try:
        calls = spy_on_os()
        store.save(sid, b"second", 60)
        names = [name for name, _ in calls]
        if posix_module.exchange is not None:
            assert "replace" not in names and "unlink" in names
        assert store.load(sid).data == b"second"
        assert os.pread(kept_open, 100, 0).endswith(b"first")  # a reader keeps its record
    finally:
        os.close(kept_open)
    assert not os.path.exists(path + ".tmp")


@pytest.mark.parametrize("error", [errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP])
def test_without_exchange_records_are_renamed_in_place(tmp_path, error):
    store = FileSystemStore(tmp_path)
    attempts = []

    def cannot(first: str, second: str) -> None:
        attempts.append(first)
        raise OSError(error, os.strerror(error))

    store._exchange = cannot
    sid = new_sid()
    for data in (b"first", b"second", b"third"):
        store.save(sid, data, 60)
        assert store.load(sid).data == data
    assert len(attempts) == 1 and store._exchange is None


def test_other_exchange_errors_fail_the_write(tmp_path):
    store = FileSystemStore(tmp_path)
    sid = new_sid()
    store.save(sid, b"first", 60)

    def broken(first: str, second: str) -> None:
        raise OSError(errno.EIO, "I/O error")

    store._exchange = broken
    with pytest.raises(StoreError):
        store.save(sid, b"second", 60)
    assert store.load(sid).data == b"first"
    _, path = store._locate(sid)
    assert not os.path.exists(path + ".tmp")


@pytest.mark.parametrize("name", ["../" * 3 + "0" * 55, "0" * 63 + "/", "0" * 63 + "G", "0" * 65])
def test_the_final_guard_refuses_any_other_path(tmp_path, name):
    store = FileSystemStore(tmp_path)
    with pytest.raises(StoreError, match="outside"):
        store._record_path(name)
