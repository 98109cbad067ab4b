"""A MongoDB server that goes away, freezes, or is down at start-up, and comes back."""

from __future__ import annotations

import collections.abc as c
import contextlib
import logging
import os
import signal
import time
import typing as t

import pymongo
import pytest
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside.exceptions import StoreUnavailable
from flask_serverside.testing import new_sid
from flask_serverside_mongodb import MongoDBStore


@pytest.fixture
def make_app() -> c.Iterator[c.Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(url: str, **config: t.Any) -> Flask:
        app = Flask(__name__)
        app.config.update(SECRET_KEY="faults", SESSION_TYPE=url, **config)
        Session(app)
        apps.append(app)

        @app.post("/login")
        def login() -> dict[str, t.Any]:
            session["user"] = "alice"
            return {"ok": True}

        @app.get("/read")
        def read() -> dict[str, t.Any]:
            return {"user": session.get("user")}

        return app

    yield make
    for app in apps:
        app.extensions["serverside"].close()


def eventually(check: c.Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait until ``check()`` holds: pymongo rediscovers a restarted server in the
    background, within its heartbeat (half a second while a server is unknown)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "did not recover in time"
        time.sleep(0.1)


def test_server_goes_away_and_comes_back(
    make_mongodb_server: t.Any, make_app: c.Callable[..., Flask]
) -> None:
    server = make_mongodb_server()
    app = make_app(server.url)
    browser = app.test_client()
    browser.post("/login")
    assert browser.get("/read").get_json() == {"user": "alice"}

    server.stop()
    started = time.monotonic()
    response = browser.get("/read")
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert browser.post("/login").status_code == 503  # never a silent loss
    assert time.monotonic() - started < 10  # two operations of at most 2 s each, and some

    server.start()
    eventually(lambda: browser.get("/read").status_code == 200)
    assert browser.get("/read").get_json() == {"user": "alice"}


def test_unreachable_and_frozen_servers_raise_store_unavailable(
    make_mongodb_server: t.Any,
) -> None:
    server = make_mongodb_server()
    with pymongo.MongoClient(server.url, serverSelectionTimeoutMS=5000) as client:
        store = MongoDBStore(client.faults.sessions, timeout=0.25)
        sid = new_sid()
        store.save(sid, b"data", 60)

        os.kill(server.pid, signal.SIGSTOP)  # accepts connections, answers nothing
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as frozen:
                store.load(sid)
            assert time.monotonic() - started < 1.5
            assert isinstance(frozen.value.__cause__, pymongo.errors.PyMongoError)
            assert frozen.value.__cause__.timeout
        finally:
            os.kill(server.pid, signal.SIGCONT)

        server.stop()
        for operation in (
            lambda: store.load(sid),
            lambda: store.load_and_touch(sid, 60),
            lambda: store.save(sid, b"lost?", 60),
            lambda: store.save_if(sid, b"lost?", 60, expected=None),
            lambda: store.touch(sid, 60),
            lambda: store.delete(sid),
            lambda: store.count(),
            lambda: list(store.iter_sids()),
            lambda: store.user_sids("alice"),
            lambda: store.purge_expired(),
        ):
            with pytest.raises(StoreUnavailable) as down:
                operation()
            assert isinstance(down.value.__cause__, pymongo.errors.ConnectionFailure)

        server.start()
        eventually(lambda: _answers(store))
        record = store.load(sid)
        assert record is not None and record.data == b"data"


def _answers(store: MongoDBStore) -> bool:
    with contextlib.suppress(StoreUnavailable):
        store.load(new_sid())
        return True
    return False


def test_a_server_down_at_start_up_gets_its_indexes_when_it_comes_back(
    make_mongodb_server: t.Any,
    make_app: c.Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_mongodb_server()
    server.stop()
    url = server.url + "&serverSelectionTimeoutMS=300"
    with caplog.at_level(logging.WARNING, logger="flask_serverside"):
        # starts all the same
        app = make_app(url, SESSION_MONGODB_DB="late", SESSION_MONGODB_TIMEOUT=0.3)
    assert "indexes will be created later" in caplog.text
    browser = app.test_client()
    assert browser.post("/login").status_code == 503

    server.start()
    eventually(lambda: browser.post("/login").status_code == 200)
    assert browser.get("/read").get_json() == {"user": "alice"}
    store = app.extensions["serverside"].store
    assert {"id_1", "expiration_1", "user_1"} <= {
        index["name"] for index in store.collection.list_indexes()
    }
