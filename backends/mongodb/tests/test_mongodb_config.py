"""Configuration forms of the MongoDB store: the Flask-Session keys, URLs, defaults, errors."""

from __future__ import annotations

import collections.abc as c
import logging
import secrets
import traceback
import typing as t
import urllib.parse

import pymongo
import pytest
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside.exceptions import ConfigurationError
from flask_serverside.registry import resolve_store
from flask_serverside_mongodb import MongoDBStore
from serverside_testservers import port_is_free
from serverside_testservers.mongodb import new_mongodb_server


def with_database(url: str, database: str) -> str:
    """``url`` with ``database`` as its default database."""
    return urllib.parse.urlsplit(url)._replace(path=f"/{database}").geturl()


@pytest.fixture
def mongo_client(mongodb_server: t.Any) -> c.Iterator[pymongo.MongoClient[t.Any]]:
    client: pymongo.MongoClient[t.Any] = pymongo.MongoClient(
        mongodb_server.url, serverSelectionTimeoutMS=5000
    )
    yield client
    client.close()


@pytest.fixture
def make_app() -> c.Iterator[c.Callable[..., Flask]]:
    """Applications with the given config, their stores closed after the test."""
    apps: list[Flask] = []

    def make(**config: t.Any) -> Flask:
        app = Flask(__name__)
        app.config.update(SECRET_KEY="config-tests", **config)
        Session(app)
        apps.append(app)

        @app.post("/login")
        def login() -> dict[str, t.Any]:
            session["user"] = "alice"
            return {"ok": True}

        @app.get("/read")
        def read() -> dict[str, t.Any]:
            return {"user": session.get("user")}

        @app.post("/logout")
        def logout() -> dict[str, t.Any]:
            session.clear()
            return {"ok": True}

        return app

    yield make
    for app in apps:
        app.extensions["serverside"].close()


def store_of(app: Flask) -> MongoDBStore:
    store = app.extensions["serverside"].store
    assert isinstance(store, MongoDBStore)
    return store


@pytest.mark.parametrize(
    "value", ["mongodb", "mongodb://db.example.com/app", "mongodb+srv://cluster.example.com/app"]
)
def test_entry_points_and_url_schemes_find_the_store(value: str) -> None:
    assert resolve_store(value)[1] is MongoDBStore


def test_flask_session_configuration(
    make_app: c.Callable[..., Flask], mongo_client: pymongo.MongoClient[t.Any]
) -> None:
    app = make_app(SESSION_TYPE="mongodb", SESSION_MONGODB=mongo_client)
    store = store_of(app)
    assert store.collection.full_name == "flask_session.sessions"
    assert store.collection.database.client is mongo_client
    assert store.key_prefix == "session:"


def test_a_client_passed_in_keeps_flask_sessions_default_database(
    make_app: c.Callable[..., Flask], mongodb_server: t.Any
) -> None:
    # Flask-Session 0.8 ignores the client's default database; so do we, so that a migrated
    # application finds its sessions where Flask-Session left them.
    with pymongo.MongoClient(with_database(mongodb_server.url, "elsewhere")) as client:
        app = make_app(SESSION_TYPE="mongodb", SESSION_MONGODB=client)
        assert store_of(app).collection.full_name == "flask_session.sessions"
        app = make_app(
            SESSION_TYPE="mongodb",
            SESSION_MONGODB=client,
            SESSION_MONGODB_DB="app_db",
            SESSION_MONGODB_COLLECT="web_sessions",
            SESSION_KEY_PREFIX="web:",
        )
        store = store_of(app)
        assert store.collection.full_name == "app_db.web_sessions"
        assert store.key_prefix == "web:"
        app.extensions["serverside"].close()
        assert client.admin.command("ping")["ok"] == 1.0  # not closed: the app owns it


@pytest.mark.parametrize("key", ["SESSION_TYPE", "SESSION_MONGODB"])
def test_a_url_end_to_end(
    make_app: c.Callable[..., Flask], mongodb_server: t.Any, key: str
) -> None:
    database = f"url_{secrets.token_hex(4)}"
    url = with_database(mongodb_server.url, database)
    config = {"SESSION_TYPE": url} if key == "SESSION_TYPE" else {"SESSION_MONGODB": url}
    app = make_app(**{"SESSION_TYPE": "mongodb", **config})
    store = store_of(app)
    assert store.collection.full_name == f"{database}.sessions"
    client = store.collection.database.client
    assert client.options.server_selection_timeout == 2.0
    assert client.codec_options.tz_aware
    web = app.test_client()
    web.post("/login")
    assert web.get("/read").get_json() == {"user": "alice"}
    document = store.collection.find_one()
    assert document is not None and document["expiration"].tzinfo is not None
    store.collection.database.client.drop_database(database)


def test_a_url_without_database_and_its_own_options(
    make_app: c.Callable[..., Flask], mongodb_server: t.Any
) -> None:
    url = mongodb_server.url + "&serverSelectionTimeoutMS=700"
    app = make_app(SESSION_TYPE=url, SESSION_MONGODB_DB=None, SESSION_MONGODB_TIMEOUT=None)
    store = store_of(app)
    assert store.collection.full_name == "flask_session.sessions"
    assert store.collection.database.client.options.server_selection_timeout == 0.7
    assert store.timeout is None
    client = store.collection.database.client
    app.extensions["serverside"].close()
    with pytest.raises(pymongo.errors.InvalidOperation):
        client.admin.command("ping")  # the store built it, so the store closed it


def test_indexes_are_created_unless_told_not_to(
    make_app: c.Callable[..., Flask], mongo_client: pymongo.MongoClient[t.Any]
) -> None:
    database = f"indexes_{secrets.token_hex(4)}"
    app = make_app(
        SESSION_TYPE="mongodb", SESSION_MONGODB=mongo_client, SESSION_MONGODB_DB=database
    )
    indexes = {index["name"]: index for index in store_of(app).collection.list_indexes()}
    assert indexes["id_1"]["unique"] is True
    assert indexes["expiration_1"]["expireAfterSeconds"] == 0
    assert indexes["user_1"]["sparse"] is True
    bare = mongo_client[database]["bare"]
    app = make_app(
        SESSION_TYPE="mongodb",
        SESSION_MONGODB=mongo_client,
        SESSION_MONGODB_DB=database,
        SESSION_MONGODB_COLLECT="bare",
        SESSION_MONGODB_CREATE_INDEXES=False,
    )
    store_of(app).save("sid", b"data", 60)
    assert [index["name"] for index in bare.list_indexes()] == ["_id_"]
    mongo_client.drop_database(database)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SESSION_MONGODB": {"host": "localhost"}}, "must be a pymongo.MongoClient or a"),
        ({"SESSION_MONGODB": "redis://localhost"}, "is not usable"),
        ({"SESSION_MONGODB": "mongodb://u:secret@x:99999/"}, "***@x:99999"),
        ({"SESSION_MONGODB": "mongodb://x:1", "SESSION_MONGODB_DB": 3}, "SESSION_MONGODB_DB"),
        ({"SESSION_MONGODB": "mongodb://x:1", "SESSION_MONGODB_COLLECT": ""}, "_COLLECT"),
        ({"SESSION_MONGODB": "mongodb://x:1", "SESSION_MONGODB_TIMEOUT": 0}, "_TIMEOUT"),
        ({"SESSION_MONGODB": "mongodb://x:1", "SESSION_MONGODB_TIMEOUT": "2"}, "_TIMEOUT"),
    ],
)
def test_misconfiguration_fails_at_init_app_and_says_what_to_set(
    make_app: c.Callable[..., Flask], config: dict[str, t.Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match="SESSION_MONGODB|MongoDB URL") as info:
        make_app(SESSION_TYPE="mongodb", SESSION_MONGODB_CREATE_INDEXES=False, **config)
    assert message in str(info.value)
    assert "secret" not in str(info.value)


def test_nothing_configured_is_flask_sessions_default_and_says_so(
    make_app: c.Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="flask_serverside"):
        app = make_app(SESSION_TYPE="mongodb", SESSION_MONGODB_CREATE_INDEXES=False)
    store = store_of(app)
    client = store.collection.database.client
    assert set(client.topology_description.server_descriptions()) == {("localhost", 27017)}
    assert store.collection.full_name == "flask_session.sessions"
    assert client.options.server_selection_timeout == 2.0 and store.timeout == 2.0
    assert [(r.name, r.levelname) for r in caplog.records] == [
        ("flask_serverside.mongodb", "WARNING")
    ]
    message = caplog.records[0].getMessage()
    assert "mongodb://localhost:27017/" in message and "Flask-Session's default" in message


def test_the_default_is_never_logged_when_configured(
    make_app: c.Callable[..., Flask],
    mongo_client: pymongo.MongoClient[t.Any],
    mongodb_server: t.Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="flask_serverside.mongodb"):
        make_app(SESSION_TYPE="mongodb", SESSION_MONGODB=mongo_client)
        make_app(SESSION_TYPE="mongodb", SESSION_MONGODB=mongodb_server.url)
        make_app(SESSION_TYPE=mongodb_server.url)
    assert caplog.records == []


@pytest.mark.servers
def test_the_default_server_end_to_end(make_app: c.Callable[..., Flask]) -> None:
    if not port_is_free(27017):
        pytest.skip("127.0.0.1:27017 is taken: cannot start a MongoDB on the default port")
    server = new_mongodb_server()
    server.port = 27017
    server.start()
    try:
        app = make_app(SESSION_TYPE="mongodb", SESSION_KEY_PREFIX="default:")
        browser = app.test_client()
        browser.post("/login")
        assert browser.get("/read").get_json() == {"user": "alice"}
        with pymongo.MongoClient(server.url) as direct:  # the session is on that server
            assert direct.flask_session.sessions.count_documents({"id": {"$regex": "^default:"}})
        app.extensions["serverside"].close()
    finally:
        server.close()


def test_a_url_in_session_type_and_session_mongodb_is_ambiguous(
    make_app: c.Callable[..., Flask], mongo_client: pymongo.MongoClient[t.Any]
) -> None:
    with pytest.raises(ConfigurationError, match="SESSION_TYPE = 'mongodb' to use"):
        make_app(SESSION_TYPE="mongodb://x:1/db", SESSION_MONGODB=mongo_client)


def test_duplicate_ids_left_by_flask_session_fail_at_init_app(
    make_app: c.Callable[..., Flask], mongo_client: pymongo.MongoClient[t.Any]
) -> None:
    # Flask-Session 0.8 keeps no index on ``id``, so racing upserts may have left twins.
    database = f"twins_{secrets.token_hex(4)}"
    key = f"session:{secrets.token_urlsafe(32)}"
    mongo_client[database]["sessions"].insert_many([{"id": key}, {"id": key}])
    with pytest.raises(ConfigurationError, match="SESSION_MONGODB_CREATE_INDEXES = False") as info:
        make_app(SESSION_TYPE="mongodb", SESSION_MONGODB=mongo_client, SESSION_MONGODB_DB=database)
    mongo_client.drop_database(database)
    # The id of the twins is a session id: neither the message nor its traceback shows it.
    assert key[8:] not in "".join(traceback.format_exception(info.value))


def test_seeds_configuration_end_to_end(
    make_app: c.Callable[..., Flask], mongo_client: pymongo.MongoClient[t.Any]
) -> None:
    """An application configured for Flask-Session 0.8, unchanged but for the import."""
    database = f"seed_{secrets.token_hex(4)}"
    app = make_app(
        SESSION_TYPE="mongodb",
        SESSION_MONGODB=mongo_client,
        SESSION_MONGODB_DB=database,
        SESSION_MONGODB_COLLECT="web_sessions",
        SESSION_KEY_PREFIX="seed-app:",
        SESSION_USE_SIGNER=True,
        SESSION_PERMANENT=True,
    )
    browsers = [app.test_client() for _ in range(2)]
    for browser in browsers:
        browser.post("/login")
        assert browser.get("/read").get_json() == {"user": "alice"}
        cookie = browser.get_cookie("session")
        assert cookie is not None and "." in cookie.value  # signed
    collection = mongo_client[database]["web_sessions"]
    assert collection.count_documents({"id": {"$regex": "^seed-app:"}}) == 2
    store = store_of(app)
    assert store.count() == 2
    for browser in browsers:
        browser.post("/logout")
    assert collection.count_documents({}) == 0
    mongo_client.drop_database(database)
