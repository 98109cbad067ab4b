"""The real Flask-Session 0.8 and flask-serverside side by side on one store.

``side_by_side`` gives, for every store Flask-Session has, a factory of applications with one
configuration (the same keys, cookie name and key prefix; only the ``Session`` class differs),
so that one browser can be served by either in any order, as during a rolling deploy or a
rollback. Each store runs on the test session's real server, under a key prefix (or a
database, table or directory) of its own per test.

Flask-Session's ``cachelib`` type has no flask-serverside counterpart on this branch yet; when
``flask-serverside-cachelib`` is installed, add its entry to ``STORES`` (its Flask-Session
layout is the filesystem one: a cachelib cache of pickled dicts).
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import dataclasses
import secrets
import typing as t
import warnings

import flask_session
import pytest
from flask import Flask
from flask import flash
from flask import get_flashed_messages
from flask import session

import flask_serverside

#: Flask-Session's store types that flask-serverside serves too.
STORES = ["redis", "memcached", "mongodb", "sqlite", "postgresql", "filesystem"]

#: The configuration both applications share, besides the store's own keys.
COMMON = {
    "SECRET_KEY": "migration-secret",
    "SESSION_PERMANENT": True,
    "SESSION_COOKIE_NAME": "session",
}


def add_views(app: Flask) -> Flask:
    """The same views on both applications: log in (regenerating the id), a cart changed by
    plain assignment (Flask-Session saves only what it sees assigned), flash messages, a page
    that reads them, and log out."""

    @app.post("/login/<user>")
    def login(user: str) -> dict[str, t.Any]:
        session["_user_id"] = user
        session["user"] = user
        app.session_interface.regenerate(session)  # type: ignore[attr-defined]
        return {"ok": True}

    @app.post("/cart/<item>")
    def add(item: str) -> dict[str, t.Any]:
        session["cart"] = [*session.get("cart", []), item]
        return {"ok": True}

    @app.post("/flash/<message>")
    def add_flash(message: str) -> dict[str, t.Any]:
        flash(message)
        return {"ok": True}

    @app.get("/page")
    def page() -> dict[str, t.Any]:
        return {
            "user": session.get("user"),
            "cart": session.get("cart", []),
            "flashes": get_flashed_messages(),
        }

    @app.post("/logout")
    def logout() -> dict[str, t.Any]:
        session.clear()
        return {"ok": True}

    return app


@dataclasses.dataclass
class SideBySide:
    """Applications of one configuration on one store, under Flask-Session or flask-serverside."""

    store: str
    config: dict[str, t.Any]
    #: Called with a new application before ``Session(app)`` (Flask-SQLAlchemy's ``init_app``).
    prepare: c.Callable[[Flask], None] = lambda app: None
    made: list[Flask] = dataclasses.field(default_factory=list)

    def app(
        self,
        *,
        flask_session_08: bool,
        compat: bool = False,
        signer: bool = False,
        **config: t.Any,
    ) -> Flask:
        """An application under the real Flask-Session 0.8 (``flask_session_08``) or under
        flask-serverside (with ``SESSION_COMPAT_FLASK_SESSION = compat``); keyword arguments
        are more configuration keys."""
        name = "flask_session_app" if flask_session_08 else "serverside_app"
        app = Flask(name)
        app.config.update(COMMON, **self.config, SESSION_USE_SIGNER=signer, **config)
        if not flask_session_08:
            app.config["SESSION_COMPAT_FLASK_SESSION"] = compat
        self.prepare(app)
        if flask_session_08:
            with warnings.catch_warnings():
                # Its own deprecations: SESSION_USE_SIGNER, SESSION_FILE_DIR and the like.
                warnings.simplefilter("ignore", DeprecationWarning)
                flask_session.Session(app)
        else:
            flask_serverside.Session(app)
        self.made.append(app)
        return add_views(app)

    def close(self) -> None:
        for app in self.made:
            state = app.extensions.get("serverside")
            if state is not None:
                state.close()
            db = app.extensions.get("sqlalchemy")
            if db is not None:
                with app.app_context():
                    db.engine.dispose()


@contextlib.contextmanager
def _redis(request: pytest.FixtureRequest, prefix: str) -> c.Iterator[SideBySide]:
    import redis

    server = request.getfixturevalue("redis_server")
    client = redis.Redis(server.host, server.port)
    try:
        yield SideBySide("redis", {"SESSION_TYPE": "redis", "SESSION_REDIS": client})
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


@contextlib.contextmanager
def _memcached(request: pytest.FixtureRequest, prefix: str) -> c.Iterator[SideBySide]:
    from pymemcache.client.base import Client

    server = request.getfixturevalue("memcached_server")
    client = Client((server.host, server.port))
    try:
        yield SideBySide("memcached", {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": client})
    finally:
        client.close()


@contextlib.contextmanager
def _mongodb(request: pytest.FixtureRequest, prefix: str) -> c.Iterator[SideBySide]:
    import pymongo

    server = request.getfixturevalue("mongodb_server")
    client: pymongo.MongoClient[t.Any] = pymongo.MongoClient(server.url, tz_aware=True)
    database = f"migration_{secrets.token_hex(4)}"
    try:
        yield SideBySide(
            "mongodb",
            {"SESSION_TYPE": "mongodb", "SESSION_MONGODB": client, "SESSION_MONGODB_DB": database},
        )
    finally:
        client.drop_database(database)
        client.close()


@contextlib.contextmanager
def _sql(url: str) -> c.Iterator[SideBySide]:
    from flask_sqlalchemy import SQLAlchemy

    db = SQLAlchemy()
    table = f"sessions_{secrets.token_hex(4)}"
    pair = SideBySide(
        "sqlalchemy",
        {
            "SESSION_TYPE": "sqlalchemy",
            "SESSION_SQLALCHEMY": db,
            "SESSION_SQLALCHEMY_TABLE": table,
            "SQLALCHEMY_DATABASE_URI": url,
        },
        prepare=db.init_app,
    )
    yield pair


@contextlib.contextmanager
def _sqlite(request: pytest.FixtureRequest, prefix: str) -> c.Iterator[SideBySide]:
    path = request.getfixturevalue("tmp_path") / "sessions.db"
    with _sql(f"sqlite:///{path}") as pair:
        yield pair


@contextlib.contextmanager
def _postgresql(request: pytest.FixtureRequest, prefix: str) -> c.Iterator[SideBySide]:
    server = request.getfixturevalue("postgresql_server")
    with _sql(server.url.replace("postgresql://", "postgresql+psycopg://", 1)) as pair:
        yield pair


@contextlib.contextmanager
def _filesystem(request: pytest.FixtureRequest, prefix: str) -> c.Iterator[SideBySide]:
    directory = request.getfixturevalue("tmp_path") / "flask_session"
    yield SideBySide("filesystem", {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": directory})


_MAKERS: dict[str, t.Callable[[pytest.FixtureRequest, str], t.ContextManager[SideBySide]]] = {
    "redis": _redis,
    "memcached": _memcached,
    "mongodb": _mongodb,
    "sqlite": _sqlite,
    "postgresql": _postgresql,
    "filesystem": _filesystem,
}


@pytest.fixture(params=STORES)
def side_by_side(request: pytest.FixtureRequest) -> c.Iterator[SideBySide]:
    """Applications of one configuration on one of Flask-Session's stores."""
    prefix = f"migration-{secrets.token_hex(4)}:"
    with _MAKERS[request.param](request, prefix) as pair:
        pair.config["SESSION_KEY_PREFIX"] = prefix
        try:
            yield pair
        finally:
            pair.close()


class Browser:
    """One user's browser: a cookie jar that goes to whichever application serves the next
    request, which must never answer with a 5xx."""

    def __init__(self) -> None:
        self.cookie: str | None = None
        #: Every request made, as (application name, method, path, status).
        self.log: list[tuple[str, str, str, int]] = []

    def request(self, app: Flask, method: str, path: str) -> t.Any:
        client = app.test_client()
        if self.cookie is not None:
            client.set_cookie("session", self.cookie)
        response = client.open(path, method=method)
        self.log.append((app.name, method, path, response.status_code))
        assert response.status_code < 500, (self.log, response.get_data(as_text=True)[-2000:])
        cookie = client.get_cookie("session")
        self.cookie = None if cookie is None else cookie.value
        return response.get_json()

    def page(self, app: Flask) -> dict[str, t.Any]:
        return t.cast("dict[str, t.Any]", self.request(app, "GET", "/page"))


@pytest.fixture
def browser() -> Browser:
    return Browser()
