"""Moving from Flask-Session 0.8: an application configured for its ``dynamodb`` type exactly
as its documentation says (keys only) runs unchanged when only the import changes; and the
sessions Flask-Session 0.8 wrote into the table carry over, cookie and all."""

from __future__ import annotations

import secrets
import typing as t

import boto3
import flask_session
import pytest
from flask import Flask
from flask import session

import flask_serverside

if t.TYPE_CHECKING:
    from serverside_testservers import DynamoDBServer

# Flask-Session 0.8's DynamoDB backend calls datetime.utcnow(), deprecated since Python 3.12.
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow:DeprecationWarning")


def make_app(extension: type, config: dict[str, t.Any]) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "change me"
    app.config.update(config)
    extension(app)

    @app.post("/login")
    def login() -> str:
        session["user"] = "alice"
        session["cart"] = ["apple", (1, 2)]
        return "logged in"

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"user": session.get("user", "anonymous"), "cart": session.get("cart")}

    @app.post("/logout")
    def logout() -> str:
        session.clear()
        return "logged out"

    return app


@pytest.mark.parametrize(
    "extension", [flask_session.Session, flask_serverside.Session], ids=["Flask-Session", "ours"]
)
def test_the_documented_configuration_works_with_only_the_import_changed(
    extension: type, dynamodb_server: DynamoDBServer
) -> None:
    # Flask-Session's configuration reference, "Dynamodb": a boto3 resource.
    config = {
        "SESSION_TYPE": "dynamodb",
        "SESSION_DYNAMODB": boto3.resource("dynamodb", **dynamodb_server.client_options),
    }
    app = make_app(extension, config)
    browser = app.test_client()
    assert browser.get("/read").get_json()["user"] == "anonymous"
    assert browser.post("/login").text == "logged in"
    assert browser.get_cookie("session") is not None
    assert browser.get("/read").get_json() == {"user": "alice", "cart": ["apple", [1, 2]]}
    assert app.test_client().get("/read").get_json()["user"] == "anonymous"  # another browser
    assert browser.post("/logout").text == "logged out"
    assert browser.get("/read").get_json()["user"] == "anonymous"
    assert "Sessions" in dynamodb_server.table_names()  # Flask-Session's default table
    if extension is flask_serverside.Session:
        assert browser.get_cookie("session") is None
        flask_serverside.get_state(app).close()


@pytest.mark.parametrize("form", ["msgpack", "json"])
def test_a_flask_session_08_session_carries_over_to_a_hashed_key(
    dynamodb_server: DynamoDBServer, form: str
) -> None:
    resource = boto3.resource("dynamodb", **dynamodb_server.client_options)
    config = {
        "SESSION_TYPE": "dynamodb",
        "SESSION_DYNAMODB": resource,
        "SESSION_DYNAMODB_TABLE": f"moved-{secrets.token_hex(4)}",
        "SESSION_SERIALIZATION_FORMAT": form,
    }
    old = make_app(flask_session.Session, config)
    browser = old.test_client()
    browser.post("/login")
    cookie = browser.get_cookie("session")
    assert cookie is not None
    table = resource.Table(config["SESSION_DYNAMODB_TABLE"])
    (item,) = table.scan()["Items"]
    assert item["id"] == f"session:{cookie.value}" and "version" not in item

    new = make_app(flask_serverside.Session, config)
    moved = new.test_client()
    moved.set_cookie("session", cookie.value)
    assert moved.get("/read").get_json() == {"user": "alice", "cart": ["apple", [1, 2]]}
    (item,) = table.scan()["Items"]  # moved to the hash of its id by that first request
    assert cookie.value not in item["id"] and "version" in item
    assert moved.get("/read").get_json()["user"] == "alice"
    moved.post("/logout")
    assert table.scan()["Items"] == []
    flask_serverside.get_state(new).close()


def test_without_hashed_ids_a_flask_session_item_is_versioned_by_its_first_write(
    dynamodb_server: DynamoDBServer,
) -> None:
    """The conditional save of an item Flask-Session wrote (it has no version) in place."""
    resource = boto3.resource("dynamodb", **dynamodb_server.client_options)
    config = {
        "SESSION_TYPE": "dynamodb",
        "SESSION_DYNAMODB": resource,
        "SESSION_DYNAMODB_TABLE": f"in-place-{secrets.token_hex(4)}",
        "SESSION_HASH_IDS": False,
    }
    old = make_app(flask_session.Session, config)
    browser = old.test_client()
    browser.post("/login")
    cookie = browser.get_cookie("session")
    assert cookie is not None

    new = make_app(flask_serverside.Session, config)
    moved = new.test_client()
    moved.set_cookie("session", cookie.value)
    assert moved.get("/read").get_json()["user"] == "alice"
    table = resource.Table(config["SESSION_DYNAMODB_TABLE"])
    (item,) = table.scan()["Items"]
    assert item["id"] == f"session:{cookie.value}" and "version" not in item  # as it was
    with new.test_request_context(headers={"Cookie": f"session={cookie.value}"}) as ctx:
        ctx.session["theme"] = "dark"
        new.session_interface.save_session(new, ctx.session, new.response_class())
    (item,) = table.scan()["Items"]
    assert item["id"] == f"session:{cookie.value}" and "version" in item
    assert moved.get("/read").get_json()["user"] == "alice"
    flask_serverside.get_state(new).close()
