"""The user index outlives every session it lists, sliding expiry included, and stays small."""

from __future__ import annotations

import collections.abc as c
import logging
import secrets
import time

import pytest
import redis
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster

from flask_serverside.testing import new_sid
from flask_serverside_redis import RedisStore
from flask_serverside_redis._record import HEADER


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["server", "cluster"])
def client(request) -> c.Iterator[redis.Redis | RedisCluster]:
    if request.param == "server":
        server = request.getfixturevalue("redis_server")
        client = redis.Redis(server.host, server.port)
    else:
        cluster = request.getfixturevalue("redis_cluster")
        client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster.startup_nodes])
    yield client
    client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(client, clock) -> RedisStore:
    return RedisStore(client, key_prefix=f"index-{secrets.token_hex(4)}:", clock=clock)


def deadline(store: RedisStore, sid: str) -> int:
    return HEADER.unpack(store.client.getrange(store.key_prefix + sid, 0, HEADER.size - 1))[2]


def test_save_scores_the_entry_and_expires_the_index_with_it(store, clock):
    sid = new_sid()
    store.save(sid, b"x", 10, user_id="alice")
    index = store.user_key("alice")
    assert store.client.zscore(index, sid) == clock.now + 20 == deadline(store, sid)
    assert store.client.expiretime(index) == clock.now + 20 + 60
    store.save(new_sid(), b"x", 10)
    assert deadline(store, sid) == clock.now + 20


@pytest.mark.parametrize("refresh", ["load_and_touch", "touch"])
def test_sliding_expiry_keeps_the_entry_ahead_of_the_session(store, clock, refresh):
    sid = new_sid()
    store.save(sid, b"x", 10, user_id="alice")
    index = store.user_key("alice")
    store.client.delete(index)  # as if it had expired
    getattr(store, refresh)(sid, 10)
    assert store.client.exists(index) == 0  # not due yet: a plain GETEX / EXPIRE
    clock.now += 15  # the session, touched now, would outlive the entry (due at +20)
    getattr(store, refresh)(sid, 10)
    assert store.client.zscore(index, sid) == clock.now + 20 == deadline(store, sid)
    assert sid in store.user_sids("alice")
    assert store.load(sid).data == b"x"


def test_a_refresh_never_touches_a_newer_record(store, clock):
    sid = new_sid()
    store.save(sid, b"old", 10, user_id="alice")
    stale = store.load(sid)
    store.save(sid, b"new", 10, user_id="bob")
    clock.now += 15
    store._refresh(sid, stale.version, int(clock.now), int(clock.now) + 20)
    assert store.load(sid).data == b"new"
    assert deadline(store, sid) == clock.now - 15 + 20


def test_entries_past_their_time_are_dropped(store, clock):
    old, new = new_sid(), new_sid()
    store.save(old, b"x", 10, user_id="alice")
    clock.now += 100
    assert store.user_sids("alice") == []
    store.save(new, b"x", 10, user_id="alice")
    assert store.client.zrange(store.user_key("alice"), 0, -1) == [new.encode()]


def test_a_failed_index_refresh_does_not_fail_the_read(store, clock, caplog):
    sid = new_sid()
    store.save(sid, b"x", 10, user_id="alice")
    store.client.set(store.user_key("alice"), b"not a sorted set")
    clock.now += 15
    with caplog.at_level(logging.WARNING, logger="flask_serverside"):
        assert store.load_and_touch(sid, 10).data == b"x"
    assert "could not refresh the user index" in caplog.text
    store.client.delete(store.user_key("alice"))


def test_a_write_leaves_a_good_entry_alone(store, clock):
    sid = new_sid()
    store.save(sid, b"a", 10, user_id="alice")
    index = store.user_key("alice")
    store.client.delete(index)  # to see whether the next writes touch it
    clock.now += 5
    assert store.save_if(sid, b"b", 10, expected=store.load(sid), user_id="alice")
    assert store.client.exists(index) == 0 and deadline(store, sid) == clock.now - 5 + 20
    clock.now += 6  # the entry (good until +20) would now end before the session (+21)
    assert store.save_if(sid, b"c", 10, expected=store.load(sid), user_id="alice")
    assert store.client.zscore(index, sid) == clock.now + 20 == deadline(store, sid)
    assert store.save_if(sid, b"d", 10, expected=store.load(sid), user_id="bob")
    assert store.client.zscore(store.user_key("bob"), sid) == clock.now + 20
    store.save(sid, b"e", 10, user_id="bob")  # a plain save always writes the entry
    assert store.client.zscore(store.user_key("bob"), sid) == clock.now + 20


def test_a_user_id_too_long_to_index_is_not_quoted():
    from flask_serverside import StoreError
    from flask_serverside_redis._record import pack

    user = ("a" * 40 + secrets.token_hex(40_000)).encode()
    with pytest.raises(StoreError, match=f"a user id of {len(user)} bytes is too long") as info:
        pack(b"data", user, 0)
    assert "aaaa" not in str(info.value)  # not even its start
