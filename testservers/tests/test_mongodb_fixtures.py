"""MongoDB fixtures: mongod, the URL from the environment, or the mongoeco stand-in."""

from __future__ import annotations

import collections.abc as c
import os

import pytest

from serverside_testservers import ExternalMongoDB
from serverside_testservers import MongoDBServer
from serverside_testservers import hello_ok
from serverside_testservers.mongodb import AnyMongoDB
from serverside_testservers.mongodb import mongodb_backend
from serverside_testservers.mongodb import shared_mongodb_server


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_shared_server_answers_hello(mongodb_server: AnyMongoDB) -> None:
    assert mongodb_server.url.startswith("mongodb://")
    assert hello_ok(mongodb_server.host, mongodb_server.port)
    if mongodb_server.backend != "external":
        assert mongodb_server.url == (
            f"mongodb://127.0.0.1:{mongodb_server.port}/?directConnection=true"
        )


def test_shared_server_with_pymongo(mongodb_server: AnyMongoDB) -> None:
    pymongo = pytest.importorskip("pymongo", reason="pymongo not installed: no round trip")
    with pymongo.MongoClient(mongodb_server.url, serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1.0
        collection = client.testservers.sessions
        collection.create_index("sid", unique=True)
        collection.update_one({"sid": "a"}, {"$set": {"v": b"data"}}, upsert=True)
        assert collection.find_one({"sid": "a"})["v"] == b"data"
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            collection.insert_one({"sid": "a"})
        collection.drop()


def test_stop_and_restart_on_the_same_port(
    make_mongodb_server: c.Callable[[], MongoDBServer],
) -> None:
    server = make_mongodb_server()
    other = make_mongodb_server()
    assert server.port != other.port
    port, pid = server.port, server.pid
    pymongo = pytest.importorskip("pymongo")
    with pymongo.MongoClient(server.url, serverSelectionTimeoutMS=5000) as client:
        client.testservers.kept.insert_one({"_id": "before stop"})
    server.stop()
    assert pid_gone(pid) and not server.is_running()
    server.start()
    assert server.port == port and hello_ok(server.host, server.port)
    with pymongo.MongoClient(server.url, serverSelectionTimeoutMS=5000) as client:
        assert client.testservers.kept.find_one({"_id": "before stop"}) is not None
    crashed = server.pid
    server.kill()
    assert pid_gone(crashed)
    server.start()
    assert hello_ok(server.host, server.port)


def test_external_url_is_used_but_not_owned(
    mongodb_server: AnyMongoDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mongodb_backend() == "mongod":
        pytest.skip("a mongod on PATH takes precedence over SERVERSIDE_MONGODB_URL")
    url = f"mongodb://user:pw@{mongodb_server.host}:{mongodb_server.port}/?directConnection=true"
    monkeypatch.setenv("SERVERSIDE_MONGODB_URL", url)
    external = shared_mongodb_server()
    assert isinstance(external, ExternalMongoDB)
    assert (external.host, external.port, external.url) == (
        mongodb_server.host,
        mongodb_server.port,
        url,
    )
    assert external.is_running() and not external.supports_restart
    for action in (external.stop, external.kill, external.start):
        with pytest.raises(pytest.skip.Exception, match="SERVERSIDE_MONGODB_URL"):
            action()
