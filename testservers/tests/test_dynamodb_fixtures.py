"""DynamoDB fixtures: moto's server, shared and from the factory, and the dummy AWS
environment they set (requests over plain HTTP; boto3 only where it is installed)."""

from __future__ import annotations

import collections.abc as c
import os

import pytest

from serverside_testservers import DynamoDBServer
from serverside_testservers import dynamodb_request

TABLE = {
    "TableName": "fixture-check",
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_shared_server_answers_on_loopback(dynamodb_server: DynamoDBServer) -> None:
    assert dynamodb_server.host == "127.0.0.1"
    assert dynamodb_server.url == f"http://127.0.0.1:{dynamodb_server.port}"
    assert dynamodb_server.is_running()
    reply = dynamodb_request(dynamodb_server.host, dynamodb_server.port, "ListTables", {})
    assert isinstance(reply["TableNames"], list)


def test_the_environment_holds_dummy_credentials_only(dynamodb_server: DynamoDBServer) -> None:
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert "AWS_PROFILE" not in os.environ
    assert os.environ["AWS_ENDPOINT_URL"] == dynamodb_server.url
    assert dynamodb_server.client_options["endpoint_url"] == dynamodb_server.url


def test_boto3s_default_session_reaches_the_server(dynamodb_server: DynamoDBServer) -> None:
    boto3 = pytest.importorskip("boto3")
    client = boto3.client("dynamodb")  # no endpoint, no credentials: the environment's
    try:
        assert client.meta.endpoint_url == dynamodb_server.url
        assert "TableNames" in client.list_tables()
    finally:
        client.close()


def test_with_boto3(dynamodb_server: DynamoDBServer) -> None:
    boto3 = pytest.importorskip("boto3")
    client = boto3.client("dynamodb", **dynamodb_server.client_options)
    try:
        client.put_item(TableName="absent", Item={"id": {"S": "x"}})
    except client.exceptions.ResourceNotFoundException:
        pass
    else:
        pytest.fail("moto accepted an item for a table that does not exist")
    finally:
        client.close()


def test_stop_loses_tables_and_restarts_on_the_same_port(
    make_dynamodb_server: c.Callable[..., DynamoDBServer],
) -> None:
    server = make_dynamodb_server()
    assert os.environ["AWS_ENDPOINT_URL"] == server.url
    port, pid = server.port, server.pid
    server.request("CreateTable", TABLE)
    assert server.table_names() == ["fixture-check"]
    server.stop()
    assert pid_gone(pid) and not server.is_running()
    with pytest.raises(OSError):
        server.table_names()
    server.start()
    assert server.port == port and server.pid != pid
    assert server.table_names() == []  # kept in memory only
