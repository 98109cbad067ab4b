"""The conformance kit on a MongoDB server started by the test session (a real ``mongod``
when one is on PATH, else the mongoeco wire-protocol stand-in), over TCP with pymongo."""

from __future__ import annotations

import collections.abc as c
import contextlib
import typing as t

import bson
import pymongo
import pytest

from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract
from flask_serverside_mongodb import MongoDBStore

DATABASE = "serverside_contract"


@pytest.fixture(scope="module")
def mongo_client(mongodb_server: t.Any) -> c.Iterator[pymongo.MongoClient[t.Any]]:
    """One client for the module, as an application would hold one."""
    client: pymongo.MongoClient[t.Any] = pymongo.MongoClient(
        mongodb_server.url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    yield client
    client.close()


class TestMongoDBStore(StoreContract):
    """The store as configured by default: it creates its indexes, TTL index included."""

    @pytest.fixture
    def store_factory(
        self, mongo_client: pymongo.MongoClient[t.Any]
    ) -> c.Callable[[str], MongoDBStore]:
        def make(key_prefix: str) -> MongoDBStore:
            return MongoDBStore(mongo_client[DATABASE]["sessions"], key_prefix=key_prefix)

        return make

    #: The TTL monitor may delete expired documents before purge_expired counts them (the
    #: stand-in does so at once); TestMongoDBStoreWithoutTTLIndex checks the exact count.
    native_expiry = True


class TestMongoDBStoreWithoutTTLIndex(StoreContract):
    """A collection without the TTL index, as with ``SESSION_MONGODB_CREATE_INDEXES = False``
    and indexes made by hand, or a TTL monitor that lags: expired documents stay in the
    collection, so every read must filter them out itself, and purge deletes them."""

    @pytest.fixture
    def store_factory(
        self, mongo_client: pymongo.MongoClient[t.Any]
    ) -> c.Callable[[str], MongoDBStore]:
        collection = mongo_client[DATABASE]["sessions_without_ttl"]
        collection.create_index("id", unique=True)
        collection.create_index("user", sparse=True)

        def make(key_prefix: str) -> MongoDBStore:
            return MongoDBStore(collection, key_prefix=key_prefix, create_indexes=False)

        return make


class TestMongoDBSessionFlow(SessionFlowContract):
    """The configuration Flask-Session documents: a ``MongoClient`` in ``SESSION_MONGODB``."""

    @pytest.fixture
    def session_config(self, mongo_client: pymongo.MongoClient[t.Any]) -> dict[str, t.Any]:
        return {
            "SESSION_TYPE": "mongodb",
            "SESSION_MONGODB": mongo_client,
            "SESSION_MONGODB_DB": DATABASE,
            "SESSION_MONGODB_COLLECT": "flow_sessions",
        }

    @pytest.fixture
    def backend_dump(self, mongo_client: pymongo.MongoClient[t.Any]) -> t.Any:
        """Every document of the collection, BSON-encoded as a database dump holds it."""

        def dump(app: t.Any) -> bytes:
            collection = mongo_client[DATABASE]["flow_sessions"]
            return b"".join(bson.encode(document) for document in collection.find())

        return dump

    @pytest.fixture
    def store_outage(self, make_mongodb_server: t.Any) -> StoppedMongoDB:
        return StoppedMongoDB(make_mongodb_server())


class StoppedMongoDB:
    """A MongoDB server of the test's own (its data kept across a restart), stopped for the
    outage; the store builds its client from the URL."""

    def __init__(self, server: t.Any) -> None:
        self.server = server
        self.config = {"SESSION_TYPE": server.url, "SESSION_MONGODB_DB": DATABASE}

    @contextlib.contextmanager
    def down(self) -> c.Iterator[None]:
        self.server.stop()
        try:
            yield
        finally:
            self.server.start()


class TestMongoDBStoreCompat(StoreContract):
    """The compatibility write mode: conditional saves also compare ``val``."""

    @pytest.fixture
    def store_factory(
        self, mongo_client: pymongo.MongoClient[t.Any]
    ) -> c.Callable[[str], MongoDBStore]:
        def make(key_prefix: str) -> MongoDBStore:
            collection = mongo_client[DATABASE]["sessions"]
            return MongoDBStore(collection, key_prefix=key_prefix, compat=True)

        return make

    native_expiry = True


class TestMongoDBSessionFlowCompat(SessionFlowContract):
    @pytest.fixture
    def session_config(self, mongo_client: pymongo.MongoClient[t.Any]) -> dict[str, t.Any]:
        return {
            "SESSION_TYPE": "mongodb",
            "SESSION_MONGODB": mongo_client,
            "SESSION_MONGODB_DB": DATABASE,
            "SESSION_COMPAT_FLASK_SESSION": True,
        }
