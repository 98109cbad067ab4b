"""pytest plugin: fixtures that start real database servers on free loopback ports.

Registered through the ``pytest11`` entry point, so installing
``serverside-testservers`` makes these fixtures available to every test.

Shared, session-scoped instances (started on first request, stopped by PID at
session end): :func:`redis_server`, :func:`redis_cluster`, :func:`redis_sentinel`,
:func:`memcached_servers`, :func:`memcached_server`, :func:`postgresql_server`,
:func:`mariadb_server`, :func:`mongodb_server`, :func:`dynamodb_server`. Tests must
not stop or kill these; a test that does so uses a factory instead.

Function-scoped factories, each call returns a new started server that is stopped
at the end of the test: :func:`make_redis_server`, :func:`make_redis_sentinel`,
:func:`make_memcached_server`, :func:`make_postgresql_server`,
:func:`make_mariadb_server`, :func:`make_mongodb_server`, :func:`make_dynamodb_server`.

While a DynamoDB fixture is in use, the process environment holds dummy AWS credentials and
a region (:data:`~serverside_testservers.dynamodb.DUMMY_ENVIRONMENT`), no AWS profile, and
``AWS_ENDPOINT_URL`` pointing at the fixture's server, so boto3 never reaches AWS from a test.

A missing server binary skips the test, or fails it when ``CI=true``, naming the
binary and ``scripts/install-servers``. Tests that use any of these fixtures get
the ``servers`` marker, so ``-m "not servers"`` deselects them.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import typing as t

import pytest

from .dynamodb import DUMMY_ENVIRONMENT
from .dynamodb import UNSET_ENVIRONMENT
from .dynamodb import DynamoDBServer
from .mariadb import MariaDBServer
from .memcached import MemcachedServer
from .mongodb import AnyMongoDB
from .mongodb import ExternalMongoDB
from .mongodb import MongoDBServer
from .mongodb import new_mongodb_server
from .mongodb import shared_mongodb_server
from .postgresql import PostgreSQLServer
from .redis import RedisCluster
from .redis import RedisSentinel
from .redis import RedisServer

P = t.ParamSpec("P")


class _Managed(t.Protocol):
    def start(self, timeout: float = ...) -> None: ...

    def request_stop(self) -> None: ...

    def close(self) -> None: ...


S = t.TypeVar("S", bound=_Managed)

#: Names of the fixtures that start servers; tests using one get the ``servers`` marker.
SERVER_FIXTURES = frozenset(
    {
        "redis_server",
        "redis_cluster",
        "redis_sentinel",
        "memcached_servers",
        "memcached_server",
        "postgresql_server",
        "mariadb_server",
        "mongodb_server",
        "dynamodb_server",
        "make_redis_server",
        "make_redis_sentinel",
        "make_memcached_server",
        "make_postgresql_server",
        "make_mariadb_server",
        "make_mongodb_server",
        "make_dynamodb_server",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "servers: the test starts real database servers (slower)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker("servers")


def _close_all(servers: c.Sequence[_Managed]) -> None:
    """Close every server, newest first, even when one of them fails to close."""
    errors: list[BaseException] = []
    for server in servers:
        with contextlib.suppress(Exception):
            server.request_stop()  # all shut down at once (memcached takes ~1 s)
    for server in reversed(servers):
        try:
            server.close()
        except Exception as error:
            errors.append(error)
    if errors:
        raise errors[0]


@contextlib.contextmanager
def _running(*servers: S) -> c.Iterator[list[S]]:
    started: list[S] = []
    try:
        for server in servers:
            started.append(server)
            server.start()
        yield started
    finally:
        _close_all(started)


@contextlib.contextmanager
def _factory(create: c.Callable[P, S]) -> c.Iterator[c.Callable[P, S]]:
    made: list[S] = []

    def make(*args: P.args, **kwargs: P.kwargs) -> S:
        server = create(*args, **kwargs)
        made.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        _close_all(made)


# -- shared instances ---------------------------------------------------------
@pytest.fixture(scope="session")
def redis_server() -> c.Iterator[RedisServer]:
    """A ``redis-server`` shared by the session, without persistence.

    Guarantees: answers ``PING`` on ``127.0.0.1:port`` when the test starts; its
    own temporary directory; stopped at session end. Tests share its data: use
    unique keys or prefixes.
    """
    with _running(RedisServer()) as (server,):
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> c.Iterator[RedisCluster]:
    """A Redis Cluster of 3 masters, no replicas, shared by the session.

    Guarantees: every node reports ``cluster_state:ok`` and knows the 2 others;
    all 16384 slots are assigned; each node has its own free cluster bus port.
    """
    with _running(RedisCluster(masters=3)) as (cluster,):
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> c.Iterator[RedisSentinel]:
    """A Redis master, a replica and one Sentinel (service ``"mymaster"``), shared.

    Guarantees: the replica is in sync and the sentinel reports the master and
    knows the replica. Tests must not kill its master: use :func:`make_redis_sentinel`.
    """
    with _running(RedisSentinel()) as (sentinel,):
        yield sentinel


@pytest.fixture(scope="session")
def memcached_servers() -> c.Iterator[list[MemcachedServer]]:
    """Three independent ``memcached`` servers shared by the session.

    Guarantees: each answers ``version``, on its own port.
    """
    with _running(MemcachedServer(), MemcachedServer(), MemcachedServer()) as servers:
        yield servers


@pytest.fixture(scope="session")
def memcached_server(memcached_servers: list[MemcachedServer]) -> MemcachedServer:
    """The first of :func:`memcached_servers`."""
    return memcached_servers[0]


@pytest.fixture(scope="session")
def postgresql_server() -> c.Iterator[PostgreSQLServer]:
    """A PostgreSQL server shared by the session, ``trust`` authentication.

    Guarantees: accepts a session for user ``postgres`` on database ``postgres``
    at :attr:`~PostgreSQLServer.url`. Tests share the database: use their own tables.
    """
    with _running(PostgreSQLServer()) as (server,):
        yield server


@pytest.fixture(scope="session")
def mariadb_server() -> c.Iterator[MariaDBServer]:
    """A MariaDB server shared by the session; ``root`` without password.

    Guarantees: greets on its port and has the database ``serverside``.
    """
    with _running(MariaDBServer()) as (server,):
        yield server


@pytest.fixture(scope="session")
def mongodb_server() -> c.Iterator[AnyMongoDB]:
    """A MongoDB server shared by the session: ``mongod``, ``SERVERSIDE_MONGODB_URL``
    or the mongoeco stand-in, in that order (see :mod:`serverside_testservers.mongodb`).

    Guarantees: answers ``hello`` at :attr:`url`. With ``SERVERSIDE_MONGODB_URL``
    the object is an :class:`~serverside_testservers.mongodb.ExternalMongoDB` whose
    stop/kill/start skip the test; check ``supports_restart``.
    """
    server = shared_mongodb_server()
    if isinstance(server, ExternalMongoDB):
        yield server
        return
    with _running(server):
        yield server


@contextlib.contextmanager
def _dummy_aws_environment() -> c.Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        for name in UNSET_ENVIRONMENT:
            patch.delenv(name, raising=False)
        for name, value in DUMMY_ENVIRONMENT.items():
            patch.setenv(name, value)
        yield patch


@pytest.fixture(scope="session")
def dynamodb_server() -> c.Iterator[DynamoDBServer]:
    """moto's DynamoDB API server, shared by the session (``moto_server``).

    Guarantees: answers ``ListTables`` at :attr:`~DynamoDBServer.url`; while it runs, the
    environment has dummy AWS credentials, region ``us-east-1``, no AWS profile, and
    ``AWS_ENDPOINT_URL`` pointing at it: boto3's default session (in this process and in the
    processes it starts) reaches this server and nothing else. Tests share its tables: use
    tables or key prefixes of their own.
    """
    with _dummy_aws_environment() as patch, _running(DynamoDBServer()) as (server,):
        patch.setenv("AWS_ENDPOINT_URL", server.url)
        yield server


# -- factories ------------------------------------------------------------------
@pytest.fixture
def make_redis_server() -> c.Iterator[c.Callable[..., RedisServer]]:
    """Factory: ``make_redis_server(extra_args=())`` returns a new started ``redis-server``.

    Every server it made is stopped and removed at the end of the test.
    """
    with _factory(RedisServer) as make:
        yield make


@pytest.fixture
def make_redis_sentinel() -> c.Iterator[c.Callable[..., RedisSentinel]]:
    """Factory: ``make_redis_sentinel(service_name="mymaster")`` returns a new, started
    master + replica + sentinel set (see :func:`redis_sentinel`) that a test may break.
    """
    with _factory(RedisSentinel) as make:
        yield make


@pytest.fixture
def make_memcached_server() -> c.Iterator[c.Callable[..., MemcachedServer]]:
    """Factory: ``make_memcached_server(extra_args=())`` returns a new started ``memcached``."""
    with _factory(MemcachedServer) as make:
        yield make


@pytest.fixture
def make_postgresql_server() -> c.Iterator[c.Callable[..., PostgreSQLServer]]:
    """Factory: ``make_postgresql_server(extra_args=())`` returns a new started PostgreSQL
    with an empty cluster; its data survives ``stop()``/``start()``.
    """
    with _factory(PostgreSQLServer) as make:
        yield make


@pytest.fixture
def make_mariadb_server() -> c.Iterator[c.Callable[..., MariaDBServer]]:
    """Factory: ``make_mariadb_server(extra_args=())`` returns a new started MariaDB
    with the database ``serverside``; its data survives ``stop()``/``start()``.
    """
    with _factory(MariaDBServer) as make:
        yield make


@pytest.fixture
def make_mongodb_server() -> c.Iterator[c.Callable[[], MongoDBServer]]:
    """Factory: ``make_mongodb_server()`` returns a new started ``mongod`` or mongoeco.

    Skips the test when only ``SERVERSIDE_MONGODB_URL`` is available.
    """
    with _factory(new_mongodb_server) as make:
        yield make


@pytest.fixture
def make_dynamodb_server() -> c.Iterator[c.Callable[..., DynamoDBServer]]:
    """Factory: ``make_dynamodb_server(extra_args=())`` returns a new started moto server
    (empty; tables are in memory, so none survive ``stop()``), with the dummy AWS environment
    of :func:`dynamodb_server` for the test, ``AWS_ENDPOINT_URL`` pointing at the newest."""
    with _dummy_aws_environment() as patch, _factory(DynamoDBServer) as make:

        def make_and_point(*args: t.Any, **kwargs: t.Any) -> DynamoDBServer:
            server = make(*args, **kwargs)
            patch.setenv("AWS_ENDPOINT_URL", server.url)
            return server

        yield make_and_point
