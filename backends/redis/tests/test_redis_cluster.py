"""Redis Cluster specifics: enumeration covers every primary; the user index in another slot."""

from __future__ import annotations

import collections.abc as c
import secrets

import pytest

from flask_serverside.testing import new_sid
from flask_serverside_redis import RedisStore


@pytest.fixture
def store(redis_cluster) -> c.Iterator[RedisStore]:
    hosts = ",".join(f"{h}:{p}" for h, p in redis_cluster.startup_nodes)
    store = RedisStore.from_url(
        f"redis+cluster://{hosts}", key_prefix=f"cluster-{secrets.token_hex(4)}:"
    )
    yield store
    store.close()


def test_count_and_iterate_cover_every_primary(store, redis_cluster):
    sids = {new_sid() for _ in range(60)}
    for sid in sids:
        store.save(sid, b"x", 60)
    per_node = [
        len(node.execute("SCAN", 0, "MATCH", store.key_prefix + "*", "COUNT", 1000)[1])
        for node in redis_cluster.nodes
    ]
    assert all(per_node) and sum(per_node) == 60
    assert store.count() == 60
    assert set(store.iter_sids()) == sids


def test_user_index_across_slots(store):
    sids = [new_sid() for _ in range(6)]
    for sid in sids:
        store.save(sid, b"x", 60, user_id="alice")
    store.delete(sids[0])
    assert set(store.user_sids("alice")) == set(sids)  # the core checks each one
    assert 0 < store.client.ttl(store.user_key("alice")) <= 2 * 60 + 60
    assert store.count() == 5
