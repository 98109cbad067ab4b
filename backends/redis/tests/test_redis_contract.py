"""The conformance kit on every Redis topology: a server, a 3-master Cluster, a Sentinel set,
and a server without GETEX (the Lua fallback)."""

from __future__ import annotations

import collections.abc as c
import contextlib
import typing as t

import pytest
import redis
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from flask_serverside import ClientHandle
from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract
from flask_serverside_redis import RedisStore

if t.TYPE_CHECKING:
    from serverside_testservers import RedisServer


@pytest.fixture(scope="module")
def redis_client(redis_server) -> c.Iterator[redis.Redis]:
    client = redis.Redis(redis_server.host, redis_server.port)
    yield client
    client.close()


@pytest.fixture(scope="module")
def cluster_client(redis_cluster) -> c.Iterator[RedisCluster]:
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster.startup_nodes])
    yield client
    client.close()


@pytest.fixture(scope="module")
def sentinel_master(redis_sentinel) -> c.Iterator[redis.Redis]:
    sentinel = Sentinel(redis_sentinel.sentinels, socket_timeout=2)
    client = sentinel.master_for(redis_sentinel.service_name, socket_timeout=2)
    yield client
    client.close()
    for sentinel_client in sentinel.sentinels:
        sentinel_client.close()


def sentinel_url(sentinel) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
    return f"redis+sentinel://{hosts}/{sentinel.service_name}"


def cluster_url(cluster) -> str:
    return "redis+cluster://" + ",".join(f"{host}:{port}" for host, port in cluster.startup_nodes)


@pytest.fixture
def url_stores() -> c.Iterator[c.Callable[[str, str], RedisStore]]:
    """Stores built from URLs (owning their clients), closed after the test."""
    made: list[RedisStore] = []

    def make(url: str, key_prefix: str) -> RedisStore:
        store = RedisStore.from_url(url, key_prefix=key_prefix)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


class TestRedisServer(StoreContract):
    @pytest.fixture
    def store_factory(self, redis_client):
        return lambda key_prefix: RedisStore(redis_client, key_prefix=key_prefix)


class TestRedisServerWithoutGetex(StoreContract):
    """A server where GETEX is unknown, as on Redis before 6.2."""

    @pytest.fixture
    def store_factory(self, make_redis_server, url_stores):
        server: RedisServer = make_redis_server(extra_args=["--rename-command", "GETEX", ""])
        return lambda key_prefix: url_stores(server.url, key_prefix)


class TestRedisCluster(StoreContract):
    @pytest.fixture
    def store_factory(self, redis_cluster, url_stores):
        return lambda key_prefix: url_stores(cluster_url(redis_cluster), key_prefix)


class TestRedisSentinel(StoreContract):
    @pytest.fixture
    def store_factory(self, sentinel_master):
        return lambda key_prefix: RedisStore(sentinel_master, key_prefix=key_prefix)


class TestFlaskOnRedisServer(SessionFlowContract):
    """The seeds' configuration: SESSION_TYPE = "redis" and a client in SESSION_REDIS."""

    @pytest.fixture
    def session_config(self, redis_client):
        return {"SESSION_TYPE": "redis", "SESSION_REDIS": redis_client}

    @pytest.fixture
    def backend_dump(self, redis_client):
        """Every key of the server and its value, as DUMP serializes it (what an RDB holds)."""

        def dump(app):
            return b"".join(
                key + (redis_client.dump(key) or b"") for key in redis_client.scan_iter(count=1000)
            )

        return dump


class StoppedRedis:
    """A Redis server of the test's own, stopped for the outage; its data is saved first and
    loaded again when it starts (the test servers keep none on their own)."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.config = {"SESSION_TYPE": server.url}

    @contextlib.contextmanager
    def down(self) -> c.Iterator[None]:
        self.server.execute("SAVE")
        self.server.stop()
        try:
            yield
        finally:
            self.server.start()


class TestFlaskOnRedisUrl(SessionFlowContract):
    @pytest.fixture
    def session_config(self, redis_server):
        return {"SESSION_TYPE": redis_server.url}

    @pytest.fixture
    def store_outage(self, make_redis_server) -> StoppedRedis:
        return StoppedRedis(make_redis_server())


class TestFlaskOnRedisCluster(SessionFlowContract):
    @pytest.fixture
    def session_config(self, redis_cluster):
        return {"SESSION_TYPE": cluster_url(redis_cluster)}


class TestFlaskOnRedisClusterClient(SessionFlowContract):
    @pytest.fixture
    def session_config(self, cluster_client):
        return {"SESSION_TYPE": "redis", "SESSION_REDIS": cluster_client}


class TestFlaskOnRedisSentinel(SessionFlowContract):
    @pytest.fixture
    def session_config(self, sentinel_master):
        return {"SESSION_TYPE": "redis", "SESSION_REDIS": sentinel_master}


class TestFlaskOnRedisSentinelUrl(SessionFlowContract):
    @pytest.fixture
    def session_config(self, redis_sentinel):
        return {"SESSION_TYPE": sentinel_url(redis_sentinel)}


class TestRedisServerCompat(StoreContract):
    """The compatibility write mode: values without header, SHA-1 versions."""

    identical_saves_keep_version = True

    @pytest.fixture
    def store_factory(self, redis_client):
        return lambda key_prefix: RedisStore(redis_client, key_prefix=key_prefix, compat=True)


class TestRedisClusterCompat(StoreContract):
    identical_saves_keep_version = True

    @pytest.fixture
    def store_factory(self, redis_cluster):
        def make(key_prefix: str) -> RedisStore:
            client = RedisCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster.startup_nodes]
            )
            return RedisStore(ClientHandle.built(client), key_prefix=key_prefix, compat=True)

        return make


class TestFlaskOnRedisCompat(SessionFlowContract):
    @pytest.fixture
    def session_config(self, redis_client):
        return {
            "SESSION_TYPE": "redis",
            "SESSION_REDIS": redis_client,
            "SESSION_COMPAT_FLASK_SESSION": True,
        }
