"""What reaches MongoDB: the document of a session, and the commands each request sends."""

from __future__ import annotations

import collections.abc as c
import datetime
import secrets
import typing as t

import bson
import pymongo
import pytest
from flask import Flask
from flask import session
from pymongo import monitoring

from flask_serverside import Session
from flask_serverside import revoke_user_sessions


class Commands(monitoring.CommandListener):
    """Records the commands a client sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, t.Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def names(self) -> list[str]:
        return [next(iter(command)) for command in self.sent]


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
def app(mongodb_server: t.Any, commands: Commands) -> c.Iterator[Flask]:
    client: pymongo.MongoClient[t.Any] = pymongo.MongoClient(
        mongodb_server.url, event_listeners=[commands], tz_aware=False
    )
    database = f"documents_{secrets.token_hex(4)}"
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="documents",
        SESSION_TYPE="mongodb",
        SESSION_MONGODB=client,
        SESSION_MONGODB_DB=database,
    )
    Session(app)

    @app.post("/login/<user>")
    def login(user: str) -> dict[str, t.Any]:
        session["_user_id"] = user
        return {"ok": True}

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"user": session.get("_user_id")}

    yield app
    app.extensions["serverside"].close()
    client.drop_database(database)
    client.close()


def collection(app: Flask) -> t.Any:
    return app.extensions["serverside"].store.collection


def test_one_document_per_session_in_flask_sessions_shape(app: Flask) -> None:
    browser = app.test_client()
    before = datetime.datetime.now(datetime.timezone.utc)
    browser.post("/login/alice")
    aware = collection(app).with_options(codec_options=bson.CodecOptions(tz_aware=True))
    [document] = aware.find()
    assert set(document) == {"_id", "id", "val", "expiration", "version", "user"}
    assert document["id"].startswith("session:") and document["user"] == "alice"
    assert isinstance(document["val"], bytes) and isinstance(document["version"], int)
    lifetime = app.permanent_session_lifetime
    assert document["expiration"].tzinfo is not None  # and right, from a naive client too
    assert before + lifetime - datetime.timedelta(seconds=5) < document["expiration"]
    assert document["expiration"] < before + lifetime + datetime.timedelta(seconds=5)
    indexes = {index["name"]: index for index in collection(app).list_indexes()}
    assert indexes["user_1"]["key"] == {"user": 1}


def test_a_read_only_request_is_one_command_that_sets_the_expiry_alone(
    app: Flask, commands: Commands
) -> None:
    browser = app.test_client()
    browser.post("/login/alice")
    version = collection(app).find_one()["version"]
    commands.sent.clear()
    assert browser.get("/read").get_json() == {"user": "alice"}
    assert commands.names() == ["findAndModify"]
    [command] = commands.sent
    assert list(command["update"]) == ["$set"] and list(command["update"]["$set"]) == ["expiration"]
    assert command["fields"] == {"_id": False, "val": True, "version": True}
    assert set(command["query"]) == {"id", "expiration"}
    assert collection(app).find_one()["version"] == version


def test_a_write_is_one_conditional_update_after_the_load(app: Flask, commands: Commands) -> None:
    browser = app.test_client()
    browser.post("/login/alice")
    commands.sent.clear()
    browser.post("/login/bob")
    assert commands.names() == ["findAndModify", "update"]
    [update] = commands.sent[1]["updates"]
    assert set(update["q"]) == {"id", "version", "expiration"}
    assert not update.get("upsert")


def test_log_out_everywhere_through_the_user_index(app: Flask) -> None:
    phones = [app.test_client() for _ in range(3)]
    for phone in phones[:2]:
        phone.post("/login/alice")
    phones[2].post("/login/bob")
    assert revoke_user_sessions("alice", app) == 2
    assert [phone.get("/read").get_json()["user"] for phone in phones] == [None, None, "bob"]
