"""Moving from Flask-Session 0.8: its memcached sessions, written under the same prefix with
the seeds' python-memcached client, are read by the store, and the cookie keeps working."""

from __future__ import annotations

import typing as t

import flask_session
import memcache
import pytest
from flask import Flask
from flask import session

import flask_serverside

if t.TYPE_CHECKING:
    import collections.abc as c

    from serverside_testservers.memcached import MemcachedServer


def views(app: Flask) -> Flask:
    @app.post("/login")
    def login() -> str:
        session["user"] = "alice"
        session["cart"] = ["apple", (1, 2)]
        return "ok"

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"user": session.get("user"), "cart": session.get("cart")}

    return app


@pytest.fixture
def client(memcached_server: MemcachedServer) -> c.Iterator[memcache.Client]:
    client = memcache.Client([f"{memcached_server.host}:{memcached_server.port}"])
    yield client
    client.disconnect_all()


@pytest.mark.parametrize("form", ["msgpack", "json"])
@pytest.mark.parametrize("permanent", [True, False])
def test_a_flask_session_08_session_carries_over(
    client: memcache.Client, form: str, permanent: bool
) -> None:
    config = {
        "SECRET_KEY": "k",
        "SESSION_TYPE": "memcached",
        "SESSION_MEMCACHED": client,
        "SESSION_KEY_PREFIX": f"moved-{form}-{permanent}:",
        "SESSION_SERIALIZATION_FORMAT": form,
        "SESSION_PERMANENT": permanent,
    }
    old = Flask("old")
    old.config.update(config)
    flask_session.Session(views(old))
    browser = old.test_client()
    browser.post("/login")
    cookie = browser.get_cookie("session")
    assert cookie is not None

    new = Flask("new")
    new.config.update(config)
    flask_serverside.Session(views(new))
    moved = new.test_client()
    moved.set_cookie("session", cookie.value)
    assert moved.get("/read").get_json() == {"user": "alice", "cart": ["apple", [1, 2]]}
    new.extensions["serverside"].close()
