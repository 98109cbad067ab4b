"""A MongoDB server that goes away, freezes, or is down at start-up, and comes back."""

from __future__ import annotations

import collections.abc as c
import contextlib
import logging
import os
import signal
import socket
import threading
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


def timed(call: c.Callable[[], t.Any]) -> tuple[t.Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_a_refused_connection_fails_fast(
    make_mongodb_server: t.Any, make_app: c.Callable[..., Flask]
) -> None:
    server = make_mongodb_server()
    app = make_app(server.url, SESSION_BREAKER_WINDOW=0)  # every request reaches the store
    browser = app.test_client()
    browser.post("/login")

    server.stop()
    for _ in range(4):  # the first finds its connection gone, the next find the server down
        response, seconds = timed(lambda: browser.get("/read"))
        assert response.status_code == 503
        assert seconds < 0.5  # SESSION_MONGODB_TIMEOUT (2 s) before
    assert browser.post("/login").status_code == 503

    server.start()
    eventually(lambda: browser.get("/read").status_code == 200)
    assert browser.get("/read").get_json() == {"user": "alice"}


class CuttingProxy:
    """A TCP proxy in front of a server that can cut every open connection at once, as a load
    balancer or a NAT that drops connections does, while the server stays up."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.target)
            with self.lock:
                self.open += [client, server]
            for source, sink in ((client, server), (server, client)):
                pump = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                self.threads.append(pump)
                pump.start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self.lock:
            cut, self.open = self.open, []
        for each in cut:
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()
        for thread in self.threads:
            thread.join(timeout=5)


def test_connections_dropped_in_use_are_made_again_at_once(
    mongodb_server: t.Any, make_app: c.Callable[..., Flask]
) -> None:
    proxy = CuttingProxy((mongodb_server.host, mongodb_server.port))
    try:
        url = f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true"
        app = make_app(url, SESSION_REFRESH_EACH_REQUEST=False)  # a plain find
        slides = make_app(url)  # a findAndModify
        browsers = [each.test_client() for each in (app, slides)]
        for browser in browsers:
            browser.post("/login")
        for _ in range(3):
            for browser in browsers:
                assert browser.get("/read").status_code == 200  # connections in use
                proxy.cut()  # their next use fails; the store tries once more
                response = browser.get("/read")
                assert response.status_code == 200 and response.get_json() == {"user": "alice"}
    finally:
        for each in (app, slides):
            each.extensions["serverside"].close()
        proxy.close()


def test_a_hung_server_times_out_within_the_bound(
    make_mongodb_server: t.Any, make_app: c.Callable[..., Flask]
) -> None:
    server = make_mongodb_server()
    app = make_app(server.url, SESSION_BREAKER_WINDOW=0)
    browser = app.test_client()
    browser.post("/login")
    os.kill(server.pid, signal.SIGSTOP)
    try:
        for _ in range(2):
            response, seconds = timed(lambda: browser.get("/read"))
            assert response.status_code == 503
            assert seconds < 3.0  # SESSION_MONGODB_TIMEOUT, 2 s, bounds both attempts
    finally:
        os.kill(server.pid, signal.SIGCONT)
    eventually(lambda: browser.get("/read").status_code == 200)
