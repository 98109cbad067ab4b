"""Configuration: the forms SESSION_REDIS and SESSION_TYPE take, and the errors for wrong ones."""

from __future__ import annotations

import collections.abc as c
import logging

import pytest
import redis
from flask import Flask
from flask import session
from redis.cluster import RedisCluster

import flask_serverside
from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError
from flask_serverside import StoreSettings
from flask_serverside.registry import resolve_store
from flask_serverside_redis import RedisStore
from flask_serverside_redis import connect_url
from serverside_testservers import RedisServer
from serverside_testservers import port_is_free


def settings(url: str | None = None, **config: object) -> StoreSettings:
    return StoreSettings(name="redis", config=config, key_prefix="cfg:", url=url)


@pytest.fixture
def closing() -> c.Iterator[list[RedisStore]]:
    stores: list[RedisStore] = []
    yield stores
    for store in stores:
        store.close()


@pytest.mark.parametrize(
    "name",
    ["redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster"],
)
def test_every_entry_point_name_is_this_store(name):
    assert resolve_store(name) == (name, RedisStore)


def test_nothing_configured_is_flask_sessions_default_and_says_so(caplog, closing):
    with caplog.at_level(logging.INFO, logger="flask_serverside"):
        store = RedisStore.from_settings(settings())
    closing.append(store)
    options = store.bound.client.connection_pool.connection_kwargs
    assert (options["host"], options["port"], options["db"]) == ("127.0.0.1", 6379, 0)
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 2.0
    assert [(r.name, r.levelname) for r in caplog.records] == [
        ("flask_serverside.redis", "WARNING")
    ]
    message = caplog.records[0].getMessage()
    assert "redis://127.0.0.1:6379/0" in message and "Flask-Session's default" in message
    assert "SESSION_REDIS" in message


def test_the_default_is_logged_once_at_init_app_and_never_when_configured(caplog, redis_server):
    apps = []
    with caplog.at_level(logging.INFO, logger="flask_serverside.redis"):
        for config in ({}, {"SESSION_REDIS": redis_server.url}, {"SESSION_TYPE": redis_server.url}):
            app = Flask(__name__)
            app.config.update({"SECRET_KEY": "x", "SESSION_TYPE": "redis", **config})
            flask_serverside.Session(app)
            apps.append(app)
            assert len(caplog.records) == 1  # the first application's line only
    for app in apps:
        app.extensions["serverside"].close()


@pytest.mark.servers
def test_the_default_server_end_to_end():
    if not port_is_free(6379):
        pytest.skip("127.0.0.1:6379 is taken: cannot start a Redis on Flask-Session's default")
    server = RedisServer(port=6379)
    server.start()
    try:
        app = Flask(__name__)
        app.config.update(SECRET_KEY="x", SESSION_TYPE="redis", SESSION_KEY_PREFIX="default:")
        flask_serverside.Session(app)

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
        assert server.execute("KEYS", "default:*")  # the session is on that server
        app.extensions["serverside"].close()
    finally:
        server.close()


def test_url_and_client_together_is_an_error():
    with pytest.raises(ConfigurationError, match="only one"):
        RedisStore.from_settings(settings("redis://h:1/0", SESSION_REDIS="redis://h:2/0"))


def test_a_wrong_type_is_an_error():
    with pytest.raises(ConfigurationError, match="not dict"):
        RedisStore.from_settings(settings(SESSION_REDIS={"host": "localhost"}))


def test_a_decoding_client_is_refused():
    client = redis.Redis(decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses"):
        RedisStore.from_settings(settings(SESSION_REDIS=client))
    client.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memcached://h:1", "Unknown Redis URL scheme"),
        ("redis+foo://h:1", "Unknown Redis URL scheme"),
        ("redis+sentinel://h:1", "must name the service"),
        ("redis+sentinel://h:1/svc/x", "must name the service"),
        ("redis+cluster://h:1?colour=blue", "Unknown options"),
        ("redis+cluster://h:port", "Bad port"),
        ("redis+cluster:///", "names no host"),
        ("redis://h:1/?db=x", "Invalid Redis URL"),
        ("redis+cluster://h:1?socket_timeout=soon", "must be numbers"),
    ],
)
def test_bad_urls_say_what_is_wrong(url, message):
    with pytest.raises(ConfigurationError, match=message):
        connect_url(url)


def test_url_clients_get_timeouts(closing):
    store = RedisStore.from_url("redis://127.0.0.1:1/0")
    closing.append(store)
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 2.0 and kwargs["socket_connect_timeout"] == 2.0
    store = RedisStore.from_url("redis://127.0.0.1:1/0?socket_timeout=0.5")
    closing.append(store)
    assert store.client.connection_pool.connection_kwargs["socket_timeout"] == 0.5


def test_url_clients_retry_a_broken_connection_once_and_never_a_timeout(closing):
    for url in ("redis://127.0.0.1:1/0", "redis+sentinel://127.0.0.1:1/svc"):
        store = RedisStore.from_url(url)
        closing.append(store)
        retry = store.client.connection_pool.connection_kwargs["retry"]
        assert retry._retries == 1
        assert redis.ConnectionError in retry._supported_errors
        assert redis.TimeoutError not in retry._supported_errors


def test_sentinel_url_options(closing):
    store = RedisStore.from_url(
        "rediss+sentinel://u%40x:p%3Aw@[::1]:1,127.0.0.1/svc/3"
        "?socket_timeout=0.25&sentinel_password=s"
    )
    closing.append(store)
    pool = store.client.connection_pool
    assert pool.service_name == "svc"
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["username"] == "u@x"
    assert pool.connection_kwargs["password"] == "p:w"
    assert pool.connection_kwargs["socket_timeout"] == 0.25
    assert "SSL" in pool.connection_class.__name__
    sentinels = pool.sentinel_manager.sentinels
    addresses = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in sentinels
    ]
    assert addresses == [("::1", 1), ("127.0.0.1", 26379)]
    assert sentinels[0].connection_pool.connection_kwargs["password"] == "s"


def test_a_cluster_url_connects_on_first_use(closing, redis_cluster):
    store = RedisStore.from_url("redis+cluster://127.0.0.1:1")  # nothing there: no error yet
    closing.append(store)
    hosts = ",".join(f"{h}:{p}" for h, p in redis_cluster.startup_nodes)
    store = RedisStore.from_url(f"redis+cluster://{hosts}", key_prefix="cfg-cluster:")
    closing.append(store)
    assert isinstance(store.client, RedisCluster)
    store.save("abc", b"data", 60)
    assert store.load("abc").data == b"data"
    store.delete("abc")


def test_unix_socket_url(make_redis_server, tmp_path, closing):
    socket = tmp_path / "redis.sock"
    make_redis_server(extra_args=["--unixsocket", str(socket), "--unixsocketperm", "700"])
    store = RedisStore.from_settings(settings(f"unix://{socket}?db=2"))
    closing.append(store)
    store.save("abc", b"over a socket", 60)
    assert store.load("abc").data == b"over a socket"


def test_a_url_in_session_redis(redis_server, closing):
    store = RedisStore.from_settings(settings(SESSION_REDIS=redis_server.url))
    closing.append(store)
    store.save("abc", b"by url", 60)
    assert store.load("abc").data == b"by url"
    store.delete("abc")


def test_a_client_passed_in_is_not_closed(redis_server):
    client = redis.Redis(redis_server.host, redis_server.port)
    store = RedisStore.from_settings(settings(SESSION_REDIS=client))
    store.save("abc", b"x", 60)
    store.close()
    assert client.get("cfg:abc") is not None
    client.delete("cfg:abc")
    client.close()


class CountingRedis(redis.Redis):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_a_handle_says_whether_the_store_closes_the_client(redis_server):
    given = CountingRedis(redis_server.host, redis_server.port)
    built = CountingRedis(redis_server.host, redis_server.port)
    for client, handle, closes in [
        (given, ClientHandle.given(given), 0),
        (built, ClientHandle.built(built), 1),
    ]:
        store = RedisStore(handle, key_prefix="handle:")
        store.save("abc", b"x", 60)
        assert store.client is client and store.load("abc").data == b"x"
        store.close()
        assert client.closed == closes
    given.close()


def test_a_client_made_on_first_use_is_made_once_and_closed(redis_server):
    made: list[CountingRedis] = []

    def connect() -> CountingRedis:
        made.append(CountingRedis(redis_server.host, redis_server.port))
        return made[-1]

    unused = RedisStore(ClientHandle.built(connect=connect))
    unused.close()  # never used: nothing to make, nothing to close
    store = RedisStore(ClientHandle.built(connect=connect), key_prefix="lazy:")
    assert made == []
    store.save("abc", b"x", 60)
    assert store.load("abc").data == b"x"
    store.close()
    assert len(made) == 1 and made[0].closed == 1


def test_closing_a_sentinel_store_closes_the_sentinels_too(monkeypatch):
    store = RedisStore.from_url("redis+sentinel://127.0.0.1:1,127.0.0.1:2/svc")
    master = store.client
    sentinels = master.connection_pool.sentinel_manager.sentinels
    closed = []
    for client in (master, *sentinels):
        monkeypatch.setattr(client, "close", lambda client=client: closed.append(client))
    store.close()
    assert closed == [master, *sentinels] and len(sentinels) == 2


def test_seeds_configuration_end_to_end(redis_server):
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="seed",
        SESSION_TYPE="redis",
        SESSION_REDIS=client,
        SESSION_KEY_PREFIX="seed-app:",
        SESSION_USE_SIGNER=True,
    )
    flask_serverside.Session(app)

    @app.post("/login")
    def login() -> dict[str, object]:
        session["_user_id"] = "alice"
        return {"ok": True}

    @app.get("/me")
    def me() -> dict[str, object]:
        return {"user": session.get("_user_id")}

    browsers = [app.test_client() for _ in range(2)]
    for browser in browsers:
        browser.post("/login")
        assert browser.get("/me").get_json() == {"user": "alice"}
    state = flask_serverside.get_state(app)
    sids = {app.session_interface.open_session(app, _request(app, b)).sid for b in browsers}
    keys = {state.store_key(sid) for sid in sids}
    for key in keys:
        assert client.get("seed-app:" + key)[:2] == b"\xc1\x01"
        assert 0 < client.ttl("seed-app:" + key) <= 31 * 24 * 3600
    assert set(client.zrange("seed-app:user:alice", 0, -1)) == {key.encode() for key in keys}
    assert flask_serverside.revoke_user_sessions("alice", app) == 2
    for browser in browsers:
        assert browser.get("/me").get_json() == {"user": None}
    app.extensions["serverside"].close()
    client.delete("seed-app:user:alice")
    client.close()


def _request(app, browser):
    cookie = browser.get_cookie("session").value
    return app.test_request_context("/", headers={"Cookie": f"session={cookie}"}).request


def test_a_malformed_url_is_reported_without_its_password():
    from flask_serverside_redis.urls import connect_url

    for url in (
        "redis://alice:s3cret-pw@127.0.0.1:notaport/0",
        "redis+sentinel://:s3cret-pw@127.0.0.1:1",
        "redis+cluster://bob:s3cret-pw@127.0.0.1:abc",
    ):
        with pytest.raises(ConfigurationError) as caught:
            connect_url(url)
        assert "s3cret-pw" not in str(caught.value)
        assert "***@127.0.0.1" in str(caught.value)
