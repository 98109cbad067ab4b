"""Faults on real servers: a node of three dies and comes back, a lone server dies and
restarts, every server is down, writes that fail; and the round trips each operation costs."""

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

from flask_serverside import Session
from flask_serverside import StoreError
from flask_serverside import StoreSettings
from flask_serverside import StoreUnavailable
from flask_serverside.testing import new_sid
from flask_serverside.testing import spy_on_store
from flask_serverside_memcached import MemcachedStore
from flask_serverside_memcached import PythonMemcachedStore

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
    node: str = store.client.hasher.get_node(store.key(sid))
    return node


def test_a_dead_node_makes_misses_and_comes_back(
    store: MemcachedStore, three: list[MemcachedServer]
) -> None:
    sids = [new_sid() for _ in range(60)]
    for sid in sids:
        store.save(sid, sid.encode(), 600)
    victim = three[0]
    on_victim = {sid for sid in sids if node_of(store, sid) == address(victim)}
    assert 0 < len(on_victim) < len(sids)

    victim.kill()
    for sid in sids:  # no error: the sessions of the dead node are misses, the others live
        record = store.load(sid)
        if sid in on_victim:
            assert record is None
        else:
            assert record is not None and record.data == sid.encode()
    for sid in on_victim:
        assert store.load_and_touch(sid, 600) is None
        assert store.touch(sid, 600) is False
        store.delete(sid)
    fresh = [new_sid() for _ in range(30)]
    for sid in fresh:  # new sessions go to the live nodes
        assert store.save_if(sid, b"new", 600, expected=None) is True
        assert node_of(store, sid) != address(victim)
        record = store.load_and_touch(sid, 600)
        assert record is not None and record.data == b"new"

    victim.start()
    time.sleep(DEAD_TIMEOUT + 0.1)
    later = [new_sid() for _ in range(60)]
    for sid in later:
        store.save(sid, b"later", 600)
    direct = Client(victim.address)
    try:
        assert any(direct.get(store.key(sid)) == b"later" for sid in later)
    finally:
        direct.close()
    for sid in fresh:  # sessions made during the outage on the other nodes are still there
        if node_of(store, sid) != address(victim):
            assert store.load(sid) is not None


def test_a_node_that_stays_dead_is_tried_again_and_left_out_again(
    store: MemcachedStore, three: list[MemcachedServer]
) -> None:
    three[1].kill()
    for _ in range(3):
        for sid in [new_sid() for _ in range(20)]:
            store.save(sid, b"x", 60)
            assert store.load(sid) is not None
        time.sleep(DEAD_TIMEOUT + 0.1)


def test_all_nodes_down_is_unavailable(store: MemcachedStore, three: list[MemcachedServer]) -> None:
    sid = new_sid()
    store.save(sid, b"x", 60)
    for server in three:
        server.kill()
    for _ in range(4):  # the first calls find the nodes dead one by one, then none is left
        with pytest.raises(StoreUnavailable):
            store.save(new_sid(), b"x", 60)
    with pytest.raises(StoreUnavailable):
        store.load(sid)


def test_flask_with_a_dead_node(three: list[MemcachedServer]) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k",
        SESSION_TYPE="memcached://" + ",".join(map(address, three)) + "?dead_timeout=60",
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
        three[2].kill()
        seen = [browser.get("/user") for browser in browsers]
        assert all(response.status_code == 200 for response in seen)
        kept = [response.text == f"u{number}" for number, response in enumerate(seen)]
        assert all(response.text in (f"u{number}", "None") for number, response in enumerate(seen))
        assert any(kept) and not all(kept)
        for number, browser in enumerate(browsers):  # everyone can log in again
            assert browser.post(f"/login/again{number}").status_code == 200
            assert browser.get("/user").text == f"again{number}"
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


def test_a_write_memcached_refuses_is_never_silent(memcached_server: MemcachedServer) -> None:
    too_large = b"x" * (2 * 1024 * 1024)
    store = MemcachedStore(PooledClient(memcached_server.address), key_prefix="big:")
    legacy = memcache.Client([address(memcached_server)])
    try:
        with pytest.raises(StoreError):
            store.save(new_sid(), too_large, 60)
        with pytest.raises(StoreError):
            store.save_if(new_sid(), too_large, 60, expected=None)
        with pytest.raises(StoreError):
            PythonMemcachedStore(legacy).save(new_sid(), too_large, 60)
    finally:
        store.client.close()
        legacy.disconnect_all()


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
    halfway = threading.Barrier(5)

    def work() -> None:
        try:
            for round_ in range(120):
                if round_ == 60:
                    halfway.wait(timeout=30)
                sid = new_sid()
                store.save(sid, b"data", 60)
                record = store.load_and_touch(sid, 60)
                if record is not None:  # None only when its node died in between
                    assert store.save_if(sid, b"more", 60, expected=record) in (True, False)
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
    assert address(three[1]) not in store.client.hasher.nodes
