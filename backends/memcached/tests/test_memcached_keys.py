"""Keys within memcached's limits whatever the prefix or id, and lifetimes past 30 days."""

from __future__ import annotations

import socket
import time
import typing as t

import pytest
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside.testing import new_sid
from flask_serverside.testing import spy_on_store
from flask_serverside_memcached import MemcachedStore
from flask_serverside_memcached import build_client
from flask_serverside_memcached import expiry_time
from flask_serverside_memcached import memcached_key
from flask_serverside_memcached.store import THIRTY_DAYS

if t.TYPE_CHECKING:
    import collections.abc as c

    from serverside_testservers.memcached import MemcachedServer

THIRTY_ONE_DAYS = 31 * 24 * 3600
# memcached's clock ticks once a second, so the TTL it reports can be a second over.


def remaining_ttl(server: MemcachedServer, key: str) -> int | None:
    """The seconds ``key`` has left on ``server`` (meta get), or ``None`` when it is absent."""
    with socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(f"mg {key} t\r\n".encode())
        reply = sock.makefile("rb").readline().decode().split()
    if reply[0] == "EN":
        return None
    assert reply[0] == "HD", reply
    return int(reply[1][1:])


def is_valid_key(key: str) -> bool:
    raw = key.encode("utf-8")
    return len(raw) <= 250 and all(0x21 <= byte <= 0x7E for byte in raw)


@pytest.fixture
def make_store(memcached_server: MemcachedServer) -> c.Iterator[c.Callable[[str], MemcachedStore]]:
    made: list[MemcachedStore] = []

    def make(prefix: str) -> MemcachedStore:
        made.append(MemcachedStore(build_client([memcached_server.address]), key_prefix=prefix))
        return made[-1]

    yield make
    for store in made:
        store.client.close()


def test_expiry_time() -> None:
    assert expiry_time(1) == 1
    assert expiry_time(THIRTY_DAYS) == THIRTY_DAYS
    assert expiry_time(THIRTY_DAYS + 1, now=1_000.5) == 1_000 + THIRTY_DAYS + 1
    before = int(time.time())
    assert before + THIRTY_ONE_DAYS <= expiry_time(THIRTY_ONE_DAYS) <= before + 1 + THIRTY_ONE_DAYS


def test_valid_keys_are_flask_sessions_keys() -> None:
    sid = new_sid()
    assert memcached_key("session:", sid) == "session:" + sid


@pytest.mark.parametrize(
    ("prefix", "sid"),
    [
        ("p" * 300, new_sid()),
        ("my app sessions: ", new_sid()),
        ("tab\there:", new_sid()),
        ("crlf\r\nflush_all\r\n", new_sid()),
        ("ünïcode:", new_sid()),
        ("\udcff surrogate:", new_sid()),
        ("session:", "x" * 256),
        ("session:", "a b\r\nflush_all"),
        ("", "é" * 200),
    ],
)
def test_every_key_is_valid_and_deterministic(prefix: str, sid: str) -> None:
    key = memcached_key(prefix, sid)
    assert is_valid_key(key)
    assert memcached_key(prefix, sid) == key
    assert memcached_key(prefix + "other", sid) != key
    assert memcached_key(prefix, sid + "x") != key


def test_a_long_prefix_keeps_the_id_readable() -> None:
    sid = new_sid()
    key = memcached_key("p" * 300, sid)
    assert key.startswith("fss:") and key.endswith(":" + sid) and len(key) == 37 + len(sid)


def test_the_client_key_prefix_counts_against_the_limit() -> None:
    sid = new_sid()
    assert memcached_key("p" * 200, sid, limit=250 - 10).startswith("fss:")


@pytest.mark.parametrize("prefix", ["p" * 300, "my app sessions: ", "ünïcode\x00:"])
def test_hostile_prefixes_work_on_a_real_server(
    make_store: c.Callable[[str], MemcachedStore], memcached_server: MemcachedServer, prefix: str
) -> None:
    store = make_store(prefix)
    other = make_store(prefix + "2")
    sid = new_sid()
    store.save(sid, b"mine", 60)
    assert make_store(prefix).load(sid) == store.load(sid)
    record = store.load(sid)
    assert record is not None and record.data == b"mine"
    assert other.load(sid) is None
    assert remaining_ttl(memcached_server, store.key(sid)) is not None
    store.delete(sid)
    assert store.load(sid) is None


def test_hostile_ids_never_make_an_invalid_command(
    make_store: c.Callable[[str], MemcachedStore],
) -> None:
    store = make_store("session:")
    bystander = new_sid()
    store.save(bystander, b"bystander", 60)
    for sid in ("a b", "x\r\nflush_all", "y" * 400, "\x00", "é"):
        assert store.load(sid) is None
        store.save(sid, b"odd", 60)
        record = store.load(sid)
        assert record is not None and record.data == b"odd"
        store.delete(sid)
    record = store.load(bystander)
    assert record is not None and record.data == b"bystander"


def test_a_31_day_lifetime_is_stored_as_31_days(
    make_store: c.Callable[[str], MemcachedStore], memcached_server: MemcachedServer
) -> None:
    store = make_store("ttl:")
    sid = new_sid()
    store.save(sid, b"long", THIRTY_ONE_DAYS)
    ttl = remaining_ttl(memcached_server, store.key(sid))
    assert ttl is not None and THIRTY_ONE_DAYS - 5 <= ttl <= THIRTY_ONE_DAYS + 2
    assert store.touch(sid, 40 * 24 * 3600)
    ttl = remaining_ttl(memcached_server, store.key(sid))
    assert ttl is not None and ttl > THIRTY_ONE_DAYS
    record = store.load_and_touch(sid, THIRTY_ONE_DAYS)
    assert record is not None and record.data == b"long"
    ttl = remaining_ttl(memcached_server, store.key(sid))
    assert ttl is not None and THIRTY_ONE_DAYS - 5 <= ttl <= THIRTY_ONE_DAYS + 2
    assert record.version is not None
    assert store.save_if(sid, b"longer", THIRTY_ONE_DAYS, expected=record)
    ttl = remaining_ttl(memcached_server, store.key(sid))
    assert ttl is not None and THIRTY_ONE_DAYS - 5 <= ttl <= THIRTY_ONE_DAYS + 2


def test_flask_default_lifetime_lasts_with_a_hostile_prefix(
    memcached_server: MemcachedServer,
) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k",
        SESSION_TYPE=memcached_server.url,
        SESSION_KEY_PREFIX="my site sessions: " * 20,
    )
    Session(app)

    @app.post("/login")
    def login() -> str:
        session["user"] = "alice"
        return "ok"

    @app.get("/user")
    def user() -> str:
        return str(session.get("user"))

    try:
        client = app.test_client()
        client.post("/login")
        spy = spy_on_store(app)
        assert client.get("/user").text == "alice"
        sid = spy.sids[0]
        store = spy.wrapped
        assert isinstance(store, MemcachedStore)
        ttl = remaining_ttl(memcached_server, store.key(sid))
        assert ttl is not None and THIRTY_ONE_DAYS - 5 <= ttl <= THIRTY_ONE_DAYS + 2
        hostile = app.test_client()
        hostile.set_cookie("session", "a b\r\nflush_all")
        assert hostile.get("/user").text == "None"
        assert spy.sids == [sid]
    finally:
        app.extensions["serverside"].close()
