"""Moving from Flask-Session 0.8: its documents (``{id, val, expiration}``) are read and kept."""

from __future__ import annotations

import collections.abc as c
import datetime
import secrets
import typing as t

import flask_session
import pymongo
import pytest
from flask import Flask
from flask import session

from flask_serverside import Record
from flask_serverside import Session
from flask_serverside.testing import new_sid
from flask_serverside_mongodb import MongoDBStore

#: msgpack of ``{"user": "alice"}``, as Flask-Session 0.8 stores it.
ALICE = b"\x81\xa4user\xa5alice"


@pytest.fixture
def mongo_client(mongodb_server: t.Any) -> c.Iterator[pymongo.MongoClient[t.Any]]:
    client: pymongo.MongoClient[t.Any] = pymongo.MongoClient(
        mongodb_server.url, serverSelectionTimeoutMS=5000
    )
    yield client
    client.close()


@pytest.fixture
def database(mongo_client: pymongo.MongoClient[t.Any]) -> c.Iterator[str]:
    name = f"fs08_{secrets.token_hex(4)}"
    yield name
    mongo_client.drop_database(name)


def write_as_flask_session(collection: t.Any, store_id: str, val: bytes, lifetime: float) -> None:
    """Write a session exactly as Flask-Session 0.8's ``_upsert_session`` does (its
    ``datetime.utcnow()`` is a naive UTC datetime)."""
    utcnow = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    collection.update_one(
        {"id": store_id},
        {
            "$set": {
                "id": store_id,
                "val": val,
                "expiration": utcnow + datetime.timedelta(seconds=lifetime),
            }
        },
        True,
    )


def make_app(extension: t.Any, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="fs08", SESSION_TYPE="mongodb", **config)
    extension(app)

    @app.post("/login")
    def login() -> dict[str, t.Any]:
        session["user"] = "alice"
        session["cart"] = ["apple"]
        return {"ok": True}

    @app.post("/add")
    def add() -> dict[str, t.Any]:
        session["cart"] = [*session.get("cart", []), "pear"]
        return {"ok": True}

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"user": session.get("user"), "cart": session.get("cart")}

    return app


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Flask-Session 0.8's utcnow()
@pytest.mark.parametrize("hashed", [True, False], ids=["hashed-keys", "raw-keys"])
def test_sessions_of_flask_session_are_read_and_carried_on(
    mongo_client: pymongo.MongoClient[t.Any], database: str, hashed: bool
) -> None:
    config = {"SESSION_MONGODB": mongo_client, "SESSION_MONGODB_DB": database}
    old = make_app(flask_session.Session, **config)
    browser = old.test_client()
    browser.post("/login")
    assert browser.get("/read").get_json() == {"user": "alice", "cart": ["apple"]}
    document = mongo_client[database]["sessions"].find_one()
    assert document is not None and set(document) == {"_id", "id", "val", "expiration"}

    new = make_app(Session, SESSION_HASH_IDS=hashed, **config)
    cookie = browser.get_cookie("session")
    assert cookie is not None
    client = new.test_client()
    client.set_cookie("session", cookie.value)
    assert client.get("/read").get_json() == {"user": "alice", "cart": ["apple"]}
    client.post("/add")
    assert client.get("/read").get_json() == {"user": "alice", "cart": ["apple", "pear"]}
    assert mongo_client[database]["sessions"].count_documents({}) == 1
    key = new.extensions["serverside"].store_key(cookie.value)
    assert mongo_client[database]["sessions"].find_one({"id": "session:" + key}) is not None
    new.extensions["serverside"].close()
    if hashed:
        return  # moved to its hashed key: going back needs the compatibility mode
    # and back: the documents keep Flask-Session's fields, so a rollback still reads them
    assert browser.get("/read").get_json() == {"user": "alice", "cart": ["apple", "pear"]}


def test_a_document_in_flask_sessions_shape_supports_every_operation(
    mongo_client: pymongo.MongoClient[t.Any], database: str
) -> None:
    collection = mongo_client[database]["sessions"]
    store = MongoDBStore(collection)
    sid, other = new_sid(), new_sid()
    write_as_flask_session(collection, "session:" + sid, ALICE, 600)
    write_as_flask_session(collection, "session:" + other, ALICE, 600)

    assert store.load(sid) == Record(ALICE, None)
    assert store.load_and_touch(sid, 900) == Record(ALICE, None)
    assert store.touch(sid, 900) is True
    assert set(store.iter_sids()) == {sid, other} and store.count() == 2

    assert store.save_if(sid, b"new", 60, expected=None) is False  # a live record exists
    legacy = store.load(sid)
    assert store.save_if(sid, b"new", 60, expected=legacy, user_id="alice") is True
    assert store.save_if(sid, b"newer", 60, expected=legacy) is False  # now stale
    record = store.load(sid)
    assert record is not None and record.data == b"new" and record.version is not None
    assert store.user_sids("alice") == [sid]
    store.save(other, b"plain", 60)
    assert store.load(other) == Record(b"plain", t.cast(Record, store.load(other)).version)
    store.delete(sid)
    assert store.load(sid) is None and collection.count_documents({}) == 1


def test_an_expired_document_the_ttl_monitor_has_not_removed_is_never_returned(
    mongo_client: pymongo.MongoClient[t.Any], database: str
) -> None:
    # No TTL index at all: as if the server's monitor (once a minute) had not run yet.
    collection = mongo_client[database]["lagging"]
    collection.create_index("id", unique=True)
    store = MongoDBStore(collection, create_indexes=False)
    sid, live = new_sid(), new_sid()
    write_as_flask_session(collection, "session:" + sid, ALICE, -5)
    write_as_flask_session(collection, "session:" + live, ALICE, 600)
    assert collection.count_documents({}) == 2
    assert store.load(sid) is None
    assert store.load_and_touch(sid, 600) is None
    assert store.touch(sid, 600) is False
    assert list(store.iter_sids()) == [live] and store.count() == 1
    assert store.save_if(sid, b"fresh", 60, expected=None) is True  # replaces the dead one
    assert store.load(sid) is not None
    write_as_flask_session(collection, "session:" + sid, ALICE, -5)
    assert store.purge_expired() == 1
    assert collection.count_documents({}) == 1
