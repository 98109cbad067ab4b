"""Configuration: SESSION_CACHELIB, Flask-Session's default when it is unset (and the one log
line that says so), what is refused, and how failures of the cache come out."""

from __future__ import annotations

import logging
import shutil
import typing as t

import freezegun
import pytest
import redis
from cachelib import FileSystemCache
from cachelib import NullCache
from cachelib import RedisCache
from cachelib import SimpleCache
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from flask_serverside import ConfigurationError
from flask_serverside import Session
from flask_serverside import StoreError
from flask_serverside import StoreSettings
from flask_serverside import StoreUnavailable
from flask_serverside import get_state
from flask_serverside.registry import resolve_store
from flask_serverside.testing import new_sid
from flask_serverside_cachelib import CacheLibStore

if t.TYPE_CHECKING:
    import collections.abc as c
    from pathlib import Path

    from serverside_testservers import RedisServer


NO_RETRY = Retry(NoBackoff(), 0)


def settings(**config: t.Any) -> StoreSettings:
    return StoreSettings(name="cachelib", config=config, key_prefix="cfg:")


def test_entry_point() -> None:
    assert resolve_store("cachelib")[1] is CacheLibStore


def test_a_cache_passed_in_is_used(tmp_path: Path) -> None:
    cache = FileSystemCache(str(tmp_path), threshold=0)
    store = CacheLibStore.from_settings(settings(SESSION_CACHELIB=cache))
    store.save("sid", b"data", 60)
    assert store.key_prefix == "cfg:"
    assert store.cache._path == cache._path  # a copy of it, on the same directory
    assert CacheLibStore(cache).load("sid") is None  # another prefix
    record = CacheLibStore(cache, key_prefix="cfg:").load("sid")
    assert record is not None and record.data == b"data"


def test_without_SESSION_CACHELIB_flask_sessions_default_is_taken_and_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", SESSION_TYPE="cachelib")
    with caplog.at_level(logging.INFO, logger="flask_serverside.cachelib"):
        Session(app)

        @app.post("/login")
        def login() -> str:
            from flask import session

            session["user"] = "alice"
            return "ok"

        client = app.test_client()
        client.post("/login")
        client.post("/login")
    lines = [r for r in caplog.records if r.name == "flask_serverside.cachelib"]
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING
    message = lines[0].getMessage()
    assert "SESSION_CACHELIB is not set" in message and "threshold=500" in message
    assert str(tmp_path / "flask_session") in message
    cache = get_state(app).store.cache
    assert isinstance(cache, FileSystemCache)
    assert cache._path == str(tmp_path / "flask_session") and cache._threshold == 500
    assert len([p for p in (tmp_path / "flask_session").iterdir() if "count" not in p.name]) >= 1
    get_state(app).close()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (NullCache(), "a NullCache, which keeps nothing"),
        ({}, "not a dict"),
        ("redis://localhost", "not a str"),
    ],
)
def test_what_is_not_a_cache_is_refused(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CacheLibStore.from_settings(settings(SESSION_CACHELIB=value))


def test_init_app_fails_on_a_bad_value() -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", SESSION_TYPE="cachelib", SESSION_CACHELIB=object())
    with pytest.raises(ConfigurationError, match="SESSION_CACHELIB must be a cachelib cache"):
        Session(app)


def test_a_write_the_cache_could_not_make_is_an_error(tmp_path: Path) -> None:
    store = CacheLibStore(FileSystemCache(str(tmp_path / "gone"), threshold=0))
    shutil.rmtree(tmp_path / "gone")  # cachelib logs the OSError and returns False
    with pytest.raises(StoreError, match="did not store the session"):
        store.save(new_sid(), b"data", 60)


def test_a_delete_that_did_not_happen_is_an_error(tmp_path: Path) -> None:
    class Stubborn(SimpleCache):
        def delete(self, key: str) -> bool:
            return False  # cachelib's way of saying the backend failed

    store = CacheLibStore(Stubborn())
    sid = new_sid()
    store.save(sid, b"data", 60)
    with pytest.raises(StoreError, match="did not delete"):
        store.delete(sid)
    store.delete(new_sid())  # missing: no error


def test_a_redis_server_that_is_down_is_unavailable(
    make_redis_server: c.Callable[..., RedisServer],
) -> None:
    server = make_redis_server()
    client = redis.Redis(
        server.host, server.port, socket_timeout=1, socket_connect_timeout=1, retry=NO_RETRY
    )
    store = CacheLibStore(RedisCache(client))
    sid = new_sid()
    store.save(sid, b"data", 60)
    server.kill()
    try:
        for operation in (
            lambda: store.load(sid),
            lambda: store.save(sid, b"x", 60),
            lambda: store.delete(sid),
        ):
            with pytest.raises(StoreUnavailable, match="cachelib RedisCache is unavailable"):
                operation()
    finally:
        client.close()


def test_a_client_that_decodes_responses_is_reported(redis_server: RedisServer) -> None:
    client = redis.Redis(redis_server.host, redis_server.port, decode_responses=True)
    store = CacheLibStore(RedisCache(client))
    sid = new_sid()
    try:
        store.save(sid, b"data", 60)
        with pytest.raises(StoreError, match="cachelib RedisCache"):
            store.load(sid)
    finally:
        store.delete(sid)
        client.close()


def test_an_expired_record_is_never_returned_whatever_the_cache_does() -> None:
    class Lagging(SimpleCache):
        """A cache whose own expiry lags (a TTL job that has not run yet): it keeps
        everything."""

        def set(self, key: str, value: t.Any, timeout: t.Any = None) -> bool:
            return bool(super().set(key, value, timeout=0))

    store = CacheLibStore(Lagging())
    expiring, lasting = new_sid(), new_sid()
    with freezegun.freeze_time() as frozen:
        store.save(expiring, b"expiring", 1)
        store.save(lasting, b"lasting", 600)
        frozen.tick(2)
        assert store.cache.get(store.key_prefix + expiring) is not None  # the cache still has it
        assert store.load(expiring) is None
        assert store.load(lasting) is not None
