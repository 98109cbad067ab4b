"""The worker-local session cache (``SESSION_REDIS_CACHE``) on a real Redis: coherence across
processes, flushes when the invalidation channel drops, deferred expiry refreshes, the
conformance kit with the cache on, and the commands a cached read costs (none)."""

from __future__ import annotations

import collections.abc as c
import contextlib
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

import pytest
import redis
from flask import Flask

import flask_serverside
from flask_serverside import ConfigurationError
from flask_serverside import StoreSettings
from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract
from flask_serverside.testing import new_sid
from flask_serverside_redis import RedisStore
from flask_serverside_redis import _cache

if t.TYPE_CHECKING:
    from serverside_testservers import RedisServer

WORKER = Path(__file__).with_name("cache_worker.py")
_spec = importlib.util.spec_from_file_location("cache_worker", WORKER)
assert _spec is not None and _spec.loader is not None
cache_worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cache_worker)

#: What a new connection sends once, before its first command: not a cost per request.
HANDSHAKE = frozenset({"hello", "client", "auth", "select"})


def cached_store(client: redis.Redis, key_prefix: str, size: int = 64) -> RedisStore:
    """A store with the cache on and its channel up."""
    store = RedisStore(client, key_prefix=key_prefix, cache=size)
    assert store.cache is not None and store.cache.wait_serving(10)
    return store


def cache_of(app: Flask) -> _cache.SessionCache:
    cache = app.extensions["serverside"].store.cache
    assert cache is not None
    return t.cast(_cache.SessionCache, cache)


class Monitor:
    """The commands every client but the caches' own channels sends to a server (MONITOR),
    leaving out those a script runs."""

    def __init__(self, server: RedisServer) -> None:
        self.client = redis.Redis(server.host, server.port)
        self.monitor = self.client.monitor().__enter__()

    def channels(self) -> set[str]:
        """The addresses of the connections subscribed to invalidations."""
        return {each["addr"] for each in self.client.client_list() if "P" in each["flags"].upper()}

    def commands(self) -> list[str]:
        """The commands sent since the last call."""
        channels = self.channels()
        marker = secrets.token_hex(8)
        self.client.echo(marker)
        seen = []
        while (command := self.monitor.next_command())["command"] != f"ECHO {marker}":
            name = command["command"].split()[0].lower()
            address = f"{command['client_address']}:{command['client_port']}"
            if command["client_type"] == "lua" or name in HANDSHAKE or address in channels:
                continue
            if name == "client" and "list" in command["command"].lower():
                continue  # channels() itself
            seen.append(command["command"])
        return seen

    def close(self) -> None:
        self.monitor.__exit__()
        self.client.close()


@pytest.fixture(scope="module")
def redis_client(redis_server) -> c.Iterator[redis.Redis]:
    client = redis.Redis(redis_server.host, redis_server.port)
    yield client
    client.close()


@pytest.fixture
def server(make_redis_server) -> RedisServer:
    return make_redis_server()


@pytest.fixture
def client(server) -> c.Iterator[redis.Redis]:
    client = redis.Redis(server.host, server.port)
    yield client
    client.close()


@pytest.fixture
def stores() -> c.Iterator[c.Callable[..., RedisStore]]:
    made: list[RedisStore] = []

    def make(client: redis.Redis, key_prefix: str = "c:", size: int = 64) -> RedisStore:
        made.append(cached_store(client, key_prefix, size))
        return made[-1]

    yield make
    for store in made:
        store.close()


@pytest.fixture
def apps() -> c.Iterator[c.Callable[[str, str], Flask]]:
    made: list[Flask] = []

    def make(url: str, prefix: str) -> Flask:
        app = cache_worker.make_app(url, prefix)
        assert cache_of(app).wait_serving(10)
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["serverside"].close()


class Worker:
    """Another process with its own cache on the same Redis (``cache_worker.py``)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), url, prefix],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._read() == {"ready": True}

    def _read(self) -> t.Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the worker process died"
        return json.loads(line)

    def __call__(self, **command: t.Any) -> t.Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


#: The key prefix of the tests that share the module's other process.
SHARED = f"cache-{secrets.token_hex(4)}:"


@pytest.fixture(scope="module")
def other(redis_server) -> c.Iterator[Worker]:
    """Another process on the shared server, with the prefix :data:`SHARED`."""
    worker = Worker(redis_server.url, SHARED)
    yield worker
    worker.close()


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [(True, _cache.DEFAULT_SIZE), (10, 10), (False, 0), (None, 0), (0, 0)],
    ids=["true", "ten", "false", "none", "zero"],
)
def test_the_setting(redis_server, value, size):
    config = {"SESSION_REDIS": redis_server.url, "SESSION_REDIS_CACHE": value}
    store = RedisStore.from_settings(StoreSettings(name="redis", config=config))
    try:
        assert (0 if store.cache is None else store.cache.size) == size
    finally:
        store.close()


@pytest.mark.parametrize("value", ["yes", -1, 1.5, [10]], ids=repr)
def test_a_wrong_setting_says_what_it_takes(value):
    app = Flask(__name__)
    app.config.update(SESSION_TYPE="redis://127.0.0.1:1/0", SESSION_REDIS_CACHE=value)
    with pytest.raises(ConfigurationError, match="SESSION_REDIS_CACHE must be True") as info:
        flask_serverside.Session(app)
    assert repr(value) in str(info.value)


def test_no_cache_on_a_cluster(redis_cluster):
    url = "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in redis_cluster.startup_nodes)
    app = Flask(__name__)
    app.config.update(SESSION_TYPE=url, SESSION_REDIS_CACHE=True)
    with pytest.raises(ConfigurationError, match="not available on a Redis Cluster"):
        flask_serverside.Session(app)
    cluster = redis.cluster.RedisCluster(host=redis_cluster.startup_nodes[0][0],
                                         port=redis_cluster.startup_nodes[0][1])  # fmt: skip
    try:
        with pytest.raises(ConfigurationError, match="not available on a Redis Cluster"):
            RedisStore(cluster, cache=10)
    finally:
        cluster.close()


# -- the conformance kit with the cache on -------------------------------------------------


class TestCachedRedisStore(StoreContract):
    @pytest.fixture
    def store_factory(self, redis_client):
        return lambda key_prefix: cached_store(redis_client, key_prefix)


class _Outage:
    """A Redis of its own that a test freezes (SIGSTOP) and thaws, so its data stays."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        url = server.url + "?socket_timeout=0.3&socket_connect_timeout=0.3"
        self.config = {"SESSION_TYPE": url, "SESSION_REDIS_CACHE": True}

    @contextlib.contextmanager
    def down(self) -> c.Iterator[None]:
        os.kill(self.server.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.server.pid, signal.SIGCONT)


class TestFlaskOnCachedRedis(SessionFlowContract):
    @pytest.fixture
    def session_config(self, redis_server):
        return {"SESSION_TYPE": redis_server.url, "SESSION_REDIS_CACHE": True}

    @pytest.fixture
    def store_outage(self, make_redis_server):
        return _Outage(make_redis_server())

    @pytest.fixture
    def backend_dump(self, redis_client):
        def dump(app):
            return b"".join(
                key + (redis_client.dump(key) or b"") for key in redis_client.scan_iter(count=1000)
            )

        return dump


# -- zero round trips ----------------------------------------------------------------------


def test_a_repeated_read_sends_no_command(server, apps):
    monitor = Monitor(server)
    try:
        app = apps(server.url, "zero:")
        browser = app.test_client()
        browser.post("/login", data={"user": "alice"})
        browser.get("/read")  # loads the fetch script into Redis
        browser.post("/count")  # our own write: the next read fetches the new record
        monitor.commands()
        assert browser.get("/read").get_json() == {"user": "alice", "count": 1}
        assert [command.split()[0] for command in monitor.commands()] == ["EVALSHA"]
        hits = cache_of(app).stats["hits"]
        for _ in range(20):
            assert browser.get("/read").get_json() == {"user": "alice", "count": 1}
        assert monitor.commands() == []
        assert cache_of(app).stats["hits"] == hits + 20
        browser.post("/count")
        assert browser.get("/read").get_json() == {"user": "alice", "count": 2}
        assert browser.get("/read").get_json() == {"user": "alice", "count": 2}
        # the write's hit, its save; then one fetch and one hit
        assert [command.split()[0] for command in monitor.commands()] == ["EVALSHA"] * 2
    finally:
        monitor.close()


def test_the_cache_holds_at_most_its_size_least_recently_used_first(client, stores):
    store = stores(client, size=3)
    sids = [new_sid() for _ in range(5)]
    for sid in sids:
        store.save(sid, sid.encode(), 60)
    for sid in sids[:3]:
        store.load(sid)
    store.load(sids[0])  # now the most recently used
    store.load(sids[3])  # evicts sids[1]
    assert store.cache.cached == 3
    hits = store.cache.stats["hits"]
    for sid in (sids[0], sids[2], sids[3]):
        assert store.load(sid).data == sid.encode()
    assert store.cache.stats["hits"] == hits + 3
    store.load(sids[1])
    assert store.cache.stats["hits"] == hits + 3


# -- sliding expiry ------------------------------------------------------------------------


def test_the_expiry_refresh_is_deferred_within_a_tenth_of_the_lifetime(client, stores):
    store = stores(client)
    sid = new_sid()
    store.save(sid, b"data", 2)
    store.load_and_touch(sid, 2)  # fetched: its expiry is fresh, so not refreshed
    store.load_and_touch(sid, 2)
    first = client.pttl("c:" + sid)
    time.sleep(0.05)
    for _ in range(5):
        assert store.load_and_touch(sid, 2).data == b"data"
        assert store.touch(sid, 2) is True
    assert client.pttl("c:" + sid) < first  # cached reads refreshed nothing
    assert store.cache.stats["hits"] >= 6
    time.sleep(2 * _cache.REFRESH_FRACTION + 0.05)  # past a tenth of the lifetime
    assert store.load_and_touch(sid, 2).data == b"data"
    assert client.pttl("c:" + sid) > 1900  # refreshed, in the same round trip
    store.load_and_touch(sid, 2)  # cached again (the refresh invalidated it)
    time.sleep(0.05)
    assert store.touch(sid, 2) is True
    assert client.pttl("c:" + sid) < 1950


def test_a_cached_record_is_never_served_past_its_expiry(client, stores):
    store = stores(client)
    sid = new_sid()
    store.save(sid, b"short", 1)
    assert store.load(sid).data == b"short"
    assert store.load(sid).data == b"short"
    time.sleep(1.05)
    assert store.load(sid) is None


def test_an_index_deadline_due_on_a_refresh_is_moved_on(client, stores):
    start = int(time.time())
    now = [float(start)]
    store = RedisStore(client, key_prefix="idx:", clock=lambda: now[0], cache=8)
    try:
        assert store.cache.wait_serving(10)
        sid = new_sid()
        store.save(sid, b"data", 100, user_id="alice")
        assert client.zscore("idx:user:alice", sid) == start + 200
        assert store.load_and_touch(sid, 100).data == b"data"  # cached, no refresh due
        now[0] += 150  # the session, refreshed now, would outlive its index entry
        client.expire("idx:" + sid, 50)  # and Redis says its refresh is due
        assert store.load_and_touch(sid, 100).data == b"data"
        assert client.zscore("idx:user:alice", sid) == start + 350
    finally:
        store.close()


# -- coherence -----------------------------------------------------------------------------


def test_two_processes_alternating_never_see_a_stale_record(redis_client, stores, other):
    """Each round, one process reads the session (twice: the second from its cache), saves
    the next value conditionally on what it read, and reads again; the other process goes
    next. A stale read shows as a wrong value or as a lost compare-and-set."""
    ours = stores(redis_client, key_prefix=SHARED)
    sid = new_sid()
    ours.save(sid, b"0", 600)
    value = 0
    rounds = 1000
    for _ in range(rounds):
        reply = other(op="step", sid=sid, expect=value)
        assert reply == {"seen": [value, value, value + 1, value + 1], "saved": True}
        value += 1
        reply = cache_worker.step(ours, sid, value)
        assert reply == {"seen": [value, value, value + 1, value + 1], "saved": True}
        value += 1
    assert ours.cache.stats["hits"] >= rounds  # the second read of each step, at least
    assert other(op="stats")["hits"] >= rounds


def test_threads_and_another_process_never_see_a_stale_record(redis_client, stores, other):
    """Threads of this process read while another process writes: once a write has
    returned, no read that starts later returns an older value."""
    ours = stores(redis_client, key_prefix=SHARED)
    sid = new_sid()
    ours.save(sid, b"0", 600)
    written = [0]
    stale: list[tuple[int, int]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            floor = written[0]
            record = ours.load_and_touch(sid, 600)
            if record is None or int(record.data) < floor:
                stale.append((floor, -1 if record is None else int(record.data)))

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for value in range(0, 300, 2):
            assert other(op="step", sid=sid, expect=value)["saved"] is True
            written[0] = value + 1
            assert cache_worker.step(ours, sid, value + 1)["saved"] is True
            written[0] = value + 2
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert stale == []


def test_revoke_in_another_process_logs_out_on_the_next_request(redis_server, apps, other):
    app = apps(redis_server.url, SHARED)
    user = f"alice-{secrets.token_hex(4)}"
    browser = app.test_client()
    browser.post("/login", data={"user": user})
    for _ in range(3):
        assert browser.get("/read").get_json()["user"] == user
    hits = cache_of(app).stats["hits"]
    assert hits >= 2
    assert other(op="revoke", user=user) == {"revoked": 1}
    assert browser.get("/read").get_json() == {"user": None, "count": 0}


def test_logout_in_another_process_takes_effect_on_the_next_request(redis_server, apps, other):
    app = apps(redis_server.url, SHARED)
    browser = app.test_client()
    browser.post("/login", data={"user": "alice"})
    browser.post("/count")
    for _ in range(3):
        assert browser.get("/read").get_json() == {"user": "alice", "count": 1}
    cookie = browser.get_cookie("session").value
    assert other(op="request", method="GET", path="/read", cookie=cookie)["json"]["count"] == 1
    assert other(op="request", method="POST", path="/count", cookie=cookie)["json"] == {"count": 2}
    assert browser.get("/read").get_json() == {"user": "alice", "count": 2}
    assert other(op="request", method="POST", path="/logout", cookie=cookie)["status"] == 200
    assert browser.get("/read").get_json() == {"user": None, "count": 0}


def test_own_writes_leave_no_stale_copy_even_before_their_invalidation(client, stores, monkeypatch):
    store = stores(client, key_prefix="own:")
    sid = new_sid()
    warm(store, sid, b"one")
    # From here on invalidations arrive late (a slow network, say): nothing is applied.
    monkeypatch.setattr(_cache.SessionCache, "_drain_locked", lambda self: None)
    record = store.load(sid)
    assert store.save_if(sid, b"two", 600, expected=record) is True
    assert store.load(sid).data == b"two"
    store.save(sid, b"three", 600)
    assert store.load(sid).data == b"three"
    assert store.load_and_touch(sid, 600).data == b"three"
    store.delete(sid)
    assert store.load(sid) is None
    # Another writer's change, whose invalidation has not arrived: the cached copy is stale,
    # so a save based on it loses the compare-and-set, and the next load fetches.
    store.save(sid, b"ours", 600)
    stale = store.load(sid)
    assert store.load(sid) == stale  # cached
    client.set("own:" + sid, b"theirs", ex=600)
    assert store.save_if(sid, b"mine", 600, expected=stale) is False
    assert store.load(sid).data == b"theirs"


# -- the invalidation channel drops ----------------------------------------------------------


def warm(store: RedisStore, sid: str, data: bytes) -> None:
    """Save ``data`` and read it until the cache serves it."""
    store.save(sid, data, 600)
    assert store.load(sid).data == data
    hits = store.cache.stats["hits"]
    assert store.load(sid).data == data
    assert store.cache.stats["hits"] == hits + 1


def test_a_killed_and_restarted_redis_flushes_the_cache(server, stores, monkeypatch):
    store = stores(redis.Redis(server.host, server.port), key_prefix="kill:")
    sid = new_sid()
    warm(store, sid, b"before")
    reconnect = threading.Event()
    connect = _cache.SessionCache._connect

    def held_back(self: _cache.SessionCache) -> None:
        reconnect.wait(10)
        connect(self)

    monkeypatch.setattr(_cache.SessionCache, "_connect", held_back)
    server.kill()
    server.start()
    # The restarted server lost the record; another client writes a new one before this
    # process's channel is back, so the channel never hears of it.
    server.execute("SET", "kill:" + sid, b"after", "EX", 600)
    assert store.load(sid).data == b"after"  # the channel is down: from Redis
    assert store.cache.stats["drops"] == 1
    reconnect.set()
    assert store.cache.wait_serving(10)  # the channel is back: the cache serves again,
    assert store.load(sid).data == b"after"  # but nothing it held before
    warm(store, sid, b"again")
    store.bound.client.close()


def test_a_killed_channel_connection_flushes_the_cache(client, stores):
    store = stores(client, key_prefix="ck:")
    sid = new_sid()
    warm(store, sid, b"before")
    for each in client.client_list():
        if "P" in each["flags"]:
            client.client_kill_filter(_id=int(each["id"]))
    client.set("ck:" + sid, b"after", ex=600)  # nobody listens for this change
    assert store.load(sid).data == b"after"
    assert store.cache.wait_serving(10)
    assert store.load(sid).data == b"after"
    warm(store, sid, b"again")


def test_nothing_is_served_while_the_channel_is_down(client, stores, monkeypatch):
    store = stores(client, key_prefix="down:")
    sid = new_sid()
    warm(store, sid, b"data")

    # The channel cannot come back (Redis refuses its connections, say) ...
    def refused(self: _cache.SessionCache) -> None:
        raise redis.ConnectionError("refused")

    monkeypatch.setattr(_cache.SessionCache, "_connect", refused)
    for each in client.client_list():
        if "P" in each["flags"]:
            client.client_kill_filter(_id=int(each["id"]))
    # ... and every read goes to Redis meanwhile, whatever it caches.
    for number in range(5):
        client.set("down:" + sid, str(number), ex=600)
        assert store.load(sid).data == str(number).encode()
    assert not store.cache.serving and store.cache.cached == 0


def test_a_silent_channel_stops_serving(server, stores, monkeypatch):
    monkeypatch.setattr(_cache, "HEARTBEAT", 0.05)
    monkeypatch.setattr(_cache, "SILENCE", 0.3)
    store = stores(redis.Redis(server.host, server.port, socket_timeout=5), key_prefix="mute:")
    sid = new_sid()
    warm(store, sid, b"data")
    os.kill(server.pid, signal.SIGSTOP)  # no reply to the heartbeat, no FIN either
    try:
        time.sleep(0.4)
        hits = store.cache.stats["hits"]
        thread = threading.Thread(target=store.load, args=(sid,))
        thread.start()  # goes to Redis, which answers once it runs again
        time.sleep(0.1)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    thread.join(10)
    assert store.cache.stats["hits"] == hits
    store.bound.client.close()


def test_a_flush_of_the_database_empties_the_cache(client, stores):
    store = stores(client, key_prefix="flush:")
    sid = new_sid()
    warm(store, sid, b"data")
    client.flushdb()
    # Unlike a key's invalidation, which Redis writes before the writer's reply, the notice
    # of a flush follows its reply by some microseconds (see the README).
    time.sleep(0.05)
    assert store.load(sid) is None
    assert store.cache.stats["flushes"] >= 1


def test_a_sentinel_failover_flushes_the_cache_and_follows_the_new_master(make_redis_sentinel):
    sentinel = make_redis_sentinel()
    hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
    url = f"redis+sentinel://{hosts}/{sentinel.service_name}?socket_timeout=0.5"
    store = RedisStore.from_url(url, key_prefix="fo:", cache=16)
    try:
        assert store.cache.wait_serving(10)
        sid = new_sid()
        warm(store, sid, b"before")
        deadline = time.monotonic() + 10
        while sentinel.replica.execute("GET", "fo:" + sid) is None:
            assert time.monotonic() < deadline, "the replica never copied the session"
            time.sleep(0.02)
        old_master = sentinel.current_master()
        sentinel.master.kill()
        deadline = time.monotonic() + 15
        while sentinel.current_master() in (old_master, None):
            assert time.monotonic() < deadline, "no new master was elected"
            time.sleep(0.05)
        host, port = t.cast(tuple[str, int], sentinel.current_master())
        new_master = redis.Redis(host, port)
        try:
            # A change on the new master before this process's channel has reconnected.
            new_master.set("fo:" + sid, b"after", ex=600)
            deadline = time.monotonic() + 15
            while True:
                try:
                    record = store.load(sid)
                    break
                except flask_serverside.StoreUnavailable:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            assert record.data == b"after"
            assert store.cache.wait_serving(15)  # the channel is on the new master now
            assert store.load(sid).data == b"after"
            new_master.set("fo:" + sid, b"later", ex=600)
            assert store.load(sid).data == b"later"
            warm(store, sid, b"again")
        finally:
            new_master.close()
    finally:
        store.close()


FORK_SCRIPT = """
import json, os, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, on Python 3.12+
import redis
from flask_serverside_redis import RedisStore

url, prefix, sid = sys.argv[1:4]
store = RedisStore.from_url(url, key_prefix=prefix, cache=8)
assert store.cache.wait_serving(10)
store.save(sid, b"parent", 600)
store.load(sid)
assert store.load(sid).data == b"parent" and store.cache.cached == 1
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    seen = {"cached after fork": store.cache.cached}
    seen["serving"] = store.cache.wait_serving(10)
    store.save(sid, b"child", 600)
    seen["child reads"] = [store.load(sid).data.decode() for _ in range(2)]
    seen["child hits"] = store.cache.stats["hits"]
    os.write(write, json.dumps(seen).encode())
    os._exit(0)
os.close(write)
child = json.loads(os.read(read, 4096))
os.waitpid(pid, 0)
child["parent reads"] = store.load(sid).data.decode()
print(json.dumps(child))
store.close()
"""


def test_a_forked_child_starts_empty_with_its_own_channel(redis_server):
    sid = new_sid()
    out = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, redis_server.url, "fork:", sid],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert json.loads(out) == {
        "cached after fork": 0,
        "serving": True,
        "child reads": ["child", "child"],
        "child hits": 1,
        "parent reads": "child",  # the child's write reached the parent's cache
    }
