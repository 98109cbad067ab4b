"""Configuration on moto's server: every form of SESSION_DYNAMODB, the table keys, the table
and TTL the store creates, boto3's default session (its timeouts, the one log line, no region),
and what is refused."""

from __future__ import annotations

import logging
import secrets
import typing as t

import boto3
import pytest
from flask import Flask

from flask_serverside import ConfigurationError
from flask_serverside import Session
from flask_serverside import StoreError
from flask_serverside import StoreSettings
from flask_serverside import get_state
from flask_serverside.registry import resolve_store
from flask_serverside.testing import new_sid
from flask_serverside_dynamodb import DynamoDBStore

if t.TYPE_CHECKING:
    import collections.abc as c

    from serverside_testservers import DynamoDBServer


def settings(**config: t.Any) -> StoreSettings:
    return StoreSettings(name="dynamodb", config=config, key_prefix="cfg:")


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(4)}"


@pytest.fixture
def stores() -> c.Iterator[list[DynamoDBStore]]:
    made: list[DynamoDBStore] = []
    yield made
    for store in made:
        store.close()


@pytest.fixture
def client(dynamodb_server: DynamoDBServer) -> c.Iterator[t.Any]:
    client = boto3.client("dynamodb", **dynamodb_server.client_options)
    yield client
    client.close()


def build(stores: list[DynamoDBStore], **config: t.Any) -> DynamoDBStore:
    stores.append(DynamoDBStore.from_settings(settings(**config)))
    return stores[-1]


def test_entry_point() -> None:
    assert resolve_store("dynamodb")[1] is DynamoDBStore


def test_the_first_operation_creates_the_table_as_flask_session_with_its_ttl_on(
    client: t.Any, stores: list[DynamoDBStore]
) -> None:
    table = unique("created")
    store = build(stores, SESSION_DYNAMODB=client, SESSION_DYNAMODB_TABLE=table)
    assert store.table == table and store.key_prefix == "cfg:"
    assert table not in client.list_tables()["TableNames"]  # start-up never connects
    assert store.load(new_sid()) is None
    described = client.describe_table(TableName=table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}
    build(stores, SESSION_DYNAMODB=client, SESSION_DYNAMODB_TABLE=table).load("x")  # exists


def test_an_item_has_flask_sessions_shape_and_its_expiry_is_the_ttl_attribute(
    client: t.Any, stores: list[DynamoDBStore]
) -> None:
    table = unique("shape")
    store = build(stores, SESSION_DYNAMODB=client, SESSION_DYNAMODB_TABLE=table)
    store.save("sid", b"\x00data", 600, user_id="alice")
    item = client.get_item(TableName=table, Key={"id": {"S": "cfg:sid"}})["Item"]
    assert set(item) == {"id", "val", "expiration", "version", "user"}
    assert item["val"] == {"B": b"\x00data"} and item["user"] == {"S": "alice"}
    assert item["expiration"]["N"].isdigit()  # whole seconds, as DynamoDB's TTL reads them
    store.save("sid", b"data", 600)  # no user any more: the attribute goes
    assert "user" not in client.get_item(TableName=table, Key={"id": {"S": "cfg:sid"}})["Item"]


def test_an_item_that_is_not_a_session_reads_as_none(
    client: t.Any, stores: list[DynamoDBStore]
) -> None:
    table = unique("odd")
    store = build(stores, SESSION_DYNAMODB=client, SESSION_DYNAMODB_TABLE=table)
    store.create_table()
    client.put_item(TableName=table, Item={"id": {"S": "cfg:no-expiry"}, "val": {"B": b"x"}})
    client.put_item(TableName=table, Item={"id": {"S": "cfg:no-data"}, "expiration": {"N": "9e9"}})
    assert store.load("no-expiry") is None
    assert store.load("no-data") is None


def test_a_table_that_cannot_be_created_is_logged_once_and_not_tried_again(
    client: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = DynamoDBStore(client, table="")  # refused by botocore: not an outage
    with caplog.at_level(logging.ERROR, logger="flask_serverside.dynamodb"):
        for _ in range(2):
            with pytest.raises(StoreError, match="DynamoDB failed to load a session"):
                store.load(new_sid())
    (record,) = caplog.records  # creating it was not tried again
    assert "creating the session table '' failed" in record.getMessage()
    assert "SESSION_DYNAMODB_TABLE_EXISTS = True" in record.getMessage()


def test_with_the_table_said_to_exist_a_missing_one_is_reported_at_use(
    client: t.Any, stores: list[DynamoDBStore]
) -> None:
    table = unique("missing")
    store = build(
        stores,
        SESSION_DYNAMODB=client,
        SESSION_DYNAMODB_TABLE=table,
        SESSION_DYNAMODB_TABLE_EXISTS=True,
    )
    assert table not in client.list_tables()["TableNames"]
    with pytest.raises(StoreError, match="SESSION_DYNAMODB_TABLE_EXISTS = False"):
        store.load(new_sid())


def test_flask_sessions_documented_table_name_key_is_read(
    client: t.Any, stores: list[DynamoDBStore]
) -> None:
    table = unique("named")
    assert build(stores, SESSION_DYNAMODB=client, SESSION_DYNAMODB_TABLE_NAME=table).table == table
    with pytest.raises(ConfigurationError, match="name different tables"):
        build(
            stores,
            SESSION_DYNAMODB=client,
            SESSION_DYNAMODB_TABLE="one",
            SESSION_DYNAMODB_TABLE_NAME="other",
        )


def test_without_SESSION_DYNAMODB_the_default_session_is_used_and_logged_once(
    dynamodb_server: DynamoDBServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_server.url)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k",
        SESSION_TYPE="dynamodb",
        SESSION_DYNAMODB_TABLE=unique("default"),
        SESSION_DYNAMODB_CLIENT_TIMEOUT=0.5,
    )
    with caplog.at_level(logging.INFO, logger="flask_serverside.dynamodb"):
        Session(app)
        app.test_client().get("/")
    lines = [r.getMessage() for r in caplog.records if r.name == "flask_serverside.dynamodb"]
    assert lines == [
        "SESSION_DYNAMODB is not set: using boto3's default session, region us-east-1,"
        f" endpoint {dynamodb_server.url}"
    ]
    store = get_state(app).store
    client = store._handle.client
    assert client.meta.config.connect_timeout == client.meta.config.read_timeout == 0.5
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert store._handle.owned  # the store built it: closing the store closes it
    get_state(app).close()


def test_a_client_passed_in_is_not_closed(client: t.Any, stores: list[DynamoDBStore]) -> None:
    store = build(stores, SESSION_DYNAMODB=client, SESSION_DYNAMODB_TABLE=unique("open"))
    assert not store._handle.owned
    store.close()
    assert "TableNames" in client.list_tables()  # still usable


def test_without_a_region_the_default_session_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    with pytest.raises(ConfigurationError, match="AWS_DEFAULT_REGION"):
        DynamoDBStore.from_settings(settings())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SESSION_DYNAMODB": "http://localhost:8000"}, "must be boto3.resource"),
        ({"SESSION_DYNAMODB": object()}, "must be boto3.resource"),
        ({"SESSION_DYNAMODB_TABLE_EXISTS": "no"}, "SESSION_DYNAMODB_TABLE_EXISTS must be"),
        ({"SESSION_DYNAMODB_TABLE": ""}, "SESSION_DYNAMODB_TABLE must be"),
        ({"SESSION_DYNAMODB_CLIENT_TIMEOUT": -1}, "SESSION_DYNAMODB_CLIENT_TIMEOUT must be"),
        ({"SESSION_DYNAMODB_REFRESH_INTERVAL": 1.5}, "SESSION_DYNAMODB_REFRESH_INTERVAL must"),
    ],
)
def test_configuration_errors(config: dict[str, t.Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DynamoDBStore.from_settings(settings(**config))


def test_another_services_client_is_refused(dynamodb_server: DynamoDBServer) -> None:
    s3 = boto3.client("s3", **dynamodb_server.client_options)
    try:
        with pytest.raises(ConfigurationError, match="must be boto3.resource"):
            DynamoDBStore.from_settings(settings(SESSION_DYNAMODB=s3))
    finally:
        s3.close()
