"""The conformance kit on real memcached servers: one server, three behind a HashClient, a
plain pymemcache Client passed in, and python-memcached's client (as Flask-Session's seeds),
which the store replaces by a pymemcache client on the same servers."""

from __future__ import annotations

import collections.abc as c
import contextlib
import os
import signal
import socket
import typing as t
import urllib.parse

import memcache
import pytest
from pymemcache.client.base import Client

from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract
from flask_serverside_memcached import MemcachedStore
from flask_serverside_memcached import build_client

if t.TYPE_CHECKING:
    from serverside_testservers.memcached import MemcachedServer


def _closing_factory(
    make: c.Callable[[str], MemcachedStore],
) -> c.Iterator[c.Callable[[str], MemcachedStore]]:
    """Yield ``make``, closing at teardown every store it made (the kit leaves some open)."""
    made: list[MemcachedStore] = []

    def tracked(key_prefix: str) -> MemcachedStore:
        made.append(make(key_prefix))
        return made[-1]

    yield tracked
    for store in made:
        store.close()


class TestOneServer(StoreContract):
    @pytest.fixture
    def store_factory(
        self, memcached_server: MemcachedServer
    ) -> c.Iterator[c.Callable[[str], MemcachedStore]]:
        def make(key_prefix: str) -> MemcachedStore:
            client = build_client([memcached_server.address])
            return MemcachedStore(client, key_prefix=key_prefix, owns_client=True)

        yield from _closing_factory(make)


class TestThreeServers(StoreContract):
    @pytest.fixture
    def store_factory(
        self, memcached_servers: list[MemcachedServer]
    ) -> c.Iterator[c.Callable[[str], MemcachedStore]]:
        def make(key_prefix: str) -> MemcachedStore:
            client = build_client([server.address for server in memcached_servers])
            return MemcachedStore(client, key_prefix=key_prefix, owns_client=True)

        yield from _closing_factory(make)


class TestPlainClientPassedIn(StoreContract):
    """A pymemcache ``Client`` with its defaults (noreply writes, not thread-safe)."""

    @pytest.fixture
    def store_factory(
        self, memcached_server: MemcachedServer
    ) -> c.Iterator[c.Callable[[str], MemcachedStore]]:
        clients: list[Client] = []

        def make(key_prefix: str) -> MemcachedStore:
            clients.append(Client(memcached_server.address))
            return MemcachedStore.for_client(clients[-1], key_prefix=key_prefix)

        yield make
        for client in clients:
            client.close()


class TestPythonMemcached(StoreContract):
    @pytest.fixture
    def store_factory(
        self, memcached_server: MemcachedServer
    ) -> c.Iterator[c.Callable[[str], MemcachedStore]]:
        def make(key_prefix: str) -> MemcachedStore:
            client = memcache.Client([f"{memcached_server.host}:{memcached_server.port}"])
            return MemcachedStore.for_client(client, key_prefix=key_prefix)

        yield from _closing_factory(make)


class TestFlaskOnAURL(SessionFlowContract):
    @pytest.fixture
    def session_config(self, memcached_server: MemcachedServer) -> dict[str, t.Any]:
        return {"SESSION_TYPE": memcached_server.url}

    @pytest.fixture
    def backend_dump(self, memcached_server: MemcachedServer) -> t.Any:
        """Every key the server holds (``lru_crawler metadump all``) and its value."""

        def dump(app: t.Any) -> bytes:
            address = (memcached_server.host, memcached_server.port)
            with socket.create_connection(address, timeout=5) as conn:
                conn.sendall(b"lru_crawler metadump all\r\n")
                listing = b""
                while not listing.endswith(b"END\r\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    listing += chunk
            keys = [
                urllib.parse.unquote_to_bytes(line.split(b" ", 1)[0][len(b"key=") :])
                for line in listing.splitlines()
                if line.startswith(b"key=")
            ]
            client = Client(address)
            try:
                return b"".join(key + (client.get(key) or b"") for key in keys)
            finally:
                client.close()

        return dump


class TestFlaskOnThreeServers(SessionFlowContract):
    @pytest.fixture
    def session_config(self, memcached_servers: list[MemcachedServer]) -> dict[str, t.Any]:
        servers = [f"{server.host}:{server.port}" for server in memcached_servers]
        return {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": servers}


class FrozenMemcached:
    """A memcached server of the test's own that hangs for the outage (SIGSTOP: connections
    are accepted, nothing is answered), so requests time out; stopping it would lose its data
    (memcached keeps none), and the test checks that the session is still there after."""

    def __init__(self, server: MemcachedServer, client: memcache.Client) -> None:
        self.server = server
        self.config = {
            "SESSION_TYPE": "memcached",
            "SESSION_MEMCACHED": client,
            "SESSION_MEMCACHED_TIMEOUT": 0.25,
        }

    @contextlib.contextmanager
    def down(self) -> c.Iterator[None]:
        os.kill(self.server.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.server.pid, signal.SIGCONT)


class TestFlaskAsTheSeeds(SessionFlowContract):
    """Flask-Session's configuration: ``SESSION_MEMCACHED = memcache.Client([...])``; with
    python-memcached itself, a server that hangs read as a missing session."""

    @pytest.fixture
    def session_config(self, memcached_server: MemcachedServer) -> c.Iterator[dict[str, t.Any]]:
        client = memcache.Client([f"{memcached_server.host}:{memcached_server.port}"])
        yield {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": client}
        client.disconnect_all()

    @pytest.fixture
    def store_outage(
        self, make_memcached_server: c.Callable[[], MemcachedServer]
    ) -> c.Iterator[FrozenMemcached]:
        server = make_memcached_server()
        client = memcache.Client([f"{server.host}:{server.port}"])
        yield FrozenMemcached(server, client)
        client.disconnect_all()


class TestFlaskOnAURLCompat(SessionFlowContract):
    """The compatibility write mode (memcached's records have Flask-Session's layout already;
    the core writes its encoding and deletes on regeneration)."""

    @pytest.fixture
    def session_config(self, memcached_server: MemcachedServer) -> dict[str, t.Any]:
        return {"SESSION_TYPE": memcached_server.url, "SESSION_COMPAT_FLASK_SESSION": True}
