"""The conformance kit on moto's DynamoDB server: a client passed in (with the default refresh
interval, and refreshing on every read in one UpdateItem) and a resource, on a fake clock; and
Flask applications on each, on the real clock. (The client the store builds from boto3's
default session is used in test_dynamodb_config and test_dynamodb_faults.)"""

from __future__ import annotations

import collections.abc as c
import contextlib
import os
import secrets
import signal
import time
import typing as t

import boto3
import pytest

from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract
from flask_serverside_dynamodb import DynamoDBStore

if t.TYPE_CHECKING:
    from serverside_testservers import DynamoDBServer


@pytest.fixture(scope="module")
def dynamodb_client(dynamodb_server: DynamoDBServer) -> c.Iterator[t.Any]:
    client = boto3.client("dynamodb", **dynamodb_server.client_options)
    yield client
    client.close()


@pytest.fixture(scope="module")
def table(dynamodb_client: t.Any) -> str:
    """A table of this module's own, made by the store as Flask-Session would."""
    name = f"contract-{secrets.token_hex(4)}"
    DynamoDBStore(dynamodb_client, table=name).create_table()
    return name


class Clock:
    """A fake clock for the store: every expiry decision is the store's (moto never expires
    items), so the kit's expiry tests need no sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TestDynamoDB(StoreContract):
    native_expiry = True  # DynamoDB's TTL may delete expired items before a purge does

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def advance_time(self, clock: Clock) -> c.Callable[[float], None]:
        return clock.advance

    @pytest.fixture
    def store_factory(
        self, dynamodb_client: t.Any, table: str, clock: Clock
    ) -> c.Callable[[str], DynamoDBStore]:
        return lambda key_prefix: DynamoDBStore(
            dynamodb_client, table=table, key_prefix=key_prefix, create_table=False, clock=clock
        )


class TestDynamoDBRefreshingEveryRead(TestDynamoDB):
    """``load_and_touch`` as one ``UpdateItem`` with ``ReturnValues=ALL_NEW``."""

    @pytest.fixture
    def store_factory(
        self, dynamodb_client: t.Any, table: str, clock: Clock
    ) -> c.Callable[[str], DynamoDBStore]:
        return lambda key_prefix: DynamoDBStore(
            dynamodb_client,
            table=table,
            key_prefix=key_prefix,
            create_table=False,
            refresh_interval=0,
            clock=clock,
        )


class TestDynamoDBResource(TestDynamoDB):
    """A boto3 resource, whose client converts values itself (Flask-Session's form)."""

    @pytest.fixture
    def store_factory(
        self, dynamodb_server: DynamoDBServer, table: str, clock: Clock
    ) -> c.Callable[[str], DynamoDBStore]:
        resource = boto3.resource("dynamodb", **dynamodb_server.client_options)
        return lambda key_prefix: DynamoDBStore(
            resource, table=table, key_prefix=key_prefix, create_table=False, clock=clock
        )


class TestFlaskOnAResource(SessionFlowContract):
    """Flask-Session's configuration: a boto3 resource in SESSION_DYNAMODB."""

    @pytest.fixture
    def session_config(self, dynamodb_server: DynamoDBServer, table: str) -> dict[str, t.Any]:
        resource = boto3.resource("dynamodb", **dynamodb_server.client_options)
        return {
            "SESSION_TYPE": "dynamodb",
            "SESSION_DYNAMODB": resource,
            "SESSION_DYNAMODB_TABLE": table,
        }


class TestFlaskOnAClient(SessionFlowContract):
    @pytest.fixture
    def session_config(self, dynamodb_client: t.Any, table: str) -> dict[str, t.Any]:
        return {
            "SESSION_TYPE": "dynamodb",
            "SESSION_DYNAMODB": dynamodb_client,
            "SESSION_DYNAMODB_TABLE": table,
            "SESSION_DYNAMODB_TABLE_EXISTS": True,
        }

    @pytest.fixture
    def backend_dump(self, dynamodb_client: t.Any, table: str) -> c.Callable[[t.Any], bytes]:
        """Every item of the table, every attribute's name and value (what an export holds)."""

        def dump(app: t.Any) -> bytes:
            found = []
            for page in dynamodb_client.get_paginator("scan").paginate(TableName=table):
                for item in page["Items"]:
                    for name, value in sorted(item.items()):
                        (raw,) = value.values()
                        found.append(
                            name.encode() + (raw if isinstance(raw, bytes) else raw.encode())
                        )
            return b"".join(found)

        return dump


class TestFlaskRefreshingEveryRead(SessionFlowContract):
    """A read-only request is one ``UpdateItem`` (``ReturnValues=ALL_NEW``), on a resource."""

    @pytest.fixture
    def session_config(self, dynamodb_server: DynamoDBServer, table: str) -> dict[str, t.Any]:
        return {
            "SESSION_TYPE": "dynamodb",
            "SESSION_DYNAMODB": boto3.resource("dynamodb", **dynamodb_server.client_options),
            "SESSION_DYNAMODB_TABLE": table,
            "SESSION_DYNAMODB_TABLE_EXISTS": True,
            "SESSION_DYNAMODB_REFRESH_INTERVAL": 0,
        }


class FrozenServer:
    """A moto server of the test's own that ``down()`` freezes (SIGSTOP) and thaws: requests
    time out while its tables survive, as in a network partition."""

    def __init__(self, server: DynamoDBServer) -> None:
        self.server = server
        #: The client the store builds: boto3's default session, which the factory points
        #: at this server, with short timeouts.
        self.config = {
            "SESSION_TYPE": "dynamodb",
            "SESSION_DYNAMODB_TABLE": "outage",
            "SESSION_DYNAMODB_CLIENT_TIMEOUT": 0.3,
        }

    @contextlib.contextmanager
    def down(self) -> c.Iterator[None]:
        os.kill(self.server.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.server.pid, signal.SIGCONT)


class TestFlaskOnTheDefaultSession(SessionFlowContract):
    """The client the store builds from boto3's default session (the fixtures point it at
    their server); for the kit's fault test, on a server of its own."""

    @pytest.fixture
    def store_outage(self, make_dynamodb_server: c.Callable[..., DynamoDBServer]) -> FrozenServer:
        return FrozenServer(make_dynamodb_server())

    @pytest.fixture
    def session_config(self, dynamodb_server: DynamoDBServer, table: str) -> dict[str, t.Any]:
        return {"SESSION_TYPE": "dynamodb", "SESSION_DYNAMODB_TABLE": table}
