"""The conformance kit on real cachelib caches: files in a temporary directory, Redis and
memcached servers started by the tests (memcached through pymemcache, and through
python-memcached, the client cachelib picks itself for a list of servers), and the in-process
SimpleCache."""

from __future__ import annotations

import collections.abc as c
import contextlib
import os
import signal
import typing as t

import pytest
import redis
from cachelib import FileSystemCache
from cachelib import MemcachedCache
from cachelib import RedisCache
from cachelib import SimpleCache
from pymemcache.client.base import PooledClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract
from flask_serverside_cachelib import CacheLibStore

if t.TYPE_CHECKING:
    from pathlib import Path

    from serverside_testservers import MemcachedServer
    from serverside_testservers import RedisServer


@pytest.fixture(scope="module")
def redis_client(redis_server: RedisServer) -> c.Iterator[redis.Redis]:
    client = redis.Redis(redis_server.host, redis_server.port)
    yield client
    client.close()


@pytest.fixture(scope="module")
def pymemcache_client(memcached_server: MemcachedServer) -> c.Iterator[PooledClient]:
    # Writes that wait for memcached's reply: pymemcache's default (noreply) hides failures.
    client = PooledClient(memcached_server.address, default_noreply=False, no_delay=True)
    yield client
    client.close()


class TestFileSystemCache(StoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> c.Callable[[str], CacheLibStore]:
        return lambda key_prefix: CacheLibStore(
            FileSystemCache(str(tmp_path / "sessions"), threshold=0), key_prefix=key_prefix
        )


class TestRedisCache(StoreContract):
    @pytest.fixture
    def store_factory(self, redis_client: redis.Redis) -> c.Callable[[str], CacheLibStore]:
        return lambda key_prefix: CacheLibStore(RedisCache(redis_client), key_prefix=key_prefix)


class TestMemcachedCacheOnPymemcache(StoreContract):
    @pytest.fixture
    def store_factory(self, pymemcache_client: PooledClient) -> c.Callable[[str], CacheLibStore]:
        return lambda key_prefix: CacheLibStore(
            MemcachedCache(pymemcache_client), key_prefix=key_prefix
        )


# python-memcached's Client is a threading.local: each thread opens its own sockets, which the
# kit's worker threads leave to the garbage collector.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)
class TestMemcachedCacheOnItsOwnClient(StoreContract):
    @pytest.fixture
    def store_factory(self, memcached_server: MemcachedServer) -> c.Callable[[str], CacheLibStore]:
        servers = [f"{memcached_server.host}:{memcached_server.port}"]
        return lambda key_prefix: CacheLibStore(MemcachedCache(servers), key_prefix=key_prefix)


class TestSimpleCache(StoreContract):
    """In-process: every store of a test shares one SimpleCache."""

    @pytest.fixture
    def store_factory(self) -> c.Callable[[str], CacheLibStore]:
        cache = SimpleCache(threshold=10_000)
        return lambda key_prefix: CacheLibStore(cache, key_prefix=key_prefix)


class TestFlaskOnFileSystemCache(SessionFlowContract):
    @pytest.fixture
    def session_config(self, tmp_path: Path) -> dict[str, t.Any]:
        cache = FileSystemCache(str(tmp_path / "flask_session"), threshold=500)
        return {"SESSION_TYPE": "cachelib", "SESSION_CACHELIB": cache}

    @pytest.fixture
    def backend_dump(self, tmp_path: Path) -> c.Callable[[t.Any], bytes]:
        """Every file name of the cache directory and every file's bytes (a copy of it)."""

        def dump(app: t.Any) -> bytes:
            files = sorted((tmp_path / "flask_session").iterdir())
            return b"".join(path.name.encode() + path.read_bytes() for path in files)

        return dump


class FrozenRedis:
    """A redis-server of the test's own that ``down()`` freezes (SIGSTOP) and thaws: requests
    time out while its data survives."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.client = redis.Redis(
            server.host, server.port, socket_timeout=0.3, retry=Retry(NoBackoff(), 0)
        )
        self.config = {"SESSION_TYPE": "cachelib", "SESSION_CACHELIB": RedisCache(self.client)}

    @contextlib.contextmanager
    def down(self) -> c.Iterator[None]:
        os.kill(self.server.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.server.pid, signal.SIGCONT)


class TestFlaskOnRedisCache(SessionFlowContract):
    """A cache whose client raises its errors, so an outage is never read as a missing
    session (FileSystemCache and python-memcached turn read errors into misses)."""

    @pytest.fixture
    def session_config(self, redis_client: redis.Redis) -> dict[str, t.Any]:
        return {"SESSION_TYPE": "cachelib", "SESSION_CACHELIB": RedisCache(redis_client)}

    @pytest.fixture
    def backend_dump(self, redis_client: redis.Redis) -> c.Callable[[t.Any], bytes]:
        """Every key of the server and its value, as DUMP serializes it (what an RDB holds)."""

        def dump(app: t.Any) -> bytes:
            keys = redis_client.scan_iter(count=1000)
            return b"".join(key + (redis_client.dump(key) or b"") for key in keys)

        return dump

    @pytest.fixture
    def store_outage(
        self, make_redis_server: c.Callable[..., RedisServer]
    ) -> c.Iterator[FrozenRedis]:
        outage = FrozenRedis(make_redis_server())
        yield outage
        outage.client.close()


class TestFlaskOnMemcachedCache(SessionFlowContract):
    @pytest.fixture
    def session_config(self, pymemcache_client: PooledClient) -> dict[str, t.Any]:
        return {"SESSION_TYPE": "cachelib", "SESSION_CACHELIB": MemcachedCache(pymemcache_client)}
