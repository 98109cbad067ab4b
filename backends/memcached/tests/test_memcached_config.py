"""Configuration forms: every way of naming servers or passing a client, and the errors."""

from __future__ import annotations

import typing as t

import memcache
import pytest
from flask import Flask
from flask import session
from pymemcache.client.base import Client
from pymemcache.client.base import PooledClient
from pymemcache.client.hash import HashClient

from flask_serverside import Capability
from flask_serverside import ConfigurationError
from flask_serverside import Session
from flask_serverside import StoreSettings
from flask_serverside.registry import resolve_store
from flask_serverside_memcached import MemcachedStore
from flask_serverside_memcached import build_client
from flask_serverside_memcached._client import parse_servers
from serverside_testservers import MemcachedServer as Memcached
from serverside_testservers import port_is_free

if t.TYPE_CHECKING:
    import collections.abc as c

    from serverside_testservers.memcached import MemcachedServer


def settings(url: str | None = None, **config: t.Any) -> StoreSettings:
    return StoreSettings(name="memcached", config=config, key_prefix="cfg:", url=url)


@pytest.fixture
def stores() -> c.Iterator[list[MemcachedStore]]:
    made: list[MemcachedStore] = []
    yield made
    for store in made:
        store.close()


def build(stores: list[MemcachedStore], url: str | None = None, **config: t.Any) -> MemcachedStore:
    store = MemcachedStore.from_settings(settings(url, **config))
    stores.append(store)
    return store


@pytest.mark.parametrize("name", ["memcached", "memcache", "memcached://127.0.0.1:1"])
def test_entry_points(name: str) -> None:
    assert resolve_store(name)[1] is MemcachedStore


def test_parse_servers() -> None:
    assert parse_servers("a:1, b:2") == [("a", 1), ("b", 2)]
    assert parse_servers(["a:1", ("b", 2), "[::1]:3"]) == [("a", 1), ("b", 2), ("::1", 3)]
    for bad in ("a", "a:b", "", ":1", []):
        with pytest.raises(ValueError):
            parse_servers(bad)


def test_one_server_gets_a_pooled_client(stores: list[MemcachedStore]) -> None:
    store = build(stores, SESSION_MEMCACHED=["127.0.0.1:11311"], SESSION_MEMCACHED_TIMEOUT=0.25)
    client = store.client
    assert isinstance(client, PooledClient)
    assert client.server == ("127.0.0.1", 11311)
    assert client.no_delay is True
    assert client.default_noreply is False
    assert client.timeout == client.connect_timeout == 0.25
    assert store.key_prefix == "cfg:"
    assert store.capabilities == (
        Capability.TOUCH | Capability.LOAD_AND_TOUCH | Capability.CONDITIONAL_SAVE
    )


def test_several_servers_get_a_hash_client_with_fail_over(stores: list[MemcachedStore]) -> None:
    store = build(stores, "memcached://127.0.0.1:1,127.0.0.1:2?timeout=0.5&dead_timeout=3")
    client = store.client
    assert isinstance(client, HashClient)
    assert sorted(client.clients) == ["127.0.0.1:1", "127.0.0.1:2"]
    assert client.use_pooling is True
    assert client.ignore_exc is False
    assert store.ring is not None and store.ring.dead_timeout == 3.0
    assert store.ring.nodes == {"127.0.0.1:1", "127.0.0.1:2"}
    assert client.default_kwargs["no_delay"] is True
    assert client.default_kwargs["default_noreply"] is False
    assert client.default_kwargs["timeout"] == 0.5


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1:1,127.0.0.1:2",
        ("127.0.0.1:1", "127.0.0.1:2"),
        [("127.0.0.1", 1), ("127.0.0.1", 2)],
        "memcache://127.0.0.1:1,127.0.0.1:2",
    ],
)
def test_server_forms(stores: list[MemcachedStore], value: t.Any) -> None:
    assert isinstance(build(stores, SESSION_MEMCACHED=value).client, HashClient)


def test_clients_passed_in_are_used_and_not_closed(memcached_server: MemcachedServer) -> None:
    plain = Client(memcached_server.address)
    pooled = PooledClient(memcached_server.address)
    hashed = HashClient([memcached_server.address])
    try:
        for client in (plain, pooled, hashed):
            store = MemcachedStore.from_settings(settings(SESSION_MEMCACHED=client))
            assert type(store) is MemcachedStore and store.client is client
            store.save("sid", b"data", 60)
            store.close()
            record = store.load("sid")  # still usable: the store did not close it
            assert record is not None and record.data == b"data"
    finally:
        plain.close()
        pooled.close()
        hashed.close()


def test_a_python_memcached_client_is_replaced_by_pymemcache_on_its_servers(
    memcached_server: MemcachedServer, caplog: pytest.LogCaptureFixture
) -> None:
    address = f"{memcached_server.host}:{memcached_server.port}"
    legacy = memcache.Client([address])
    try:
        legacy.set("cfg:sid", b"written by python-memcached")
        with caplog.at_level("WARNING", logger="flask_serverside.memcached"):
            store = MemcachedStore.from_settings(
                settings(SESSION_MEMCACHED=legacy, SESSION_MEMCACHED_TIMEOUT=0.5)
            )
        assert [record.levelname for record in caplog.records] == ["WARNING"]
        message = caplog.records[0].getMessage()
        assert "python-memcached" in message and address in message
        assert "missing session" in message and f"SESSION_MEMCACHED to ['{address}']" in message
        client = store.client
        assert isinstance(client, PooledClient) and client.server == memcached_server.address
        assert client.timeout == 0.5 and client.no_delay and client.default_noreply is False
        assert store.capabilities == (
            Capability.TOUCH | Capability.LOAD_AND_TOUCH | Capability.CONDITIONAL_SAVE
        )
        record = store.load("sid")
        assert record is not None and record.data == b"written by python-memcached"
        assert record.version is not None  # a cas token: conditional saves work
        store.close()  # closes the client it built, not the application's
        assert not client.client_pool.free
        assert legacy.get("cfg:sid") == b"written by python-memcached"
    finally:
        legacy.disconnect_all()


def test_python_memcached_servers_keep_their_keys_and_weights(
    memcached_servers: list[MemcachedServer],
) -> None:
    addresses = [f"{server.host}:{server.port}" for server in memcached_servers]
    legacy = memcache.Client([(addresses[0], 1), (addresses[1], 3), addresses[2]])
    keys = [f"cfg:weights-{number}" for number in range(200)]
    try:
        for key in keys:
            assert legacy.set(key, key.encode())
        store = MemcachedStore.for_client(legacy, key_prefix="cfg:")
        try:
            for key in keys:  # each found on the server python-memcached put it on
                record = store.load(key[len("cfg:") :])
                assert record is not None and record.data == key.encode()
            assert store.ring is not None
            placed = [store.ring.node(key) for key in keys]
            assert set(placed) == set(addresses)  # every server holds some (weights count)
        finally:
            store.close()
    finally:
        legacy.disconnect_all()


class LookAlike:
    """A client with python-memcached's methods that is not python-memcached (pylibmc's)."""

    def get(self, key: str) -> None: ...
    def set(self, key: str, value: bytes) -> None: ...
    def delete(self, key: str) -> None: ...
    def touch(self, key: str, time: int) -> None: ...


def test_other_clients_are_refused_naming_pymemcache() -> None:
    with pytest.raises(ConfigurationError, match="LookAlike.*works through pymemcache"):
        MemcachedStore.from_settings(settings(SESSION_MEMCACHED=LookAlike()))


def test_a_python_memcached_client_without_servers_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="names no server"):
        MemcachedStore.from_settings(settings(SESSION_MEMCACHED=memcache.Client([])))


def test_built_client_is_closed_with_the_store(memcached_server: MemcachedServer) -> None:
    store = MemcachedStore(build_client([memcached_server.address]), owns_client=True)
    store.save("sid", b"x", 60)
    assert store.client.client_pool.free
    store.close()
    assert not store.client.client_pool.free


@pytest.mark.parametrize(
    ("url", "config", "message"),
    [
        (None, {"SESSION_MEMCACHED": object()}, "not a client this store can use"),
        (None, {"SESSION_MEMCACHED": "localhost"}, "Bad memcached servers"),
        (None, {"SESSION_MEMCACHED": []}, "Bad memcached servers"),
        (None, {"SESSION_MEMCACHED": "redis://h:1"}, "scheme must be memcached"),
        ("memcached://h:1?colour=red", {}, "unknown URL option 'colour'"),
        ("memcached://h:1?timeout=soon", {}, "Bad memcached servers"),
        (None, {"SESSION_MEMCACHED": ["h:1"], "SESSION_MEMCACHED_TIMEOUT": "x"}, "_TIMEOUT must"),
        ("memcached://h:1", {"SESSION_MEMCACHED": ["h:2"]}, "keep one"),
    ],
)
def test_configuration_errors(url: str | None, config: dict[str, t.Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MemcachedStore.from_settings(settings(url, **config))


def test_nothing_configured_is_flask_sessions_default_and_says_so(
    stores: list[MemcachedStore], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="flask_serverside"):
        store = build(stores)
    assert isinstance(store.client, PooledClient)
    assert store.client.server == ("127.0.0.1", 11211)
    assert store.client.timeout == 1.0 and store.client.no_delay
    assert [(r.name, r.levelname) for r in caplog.records] == [
        ("flask_serverside.memcached", "WARNING")
    ]
    message = caplog.records[0].getMessage()
    assert "127.0.0.1:11211" in message and "Flask-Session's default" in message


def test_the_default_is_logged_once_at_init_app_and_never_when_configured(
    memcached_server: MemcachedServer, caplog: pytest.LogCaptureFixture
) -> None:
    apps = []
    with caplog.at_level("INFO", logger="flask_serverside.memcached"):
        for config in ({}, {"SESSION_MEMCACHED": [address_of(memcached_server)]}):
            app = Flask(__name__)
            app.config.update({"SECRET_KEY": "k", "SESSION_TYPE": "memcached", **config})
            Session(app)
            apps.append(app)
            assert len(caplog.records) == 1  # the first application's line only
    for app in apps:
        app.extensions["serverside"].close()


def address_of(server: MemcachedServer) -> str:
    return f"{server.host}:{server.port}"


@pytest.mark.servers
def test_the_default_server_end_to_end() -> None:
    if not port_is_free(11211):
        pytest.skip("127.0.0.1:11211 is taken: cannot start a memcached on the default port")
    server = Memcached(port=11211)
    server.start()
    try:
        app = Flask(__name__)
        app.config.update(SECRET_KEY="k", SESSION_TYPE="memcached", SESSION_KEY_PREFIX="dflt:")
        Session(app)

        @app.post("/login")
        def login() -> str:
            session["user"] = "alice"
            return "ok"

        @app.get("/me")
        def me() -> str:
            return str(session.get("user"))

        browser = app.test_client()
        browser.post("/login")
        assert browser.get("/me").text == "alice"
        cookie = browser.get_cookie("session")
        assert cookie is not None
        direct = Client(server.address)
        key = app.extensions["serverside"].store_key(cookie.value)
        assert direct.get("dflt:" + key) is not None  # on that server
        direct.close()
        app.extensions["serverside"].close()
    finally:
        server.close()


def test_get_and_touch_falls_back_to_public_calls(memcached_server):
    """Without pymemcache's private fetch routine (a future release), ``gets`` + ``touch``."""
    from pymemcache.client.base import Client

    from flask_serverside_memcached._client import get_and_touch

    class PublicOnly:
        """A client with pymemcache's public methods only."""

        def __init__(self, client):
            self.gets, self.touch = client.gets, client.touch

    client = Client((memcached_server.host, memcached_server.port))
    try:
        client.set("fallback-key", b"value", expire=60, noreply=False)
        value, token = get_and_touch(PublicOnly(client), "fallback-key", 600)
        assert value == b"value" and token is not None
        assert get_and_touch(PublicOnly(client), "missing-key", 600) is None
    finally:
        client.close()
