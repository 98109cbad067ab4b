"""Moving from Flask-Session 0.8: its configuration and its records work unchanged."""

from __future__ import annotations

import collections.abc as c

import flask_session
import pytest
import redis
from flask import Flask
from flask import session

import flask_serverside
from flask_serverside_redis import RedisStore


@pytest.fixture
def client(redis_server) -> c.Iterator[redis.Redis]:
    client = redis.Redis(redis_server.host, redis_server.port)
    yield client
    client.close()


def make_app(extension: type, client: redis.Redis, prefix: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="compat-secret",
        SESSION_TYPE="redis",
        SESSION_REDIS=client,
        SESSION_KEY_PREFIX=prefix,
    )
    extension(app)

    @app.post("/login")
    def login() -> dict[str, object]:
        session["user"] = "alice"
        session["cart"] = ["apple", ("pear", 2)]
        return {"ok": True}

    @app.post("/add")
    def add() -> dict[str, object]:
        session["cart"] = [*session.get("cart", []), "plum"]
        return {"ok": True}

    @app.get("/read")
    def read() -> dict[str, object]:
        return {"user": session.get("user"), "cart": session.get("cart")}

    return app


@pytest.mark.parametrize("serialization", ["msgpack", "json"])
def test_a_flask_session_record_is_read_and_then_rewritten(client, serialization):
    prefix = f"compat-{serialization}:"
    old = make_app(flask_session.Session, client, prefix)
    old.config["SESSION_SERIALIZATION_FORMAT"] = serialization
    old_client = old.test_client()
    old_client.post("/login")
    sid = old_client.get_cookie("session").value
    raw = client.get(prefix + sid)
    assert raw is not None and raw[:1] in (b"{", b"\x83", b"\x84", b"\x85")  # no header

    new = make_app(flask_serverside.Session, client, prefix)
    new_client = new.test_client()
    new_client.set_cookie("session", sid)
    assert new_client.get("/read").get_json() == {"user": "alice", "cart": ["apple", ["pear", 2]]}
    new_client.post("/add")
    assert new_client.get_cookie("session").value == sid
    assert new_client.get("/read").get_json()["cart"] == ["apple", ["pear", 2], "plum"]
    # Moved from its raw id to its hashed key by the first request that used it.
    key = new.extensions["serverside"].store_key(sid)
    assert client.get(prefix + sid) is None
    assert 0 < client.ttl(prefix + key) <= 31 * 24 * 3600
    new.extensions["serverside"].close()


def test_conditional_save_on_a_record_without_header(client):
    store = RedisStore(client, key_prefix="compat-cas:")
    client.set("compat-cas:abc", b"\x81\xa1a\x01", ex=60)  # as Flask-Session writes it
    loaded = store.load("abc")
    assert loaded is not None and loaded.data == b"\x81\xa1a\x01"
    client.set("compat-cas:abc", b"\x81\xa1a\x02", ex=60)  # another Flask-Session write
    assert store.save_if("abc", b"mine", 60, expected=loaded) is False
    current = store.load("abc")
    assert current is not None and current.version != loaded.version
    assert store.save_if("abc", b"mine", 60, expected=current) is True
    assert store.load("abc").data == b"mine"
    client.delete("compat-cas:abc")


def test_an_empty_foreign_value_is_a_record(client):
    store = RedisStore(client, key_prefix="compat-empty:")
    client.set("compat-empty:abc", b"", ex=60)
    loaded = store.load("abc")
    assert loaded is not None and loaded.data == b""
    assert store.save_if("abc", b"x", 60, expected=None) is False
    assert store.save_if("abc", b"x", 60, expected=loaded) is True
    client.delete("compat-empty:abc")
