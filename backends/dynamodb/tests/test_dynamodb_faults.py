"""Faults on a real (moto) server that the test stops: an application starts while DynamoDB is
down and creates its table once it is back; a server that goes away makes every operation
raise StoreUnavailable (quickly, with the client the store builds), and a view that needs the
session answer 503."""

from __future__ import annotations

import time
import typing as t

import pytest
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside import StoreUnavailable
from flask_serverside import get_state
from flask_serverside.testing import new_sid
from flask_serverside_dynamodb import DynamoDBStore
from flask_serverside_dynamodb import default_client

if t.TYPE_CHECKING:
    import collections.abc as c

    from serverside_testservers import DynamoDBServer


@pytest.fixture
def server(
    make_dynamodb_server: c.Callable[..., DynamoDBServer], monkeypatch: pytest.MonkeyPatch
) -> DynamoDBServer:
    server = make_dynamodb_server()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.url)
    return server


def test_down_at_start_up_the_table_is_created_by_the_first_operation_that_reaches_it(
    server: DynamoDBServer,
) -> None:
    server.stop()
    store = DynamoDBStore(default_client(0.5), table="late", owns_client=True)
    try:
        for _ in range(2):
            with pytest.raises(StoreUnavailable):
                store.load(new_sid())
        server.start()
        sid = new_sid()
        store.save(sid, b"data", 60)
        record = store.load(sid)
        assert record is not None and record.data == b"data"
        assert server.table_names() == ["late"]
    finally:
        store.close()


def test_a_server_that_went_away_is_unavailable_quickly_and_a_view_answers_503(
    server: DynamoDBServer,
) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k",
        SESSION_TYPE="dynamodb",
        SESSION_DYNAMODB_TABLE="gone",
        SESSION_DYNAMODB_CLIENT_TIMEOUT=0.5,
    )
    Session(app)

    @app.post("/login")
    def login() -> str:
        session["user"] = "alice"
        return "ok"

    @app.get("/public")
    def public() -> str:
        return "no session here"

    client = app.test_client()
    assert client.post("/login").status_code == 200
    store = DynamoDBStore(default_client(0.5), table="gone", owns_client=True)
    sid = new_sid()
    store.save(sid, b"data", 60)
    server.kill()
    operations: list[c.Callable[[], object]] = [
        lambda: store.load(sid),
        lambda: store.save(sid, b"x", 60),
        lambda: store.save_if(sid, b"x", 60, expected=None),
        lambda: store.load_and_touch(sid, 60),
        lambda: store.delete(sid),
        lambda: store.count(),
    ]
    for operation in operations:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="DynamoDB is unavailable"):
            operation()
        assert time.monotonic() - started < 5  # 3 attempts, no minute-long default waits
    store.close()
    response = client.post("/login")
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert client.get("/public").status_code == 200
    get_state(app).close()
