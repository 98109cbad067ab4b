"""No pickle through cachelib: what the store writes is bytes, and a pickle that someone with
write access to the cache planted under a session's key is never unpickled. The control cases
show that the same cache with cachelib's own serializer would have run it."""

from __future__ import annotations

import os
import pickle
import struct
import time
import typing as t
from pathlib import Path

import pytest
import redis
from cachelib import FileSystemCache
from cachelib import RedisCache
from cachelib.serializers import FileSystemSerializer
from cachelib.serializers import RedisSerializer
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside import get_state
from flask_serverside.testing import new_sid
from flask_serverside_cachelib import BytesSerializer
from flask_serverside_cachelib import CacheLibStore

if t.TYPE_CHECKING:
    import collections.abc as c

    from serverside_testservers import RedisServer

MARKER = "FLASK_SERVERSIDE_PICKLE_RAN"


class Payload:
    """Unpickling this sets an environment variable: the harmless stand-in for an exploit."""

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (exec, (f"import os; os.environ[{MARKER!r}] = '1'",))


PAYLOAD = pickle.dumps(Payload(), pickle.HIGHEST_PROTOCOL)


@pytest.fixture(autouse=True)
def no_marker(monkeypatch: pytest.MonkeyPatch) -> c.Iterator[None]:
    monkeypatch.delenv(MARKER, raising=False)
    yield
    os.environ.pop(MARKER, None)


@pytest.fixture
def redis_client(redis_server: RedisServer) -> c.Iterator[redis.Redis]:
    client = redis.Redis(redis_server.host, redis_server.port)
    yield client
    client.close()


def test_the_files_hold_the_sessions_bytes_not_a_pickle(tmp_path: Path) -> None:
    cache = FileSystemCache(str(tmp_path), threshold=0)
    store = CacheLibStore(cache, key_prefix="p:")
    store.save("sid", b"\x80\x05session bytes", 60)
    raw = Path(cache._get_filename("p:sid")).read_bytes()
    assert raw[4:9] == b"bfss\x01"  # cachelib's expiry, our tag, our header
    assert raw.endswith(b"\x80\x05session bytes")
    assert isinstance(cache.serializer, FileSystemSerializer)  # the caller's cache: unchanged
    assert isinstance(store.cache.serializer, BytesSerializer)  # type: ignore[attr-defined]


def test_redis_holds_the_sessions_bytes_not_a_pickle(redis_client: redis.Redis) -> None:
    store = CacheLibStore(RedisCache(redis_client), key_prefix=f"p-{new_sid()[:8]}:")
    store.save("sid", b"data", 60)
    raw = redis_client.get(store.key_prefix + "sid")
    assert raw is not None and raw.startswith(b"bfss\x01") and raw.endswith(b"data")
    redis_client.delete(store.key_prefix + "sid")


def test_a_pickle_planted_in_a_session_file_is_not_run(tmp_path: Path) -> None:
    cache = FileSystemCache(str(tmp_path), threshold=0)
    store = CacheLibStore(cache, key_prefix="p:")
    with open(cache._get_filename("p:victim"), "wb") as planted:
        planted.write(struct.pack("I", int(time.time()) + 600) + PAYLOAD)
    assert store.load("victim") is None
    assert MARKER not in os.environ
    cache.get("p:victim")  # control: cachelib's own serializer unpickles it
    assert os.environ.get(MARKER) == "1"


def test_a_pickle_planted_in_redis_is_not_run(redis_client: redis.Redis) -> None:
    cache = RedisCache(redis_client)
    store = CacheLibStore(cache, key_prefix=f"p-{new_sid()[:8]}:")
    key = store.key_prefix + "victim"
    redis_client.set(key, b"!" + PAYLOAD, ex=600)
    try:
        assert store.load("victim") is None
        assert MARKER not in os.environ
        assert isinstance(cache.serializer, RedisSerializer)
        cache.get(key)  # control: cachelib's own serializer unpickles it
        assert os.environ.get(MARKER) == "1"
    finally:
        redis_client.delete(key)


def test_an_application_whose_cookie_points_at_a_planted_pickle_starts_afresh(
    tmp_path: Path,
) -> None:
    cache = FileSystemCache(str(tmp_path), threshold=0)
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", SESSION_TYPE="cachelib", SESSION_CACHELIB=cache)
    Session(app)

    @app.get("/whoami")
    def whoami() -> str:
        return str(session.get("user"))

    sid = new_sid(app)
    with open(cache._get_filename("session:" + sid), "wb") as planted:
        planted.write(struct.pack("I", int(time.time()) + 600) + PAYLOAD)
    client = app.test_client()
    client.set_cookie("session", sid)
    response = client.get("/whoami")
    assert response.status_code == 200 and response.text == "None"
    assert MARKER not in os.environ
    get_state(app).close()


def test_the_serializer_refuses_anything_but_bytes_and_ints() -> None:
    serializer = BytesSerializer()
    assert serializer.loads(serializer.dumps(b"\x00raw")) == b"\x00raw"
    assert serializer.loads(serializer.dumps(-12)) == -12
    for value in ({"a": 1}, "text", 1.5, True, None):
        with pytest.raises(TypeError):
            serializer.dumps(value)
    for foreign in (PAYLOAD, b"!" + PAYLOAD, b"i12x", b"", 7):
        assert serializer.loads(foreign) is None
