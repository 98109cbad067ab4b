"""Faults on real servers: a node of three dies and comes back (its sessions are unavailable,
never misses), a lone server dies and restarts, every server is down, writes that fail; and the
round trips each operation costs."""

from __future__ import annotations

import socket
import threading
import time
import typing as t

import memcache
import pytest
from flask import Flask
from flask import session
from pymemcache.client.base import Client
from pymemcache.client.base import PooledClient
from pymemcache.exceptions import MemcacheError
from pymemcache.exceptions import MemcacheUnknownCommandError

from flask_serverside import NodeUnavailable
from flask_serverside import Session
from flask_serverside import StoreError
from flask_serverside import StoreSettings
from flask_serverside import StoreUnavailable
from flask_serverside.testing import new_sid
from flask_serverside.testing import spy_on_store
from flask_serverside_memcached import MemcachedStore

if t.TYPE_CHECKING:
    import collections.abc as c

    from serverside_testservers.memcached import MemcachedServer

DEAD_TIMEOUT = 0.3


def address(server: MemcachedServer) -> str:
    return f"{server.host}:{server.port}"


@pytest.fixture
def three(make_memcached_server: c.Callable[[], MemcachedServer]) -> list[MemcachedServer]:
    return [make_memcached_server() for _ in range(3)]


@pytest.fixture
def store(three: list[MemcachedServer]) -> c.Iterator[MemcachedStore]:
    config = {
        "SESSION_MEMCACHED": [address(server) for server in three],
        "SESSION_MEMCACHED_DEAD_TIMEOUT": DEAD_TIMEOUT,
        "SESSION_MEMCACHED_TIMEOUT": 0.5,
    }
    store = MemcachedStore.from_settings(StoreSettings("memcached", config, key_prefix="f:"))
    yield store
    store.close()


def node_of(store: MemcachedStore, sid: str) -> str:
    assert store.ring is not None
    return store.ring.node(store.key(sid))


def test_a_dead_node_makes_its_sessions_unavailable_not_missing(
    store: MemcachedStore, three: list[MemcachedServer]
) -> None:
    sids = [new_sid() for _ in range(60)]
    for sid in sids:
        store.save(sid, sid.encode(), 600)
    victim = three[0]
    on_victim = {sid for sid in sids if node_of(store, sid) == address(victim)}
    assert 0 < len(on_victim) < len(sids)

    victim.kill()
    for sid in sids:  # the dead node's sessions are unavailable, the others live
        if sid in on_victim:
            with pytest.raises(NodeUnavailable):
                store.load(sid)
        else:
            record = store.load(sid)
            assert record is not None and record.data == sid.encode()
    for sid in on_victim:  # every operation, and fast: the node is not called again
        started = time.monotonic()
        for operation in (
            lambda sid: store.load_and_touch(sid, 600),
            lambda sid: store.touch(sid, 600),
            lambda sid: store.delete(sid),
            lambda sid: store.save(sid, b"lost?", 600),
            lambda sid: store.save_if(sid, b"lost?", 600, expected=None),
        ):
            with pytest.raises(NodeUnavailable):
                operation(sid)
        assert time.monotonic() - started < 0.05
        assert node_of(store, sid) == address(victim)  # never moved to another node
    for sid in [new_sid() for _ in range(30)]:  # the live nodes take new sessions
        if node_of(store, sid) != address(victim):
            assert store.save_if(sid, b"new", 600, expected=None) is True

    victim.start()  # memcached restarts empty: its records are gone for real
    time.sleep(DEAD_TIMEOUT + 0.1)
    for sid in on_victim:
        assert store.load(sid) is None
    later = [new_sid() for _ in range(60)]
    for sid in later:
        store.save(sid, b"later", 600)
    direct = Client(victim.address)
    try:
        assert any(direct.get(store.key(sid)) == b"later" for sid in later)
    finally:
        direct.close()


def test_a_node_that_stays_dead_is_probed_once_per_dead_timeout(
    store: MemcachedStore, three: list[MemcachedServer], caplog: pytest.LogCaptureFixture
) -> None:
    three[1].kill()
    on_dead = next(sid for sid in iter(new_sid, None) if node_of(store, sid) == address(three[1]))
    elsewhere = next(sid for sid in iter(new_sid, None) if node_of(store, sid) != address(three[1]))
    connects = []
    for _ in range(3):
        started = time.monotonic()
        for _ in range(20):
            with pytest.raises(NodeUnavailable):
                store.load(on_dead)
            store.save(elsewhere, b"x", 60)
            assert store.load(elsewhere) is not None
        connects.append(time.monotonic() - started)
        time.sleep(DEAD_TIMEOUT + 0.1)
    assert max(connects) < 0.5
    assert caplog.text.count(f"memcached server {address(three[1])} failed") == 1
    three[1].start()
    time.sleep(DEAD_TIMEOUT + 0.1)
    assert store.load(on_dead) is None  # answered (empty after the restart)
    assert f"memcached server {address(three[1])} answers again" in caplog.text


def test_all_nodes_down_is_unavailable(store: MemcachedStore, three: list[MemcachedServer]) -> None:
    sid = new_sid()
    store.save(sid, b"x", 60)
    for server in three:
        server.kill()
    errors = []
    for _ in range(40):  # one node after another is found dead, until none is left
        with pytest.raises(StoreUnavailable) as raised:
            store.save(new_sid(), b"x", 60)
        errors.append(raised.value)
    assert isinstance(errors[0], NodeUnavailable)
    assert not any(isinstance(error, NodeUnavailable) for error in errors[-5:])
    with pytest.raises(StoreUnavailable) as raised:
        store.load(sid)
    assert not isinstance(raised.value, NodeUnavailable)


def cookie_of(browser: t.Any) -> str | None:
    cookie = browser.get_cookie("session")
    return None if cookie is None else str(cookie.value)


@pytest.mark.parametrize("policy", ["unavailable", "empty"])
def test_flask_with_a_dead_node(three: list[MemcachedServer], policy: str) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k",
        SESSION_TYPE="memcached://" + ",".join(map(address, three)) + "?dead_timeout=60",
        SESSION_ON_STORE_ERROR=policy,
    )
    Session(app)

    @app.post("/login/<name>")
    def login(name: str) -> str:
        session["user"] = name
        return "ok"

    @app.get("/user")
    def user() -> str:
        return str(session.get("user"))

    try:
        browsers = [app.test_client() for _ in range(30)]
        for number, browser in enumerate(browsers):
            browser.post(f"/login/u{number}")
        cookies = [cookie_of(browser) for browser in browsers]
        three[2].kill()
        seen = [browser.get("/user") for browser in browsers]
        # the others are served: the breaker stays closed when one node of three is down
        served = [response.status_code == 200 for response in seen]
        for number, response in enumerate(seen):
            assert cookie_of(browsers[number]) == cookies[number]  # nobody loses it
            if policy == "unavailable":
                assert response.status_code in (200, 503)
                if response.status_code == 200:
                    assert response.text == f"u{number}"
            else:
                assert response.status_code == 200 and response.text in (f"u{number}", "None")
        state = app.extensions["serverside"]
        keys = [state.store_key(t.cast(str, cookie)) for cookie in cookies]
        live = [node_of(state.store, key) != address(three[2]) for key in keys]
        assert any(live) and not all(live)
        if policy == "unavailable":
            assert served == live
        else:
            assert "None" in [response.text for response in seen]
        for number, browser in enumerate(browsers):
            response = browser.post(f"/login/again{number}")
            if policy == "empty" or seen[number].status_code == 200:
                assert response.status_code == 200  # a new session goes to a live node
                assert browser.get("/user").text == f"again{number}"
            else:
                assert response.status_code == 503
                assert cookie_of(browser) == cookies[number]  # kept
    finally:
        app.extensions["serverside"].close()


def test_a_lone_server_down_is_unavailable_and_a_restart_recovers(
    make_memcached_server: c.Callable[[], MemcachedServer],
) -> None:
    server = make_memcached_server()
    settings = StoreSettings("memcached", {}, url=server.url + "?timeout=0.5")
    store = MemcachedStore.from_settings(settings)
    try:
        sid = new_sid()
        store.save(sid, b"x", 60)
        server.stop()
        server.start()  # memcached restarts empty; the pooled connection is stale
        assert store.load(sid) is None
        store.save(sid, b"y", 60)
        server.kill()
        with pytest.raises(StoreUnavailable) as raised:
            store.load(sid)
        assert isinstance(raised.value.__cause__, (OSError, MemcacheError))
        with pytest.raises(StoreUnavailable):
            store.save(sid, b"z", 60)
        server.start()
        store.save(sid, b"back", 60)
        record = store.load(sid)
        assert record is not None and record.data == b"back"
    finally:
        store.close()


def test_a_pooled_client_that_ignores_errors_still_reports_an_outage(
    make_memcached_server: c.Callable[[], MemcachedServer],
) -> None:
    """``PooledClient(ignore_exc=True)`` answers a failed ``gets`` with ``(None, None)``, a
    miss; the store runs its commands on the pool's connections, which never ignore errors."""
    server = make_memcached_server()
    client = PooledClient(server.address, ignore_exc=True, connect_timeout=0.5, timeout=0.5)
    store = MemcachedStore(client, key_prefix="ignoring:")
    sid = new_sid()
    store.save(sid, b"x", 60)
    server.kill()
    try:
        assert client.gets(store.key(sid)) == (None, None)  # what the client alone says
        with pytest.raises(StoreUnavailable):
            store.load(sid)
    finally:
        server.start()
        store.close()


def test_a_write_memcached_refuses_is_never_silent(memcached_server: MemcachedServer) -> None:
    too_large = b"x" * (2 * 1024 * 1024)
    store = MemcachedStore(PooledClient(memcached_server.address), key_prefix="big:")
    legacy = MemcachedStore.for_client(memcache.Client([address(memcached_server)]))
    try:
        for each in (store, legacy):
            with pytest.raises(StoreError):
                each.save(new_sid(), too_large, 60)
            with pytest.raises(StoreError):
                each.save_if(new_sid(), too_large, 60, expected=None)
    finally:
        store.client.close()
        legacy.close()


class CountingSocketModule:
    """The :mod:`socket` module, with sockets that count the requests they send."""

    def __init__(self) -> None:
        self.sends = 0

    def __getattr__(self, name: str) -> t.Any:
        return getattr(socket, name)

    def socket(self, *args: t.Any) -> t.Any:
        module = self
        real = socket.socket(*args)

        class Counting:
            def __getattr__(self, name: str) -> t.Any:
                return getattr(real, name)

            def sendall(self, data: bytes) -> None:
                module.sends += 1
                real.sendall(data)

        return Counting()


def test_every_operation_is_one_round_trip(memcached_server: MemcachedServer) -> None:
    counter = CountingSocketModule()
    client = PooledClient(memcached_server.address, socket_module=counter, no_delay=True)
    store = MemcachedStore(client, key_prefix="rt:")
    sid = new_sid()

    def sends(operation: c.Callable[[], object]) -> int:
        before = counter.sends
        operation()
        return counter.sends - before

    try:
        assert sends(lambda: store.save(sid, b"v1", 60)) == 1
        assert sends(lambda: store.load(sid)) == 1
        assert sends(lambda: store.load_and_touch(sid, 60)) == 1
        assert sends(lambda: store.touch(sid, 60)) == 1
        record = store.load(sid)
        assert sends(lambda: store.save_if(sid, b"v2", 60, expected=record)) == 1
        assert sends(lambda: store.save_if(new_sid(), b"new", 60, expected=None)) == 1
        assert sends(lambda: store.delete(sid)) == 1
    finally:
        client.close()


def test_flask_requests_cost_one_round_trip(memcached_server: MemcachedServer) -> None:
    counter = CountingSocketModule()
    client = PooledClient(memcached_server.address, socket_module=counter, no_delay=True)
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", SESSION_TYPE="memcached", SESSION_MEMCACHED=client)
    Session(app)

    @app.post("/count")
    def count() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.get("/read")
    def read() -> str:
        return str(session.get("n"))

    try:
        browser = app.test_client()
        browser.post("/count")
        spy = spy_on_store(app)
        for path, method, expected_calls in [
            ("/read", "get", {"load_and_touch": 1}),
            ("/count", "post", {"load_and_touch": 1, "save_if": 1}),
        ]:
            spy.reset()
            before = counter.sends
            getattr(browser, method)(path)
            assert dict(spy.calls) == expected_calls
            assert counter.sends - before == sum(expected_calls.values())
    finally:
        client.close()


class ClientWithoutGats(Client):
    """A client of a memcached older than 1.5.3: ``gats`` is an unknown command."""

    def gats(self, key: str, expire: int = 0) -> t.Any:
        raise MemcacheUnknownCommandError(b"gats")


def test_load_and_touch_without_gats_takes_two_round_trips(
    memcached_server: MemcachedServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = ClientWithoutGats(memcached_server.address)
    store = MemcachedStore(client, key_prefix="old:")
    sid = new_sid()
    try:
        store.save(sid, b"data", 5)
        for _ in range(2):
            record = store.load_and_touch(sid, 600)
            assert record is not None and record.data == b"data" and record.version is not None
        assert caplog.text.count("no gats command") == 1
        remaining = client.raw_command(f"mg {store.key(sid)} t")  # meta get: the TTL left
        assert remaining.split()[0] == b"HD" and int(remaining.split()[1][1:]) > 590
        assert store.load_and_touch(new_sid(), 600) is None
    finally:
        client.close()


def test_threads_keep_working_while_a_node_dies(
    store: MemcachedStore, three: list[MemcachedServer]
) -> None:
    errors: list[BaseException] = []
    unavailable = [0]
    halfway = threading.Barrier(5)

    def work() -> None:
        try:
            for round_ in range(120):
                if round_ == 60:
                    halfway.wait(timeout=30)
                sid = new_sid()
                try:
                    store.save(sid, b"data", 60)
                    record = store.load_and_touch(sid, 60)
                    assert record is not None and record.data == b"data"
                    assert store.save_if(sid, b"more", 60, expected=record) is True
                except NodeUnavailable:
                    assert node_of(store, sid) == address(three[1])
                    unavailable[0] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    halfway.wait(timeout=30)
    three[1].kill()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert unavailable[0] > 0
    assert store.ring is not None and address(three[1]) in store.ring.nodes
