"""What a request costs Redis: the commands the server receives (MONITOR), counted, not timed."""

from __future__ import annotations

import collections
import collections.abc as c
import secrets

import pytest
import redis
from flask import Flask
from flask import session

import flask_serverside
from serverside_testservers import RedisServer

#: What a new connection sends once, before its first command: not a cost per request.
HANDSHAKE = frozenset({"hello", "client", "auth", "select", "readonly"})


class Monitor:
    """Counts the commands clients send to some servers (MONITOR), leaving out those a script
    runs."""

    def __init__(self, *servers: RedisServer) -> None:
        self.clients = [redis.Redis(server.host, server.port) for server in servers]
        self.monitors = [client.monitor().__enter__() for client in self.clients]

    def commands(self) -> dict[str, int]:
        """The commands sent since the last call, by name."""
        counts: collections.Counter[str] = collections.Counter()
        for client, monitor in zip(self.clients, self.monitors, strict=True):
            marker = secrets.token_hex(8)
            client.echo(marker)
            while (command := monitor.next_command())["command"] != f"ECHO {marker}":
                name = command["command"].split()[0].lower()
                if command["client_type"] != "lua" and name not in HANDSHAKE:
                    counts[name] += 1
        return dict(counts)

    def close(self) -> None:
        for client, monitor in zip(self.clients, self.monitors, strict=True):
            monitor.__exit__()
            client.close()


@pytest.fixture
def server(make_redis_server) -> RedisServer:
    return make_redis_server()


@pytest.fixture
def monitor(server) -> c.Iterator[Monitor]:
    monitor = Monitor(server)
    yield monitor
    monitor.close()


def make_app(url: str, **config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="cost", SESSION_TYPE=url, **config)
    flask_serverside.Session(app)

    @app.post("/login")
    def login() -> dict[str, object]:
        session["_user_id"] = "alice"
        return {"ok": True}

    @app.post("/count")
    def count() -> dict[str, object]:
        session["count"] = session.get("count", 0) + 1
        return {"ok": True}

    @app.get("/read")
    def read() -> dict[str, object]:
        return {"user": session.get("_user_id")}

    return app


def test_one_command_to_read_two_to_write(server, monitor):
    app = make_app(server.url)
    browser = app.test_client()
    browser.post("/login")
    browser.post("/count")  # the scripts are loaded now
    monitor.commands()
    assert browser.get("/read").get_json() == {"user": "alice"}
    assert monitor.commands() == {"getex": 1}
    browser.post("/count")
    assert monitor.commands() == {"getex": 1, "evalsha": 1}
    app.test_client().get("/read")
    assert monitor.commands() == {}
    app.test_client().post("/login")
    assert monitor.commands() == {"evalsha": 1}
    app.extensions["serverside"].close()


def test_without_sliding_expiry_a_read_is_one_get(server, monitor):
    app = make_app(server.url, SESSION_REFRESH_EACH_REQUEST=False)
    browser = app.test_client()
    browser.post("/login")
    monitor.commands()
    browser.get("/read")
    assert monitor.commands() == {"get": 1}
    app.extensions["serverside"].close()


def test_on_a_cluster_too(redis_cluster):
    hosts = ",".join(f"{host}:{port}" for host, port in redis_cluster.startup_nodes)
    app = make_app(f"redis+cluster://{hosts}", SESSION_KEY_PREFIX="cost-cluster:")
    browser = app.test_client()
    browser.post("/login")
    browser.post("/count")
    monitor = Monitor(*redis_cluster.nodes)
    try:
        monitor.commands()  # the monitor's own connections
        assert browser.get("/read").get_json() == {"user": "alice"}
        assert monitor.commands() == {"getex": 1}
        browser.post("/count")
        assert monitor.commands() == {"getex": 1, "evalsha": 1}
        app.test_client().post("/login")  # a new session of a user: index, then session
        assert monitor.commands() == {"evalsha": 2}
    finally:
        monitor.close()
        app.extensions["serverside"].close()
