"""Several processes on one directory, as gunicorn workers share it: no lost update, no torn
read, and a writer killed at any moment leaves the previous record readable."""

from __future__ import annotations

import importlib.util
import pathlib
import signal
import subprocess
import sys
import threading

import pytest

from flask_serverside.testing import new_sid
from flask_serverside_filesystem import FileSystemStore

WORKER = str(pathlib.Path(__file__).with_name("filesystem_worker.py"))
_spec = importlib.util.spec_from_file_location("filesystem_worker", WORKER)
assert _spec is not None and _spec.loader is not None
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)
record = worker.record
PREFIX = worker.PREFIX


@pytest.fixture
def start():
    """Start a worker process; those still running at the end of the test are killed."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: object) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, WORKER, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.returncode is None:
            process.kill()
        process.communicate(timeout=30)


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


@pytest.fixture
def store(tmp_path):
    return FileSystemStore(tmp_path, key_prefix=PREFIX, threshold=0)


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)  # reaps it and closes its pipes
    assert process.returncode == -signal.SIGKILL


def _wait_for(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdout is not None
    assert process.stdout.readline().strip() == line, process.stderr and process.stderr.read()


def test_processes_incrementing_the_same_sessions_lose_nothing(store, tmp_path, start):
    sids = [new_sid() for _ in range(3)]
    for sid in sids:
        store.save(sid, record(0), 600)
    writers, rounds = 4, 25
    stop = tmp_path / "stop"
    reader = start("read", tmp_path, *sids, stop)
    go = tmp_path / "go"
    processes = [start("increment", tmp_path, *sids, rounds, go) for _ in range(writers)]
    for process in processes:
        _wait_for(process, "ready")
    go.touch()  # all at once
    outputs = [finish(process) for process in processes]
    stop.touch()
    outputs.append(finish(reader))
    for sid in sids:
        current = store.load(sid)
        assert current is not None and current.data == record(writers * rounds)
    assert outputs[-1].startswith("reads ") and int(outputs[-1].split()[1]) > 0
    # the contention was real: some conditional saves lost and were retried
    assert sum(int(out.split()[-1]) for out in outputs[:-1]) > 0


def test_worker_processes_serving_one_session_lose_no_change(tmp_path, start):
    app = worker.application(str(tmp_path))
    client = app.test_client()
    client.post("/set/first")
    cookie = client.get_cookie("session")
    assert cookie is not None
    go = tmp_path / "go"
    workers, rounds = 3, 15
    processes = [
        start("requests", tmp_path, cookie.value, number, rounds, go) for number in range(workers)
    ]
    for process in processes:
        _wait_for(process, "ready")
    go.touch()
    for process in processes:
        finish(process)
    keys = client.get("/keys").get_json()["keys"]
    expected = {f"{w}-{n}" for w in range(workers) for n in range(rounds)} | {"first"}
    assert set(keys) == expected


def test_a_writer_killed_mid_write_leaves_the_old_record(store, tmp_path, start):
    sid = new_sid()
    store.save(sid, record(1), 600)
    before = store.load(sid)
    writer = start("die-writing", tmp_path, sid)
    _wait_for(writer, "writing")
    kill(writer)
    bucket, path = store._locate(sid)
    leftover = pathlib.Path(path + ".tmp")
    assert leftover.exists() and 0 < leftover.stat().st_size  # the half-written file
    current = store.load(sid)
    assert current == before
    # the dead writer's lock is gone, and the next write of the session replaces its leftover
    assert store.save_if(sid, record(2), 600, expected=current)
    assert store.load(sid).data == record(2)
    assert not leftover.exists()


def test_purge_removes_what_killed_writers_left(store, tmp_path, start):
    sid = new_sid()
    store.save(sid, record(1), 600)
    writer = start("die-writing", tmp_path, sid)
    _wait_for(writer, "writing")
    kill(writer)
    _, path = store._locate(sid)
    assert pathlib.Path(path + ".tmp").exists()
    assert store.purge_expired() == 0
    assert not pathlib.Path(path + ".tmp").exists()
    assert store.load(sid).data == record(1)


def test_a_lock_held_by_a_killed_process_is_released(store, tmp_path, start):
    sid = new_sid()
    store.save(sid, record(1), 600)
    holder = start("die-locked", tmp_path, sid)
    _wait_for(holder, "locked")
    saved = threading.Event()

    def save() -> None:
        store.save(sid, record(2), 600)
        saved.set()

    thread = threading.Thread(target=save)
    thread.start()
    assert not saved.wait(0.3), "the save did not wait for the lock"
    assert store.load(sid).data == record(1)  # readers never wait
    kill(holder)
    thread.join(timeout=30)
    assert saved.is_set()
    assert store.load(sid).data == record(2)
