"""Per-session operations cost a fixed number of filesystem calls, whatever the number of
sessions, and no directory grows into a huge flat list. (Timings are in the benchmark.)"""

from __future__ import annotations

import collections
import hashlib

from flask_serverside.testing import new_sid
from flask_serverside_filesystem import FileSystemStore

LISTINGS = {"scandir", "listdir", "walk"}


def _trace(store, spy_on_os):
    """The filesystem calls of one request of each kind, by function name."""
    sid = new_sid()
    store.save(sid, b"data", 600, user_id="alice")
    calls = spy_on_os()
    traces = {}
    for name, operation in {
        "load": lambda: store.load(sid),
        "load_and_touch": lambda: store.load_and_touch(sid, 600),
        "touch": lambda: store.touch(sid, 600),
        "save_if": lambda: store.save_if(sid, b"new", 600, expected=store.load(sid)),
        "save": lambda: store.save(sid, b"newer", 600),
        "delete": lambda: store.delete(sid),
        "load of a miss": lambda: store.load(new_sid()),
    }.items():
        calls.clear()
        operation()
        traces[name] = [call for call, _ in calls]
    return traces


def test_operations_make_the_same_calls_with_many_more_sessions(tmp_path, spy_on_os, monkeypatch):
    store = FileSystemStore(tmp_path, threshold=0)
    for _ in range(100):
        store.save(new_sid(), b"x" * 100, 600)
    few = _trace(store, spy_on_os)
    monkeypatch.undo()
    for _ in range(3_000):
        store.save(new_sid(), b"x" * 100, 600)
    many = _trace(store, spy_on_os)
    assert few == many
    assert few["load"] == ["open", "fstat", "read", "close"]
    assert few["load_and_touch"] == ["open", "fstat", "read", "utime", "close"]
    assert few["touch"] == ["stat", "utime"]
    assert few["load of a miss"] == ["open"]
    assert not any(LISTINGS & set(calls) for calls in few.values())


def test_a_hundred_thousand_sessions_spread_thin(tmp_path):
    store = FileSystemStore(tmp_path)
    leaves = collections.Counter(store._name(new_sid())[:3] for _ in range(100_000))
    assert len({leaf[:2] for leaf in leaves}) == 256  # first level: 256 directories
    assert len(leaves) == 4096  # second level: 16 in each
    assert max(leaves.values()) <= 64  # 24 files a directory on average
    sid = new_sid()
    _, path = store._locate(sid)
    assert path.endswith(hashlib.sha256(f"session:{sid}".encode()).hexdigest())
