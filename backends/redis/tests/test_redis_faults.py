"""Faults: a Redis that goes away and comes back, one that hangs, and a Sentinel failover."""

from __future__ import annotations

import os
import signal
import time

import pytest
from flask import Flask
from flask import session

import flask_serverside
from flask_serverside import StoreUnavailable
from flask_serverside_redis import RedisStore


def make_app(url: str) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="faults", SESSION_TYPE=url, SESSION_KEY_PREFIX="faults:")
    app.config["SESSION_BREAKER_WINDOW"] = 0  # every request reaches the server
    flask_serverside.Session(app)

    @app.post("/login")
    def login() -> dict[str, object]:
        session["user"] = "alice"
        return {"ok": True}

    @app.post("/count")
    def count() -> dict[str, object]:
        session["count"] = session.get("count", 0) + 1
        return {"count": session["count"]}

    @app.get("/read")
    def read() -> dict[str, object]:
        return {"user": session.get("user")}

    return app


def assert_unavailable(response) -> None:
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert b"Traceback" not in response.data and b"redis" not in response.data.lower()


def test_a_server_that_goes_away_and_comes_back(make_redis_server):
    server = make_redis_server()
    app = make_app(server.url)
    browser = app.test_client()
    browser.post("/login")
    assert browser.get("/read").get_json() == {"user": "alice"}
    server.stop()
    assert_unavailable(browser.get("/read"))
    assert_unavailable(browser.post("/count"))
    assert_unavailable(app.test_client().post("/login"))
    server.start()  # without persistence: the sessions are gone, the store works again
    assert browser.get("/read").get_json() == {"user": None}
    browser.post("/login")
    assert browser.post("/count").get_json() == {"count": 1}
    assert browser.get("/read").get_json() == {"user": "alice"}
    app.extensions["serverside"].close()


def test_a_hung_server_times_out(make_redis_server):
    server = make_redis_server()
    store = RedisStore.from_url(server.url + "?socket_timeout=0.2&socket_connect_timeout=0.2")
    store.save("abc", b"data", 60)
    os.kill(server.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            store.load_and_touch("abc", 60)
        assert time.monotonic() - started < 5
        assert info.value.__cause__ is not None
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert store.load("abc").data == b"data"
    store.close()


def test_sentinel_failover_keeps_sessions_working(make_redis_sentinel):
    sentinel = make_redis_sentinel()
    hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
    url = f"redis+sentinel://{hosts}/{sentinel.service_name}?socket_timeout=0.5"
    app = make_app(url)
    browser = app.test_client()
    browser.post("/login")
    assert browser.post("/count").get_json() == {"count": 1}
    sid = browser.get_cookie("session").value
    deadline = time.monotonic() + 10
    key = "faults:" + sid
    while sentinel.replica.execute("GET", key) != sentinel.master.execute("GET", key):
        assert time.monotonic() < deadline, "the replica never copied the session"
        time.sleep(0.02)
    old_master = sentinel.current_master()
    sentinel.master.kill()
    deadline = time.monotonic() + 15
    while True:
        response = browser.post("/count")
        if response.status_code == 200:
            break
        assert_unavailable(response)
        assert time.monotonic() < deadline, "no new master was elected"
        time.sleep(0.1)
    assert sentinel.current_master() != old_master
    assert response.get_json() == {"count": 2}
    assert browser.get("/read").get_json() == {"user": "alice"}
    assert browser.post("/count").get_json() == {"count": 3}
    app.extensions["serverside"].close()


def test_a_restart_between_requests_fails_no_request(make_redis_server):
    server = make_redis_server()
    app = make_app(server.url)
    browser = app.test_client()
    browser.post("/login")
    server.stop()
    server.start()  # the pooled connection is dead now: it is replaced, and the command retried
    assert browser.get("/read").status_code == 200
    assert app.test_client().post("/login").status_code == 200
    app.extensions["serverside"].close()
