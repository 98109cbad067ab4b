"""Four worker processes of four threads each, writing their own keys into one session, on every
store with a conditional save, against real servers: no failed request and no lost key."""

from __future__ import annotations

import pytest

from flask_serverside.testing.contention import run_contention
from flask_serverside.testing.contention import worker_pool

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def pool():
    with worker_pool(4) as workers:
        yield workers


STORES = {
    "redis": lambda request, tmp_path: {
        "SESSION_TYPE": request.getfixturevalue("redis_server").url
    },
    "memcached": lambda request, tmp_path: {
        "SESSION_TYPE": request.getfixturevalue("memcached_server").url
    },
    "mongodb": lambda request, tmp_path: {
        "SESSION_TYPE": request.getfixturevalue("mongodb_server").url
    },
    "postgresql": lambda request, tmp_path: {
        "SESSION_TYPE": request.getfixturevalue("postgresql_server").url.replace(
            "postgresql://", "postgresql+psycopg://"
        )
    },
    "mariadb": lambda request, tmp_path: {
        "SESSION_TYPE": request.getfixturevalue("mariadb_server").url.replace(
            "mysql://", "mysql+pymysql://"
        )
    },
    "filesystem": lambda request, tmp_path: {
        "SESSION_TYPE": "filesystem",
        "SESSION_FILE_DIR": str(tmp_path / "sessions"),
    },
}


@pytest.mark.parametrize("store", STORES)
def test_four_workers_of_four_threads_lose_nothing_and_fail_nothing(store, request, tmp_path, pool):
    config = STORES[store](request, tmp_path)
    result = run_contention(config, workers=4, threads=4, rounds=4, pool=pool)
    assert dict(result.statuses) == {200: 4 * 4 * 4}
    assert result.lost_keys == []
