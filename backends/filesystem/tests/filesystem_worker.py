"""A separate process working on a shared session directory, for the multi-process tests.

Usage: ``python filesystem_worker.py MODE DIRECTORY [ARGS...]``

``increment SID... ROUNDS GOFILE``
    print ``ready``, wait for GOFILE to exist, then add 1 to the counter of each session ROUNDS
    times, with load and conditional save.
``read SID... STOPFILE``
    load the sessions in a loop, checking that every record is whole, until STOPFILE exists.
``requests SID WORKER ROUNDS GOFILE``
    like a gunicorn worker: an application on the directory handles ROUNDS requests of
    session SID, each setting its own key ``WORKER-N``.
``die-writing SID``
    start saving a large record, print ``writing`` when half of it is written, and wait to be
    killed; ``die-locked`` prints ``locked`` once it holds the bucket lock instead.
"""

from __future__ import annotations

import os
import sys
import time

from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside_filesystem import FileSystemStore

PREFIX = "worker:"


def record(value: int) -> bytes:
    """The record of counter ``value``: the number, then a filler whose size and byte depend
    on it, so that a record mixing two writes is detected."""
    return b"%d|" % value + bytes([value % 251]) * (1000 + value * 397 % 60_000)


def check(data: bytes) -> int:
    number, _, filler = data.partition(b"|")
    value = int(number)
    if data != record(value):
        raise SystemExit(f"torn record for value {value}: {len(filler)} filler bytes")
    return value


def application(directory: str) -> Flask:
    """The application of the ``requests`` mode (and of the test that starts it)."""
    app = Flask("worker")
    app.config.update(SECRET_KEY="worker", SESSION_FILE_DIR=directory, SESSION_KEY_PREFIX=PREFIX)
    Session(app)

    @app.post("/set/<key>")
    def set_key(key: str) -> dict[str, int]:
        session[key] = 1
        return {"keys": len(session)}

    @app.get("/keys")
    def keys() -> dict[str, list[str]]:
        return {"keys": sorted(key for key in session if not key.startswith("_"))}

    return app


def main() -> None:
    mode, directory, *args = sys.argv[1:]
    store = FileSystemStore(directory, key_prefix=PREFIX, threshold=0)
    if mode == "increment":
        *sids, rounds, go = args
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.001)
        conflicts = 0
        for _ in range(int(rounds)):
            for sid in sids:
                while True:
                    current = store.load(sid)
                    assert current is not None
                    value = check(current.data) + 1
                    time.sleep(0.0005)  # widen the window between load and save: real races
                    if store.save_if(sid, record(value), 600, expected=current):
                        break
                    conflicts += 1
        print(f"conflicts {conflicts}")
    elif mode == "read":
        *sids, stop = args
        reads = 0
        while not os.path.exists(stop) or reads == 0:
            for sid in sids:
                current = store.load_and_touch(sid, 600)
                assert current is not None
                check(current.data)
                reads += 1
        print(f"reads {reads}")
    elif mode == "requests":
        sid, worker, rounds, go = args
        client = application(directory).test_client()
        client.set_cookie("session", sid)
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.001)
        for number in range(int(rounds)):
            response = client.post(f"/set/{worker}-{number}")
            assert response.status_code == 200, response.status_code
    elif mode in ("die-writing", "die-locked"):
        (sid,) = args
        real_write = os.write

        def half_write(fd: int, data: bytes | memoryview) -> int:
            written = real_write(fd, data[: len(data) // 2])
            print("writing", flush=True)
            time.sleep(60)
            return written

        if mode == "die-writing":
            os.write = half_write  # type: ignore[assignment]
            store.save(sid, record(999_999), 600)
        else:
            with store._locked(store._locate(sid)[0]):
                print("locked", flush=True)
                time.sleep(60)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
