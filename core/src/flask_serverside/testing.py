"""The conformance kit: one test suite that every store, in this repository or not, runs.

A store's test module subclasses the contracts and supplies one fixture each::

    import pytest
    from flask_serverside.testing import SessionFlowContract, StoreContract
    from my_store import MyStore

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_factory(self, my_server):
            return lambda key_prefix: MyStore(my_server.url, key_prefix=key_prefix)

    class TestMyStoreWithFlask(SessionFlowContract):
        @pytest.fixture
        def session_config(self, my_server):
            return {"SESSION_TYPE": "mystore", "SESSION_MYSTORE_URL": my_server.url}

:class:`StoreContract` checks the protocol and every capability the store declares; tests of
capabilities it does not declare are skipped, and say so. Each test gets its own random key
prefix, so tests share one server without cleaning it. Expiry is checked for real: records are
saved with a time to live of one second and the test waits :attr:`StoreContract.expiry_wait`
(override :meth:`StoreContract.advance_time` for a store with an injectable clock).

:class:`SessionFlowContract` runs Flask applications on the store end to end: the write
policy, cookies, regeneration, hostile cookies, corrupt records and concurrent requests.
"""

from __future__ import annotations

import collections
import collections.abc as c
import datetime
import logging
import secrets
import threading
import time
import typing as t
import uuid

import pytest
from flask import Flask
from flask import flash
from flask import get_flashed_messages
from flask import session
from markupsafe import Markup

from .extension import EXTENSION_KEY
from .extension import Session
from .extension import SessionState
from .store import Capability
from .store import Record
from .store import SessionStore
from .store import missing_methods

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

    from .store import ConditionallySavable
    from .store import Enumerable
    from .store import LoadAndTouchable
    from .store import Purgeable
    from .store import Touchable
    from .store import UserIndexed

__all__ = ["SessionFlowContract", "StoreContract", "StoreSpy", "new_sid", "spy_on_store"]

#: Bytes that survive only a store that treats data as opaque: every byte value.
ALL_BYTES = bytes(range(256)) * 4
#: A long time to live, past memcached's 30-day switch to absolute times.
FORTY_DAYS = 40 * 24 * 3600


def new_sid() -> str:
    """Return an id of the form the core generates."""
    return secrets.token_urlsafe(32)


def _require(store: SessionStore, capability: Capability) -> None:
    if capability not in store.capabilities:
        pytest.skip(f"{type(store).__name__} does not declare {capability.name}")


class StoreContract:
    """The protocol contract. Subclass it and define the ``store_factory`` fixture: a callable
    that takes a key prefix and returns a new store on the backend under test."""

    #: Seconds after which a record saved with a time to live of 1 must be gone.
    expiry_wait: float = 2.2
    #: Threads in the concurrency tests.
    threads: int = 4
    #: Set for a store whose backend also deletes expired records itself (a TTL index), so
    #: :meth:`~flask_serverside.store.Purgeable.purge_expired` may find fewer to delete.
    native_expiry: bool = False

    @pytest.fixture
    def store_factory(self) -> c.Callable[[str], SessionStore]:
        """Override: return ``lambda key_prefix: YourStore(..., key_prefix=key_prefix)``."""
        pytest.fail("define a store_factory fixture in your StoreContract subclass")

    @pytest.fixture
    def key_prefix(self) -> str:
        """A prefix of this test's own, so tests never see each other's records."""
        return f"contract-{secrets.token_hex(6)}:"

    @pytest.fixture
    def make_store(
        self, store_factory: c.Callable[[str], SessionStore]
    ) -> c.Iterator[c.Callable[[str], SessionStore]]:
        """``store_factory``, with every store it made closed at the end of the test."""
        made: list[SessionStore] = []

        def make(key_prefix: str) -> SessionStore:
            made.append(store_factory(key_prefix))
            return made[-1]

        yield make
        for store in made:
            close = getattr(store, "close", None)
            if callable(close):
                close()

    @pytest.fixture
    def store(self, make_store: c.Callable[[str], SessionStore], key_prefix: str) -> SessionStore:
        return make_store(key_prefix)

    @pytest.fixture
    def advance_time(self) -> c.Callable[[float], None]:
        """Override for a store with a fake clock; by default time really passes."""
        return time.sleep

    def wait_for_expiry(self, advance_time: c.Callable[[float], None]) -> None:
        advance_time(self.expiry_wait)

    # -- the three operations ----------------------------------------------------------------

    def test_declares_what_it_implements(self, store: SessionStore) -> None:
        assert isinstance(store.capabilities, Capability)
        assert missing_methods(store) == []

    def test_load_of_missing_sid_returns_none(self, store: SessionStore) -> None:
        assert store.load(new_sid()) is None

    def test_round_trip_keeps_bytes_exactly(self, store: SessionStore) -> None:
        sid = new_sid()
        store.save(sid, ALL_BYTES, 60)
        record = store.load(sid)
        assert isinstance(record, Record)
        assert record.data == ALL_BYTES

    def test_round_trip_of_a_large_record(self, store: SessionStore) -> None:
        sid = new_sid()
        data = secrets.token_bytes(200_000)
        store.save(sid, data, 60)
        record = store.load(sid)
        assert record is not None and record.data == data

    def test_save_overwrites(self, store: SessionStore) -> None:
        sid = new_sid()
        store.save(sid, b"first", 60)
        store.save(sid, b"second", 60)
        record = store.load(sid)
        assert record is not None and record.data == b"second"

    def test_delete_removes_and_tolerates_missing(self, store: SessionStore) -> None:
        sid = new_sid()
        store.save(sid, b"data", 60)
        store.delete(sid)
        assert store.load(sid) is None
        store.delete(sid)
        store.delete(new_sid())

    def test_records_are_independent(self, store: SessionStore) -> None:
        sids = [new_sid() for _ in range(5)]
        for number, sid in enumerate(sids):
            store.save(sid, f"record {number}".encode(), 60)
        store.delete(sids[0])
        assert store.load(sids[0]) is None
        for number, sid in enumerate(sids[1:], start=1):
            record = store.load(sid)
            assert record is not None and record.data == f"record {number}".encode()

    def test_another_instance_sees_the_same_records(
        self, store: SessionStore, make_store: c.Callable[[str], SessionStore], key_prefix: str
    ) -> None:
        sid = new_sid()
        store.save(sid, b"shared", 60)
        other = make_store(key_prefix)
        record = other.load(sid)
        assert record is not None and record.data == b"shared"
        other.delete(sid)
        assert store.load(sid) is None

    def test_key_prefixes_keep_stores_apart(
        self, store: SessionStore, make_store: c.Callable[[str], SessionStore]
    ) -> None:
        other = make_store(f"other-{secrets.token_hex(6)}:")
        sid = new_sid()
        store.save(sid, b"mine", 60)
        assert other.load(sid) is None
        other.save(sid, b"theirs", 60)
        record = store.load(sid)
        assert record is not None and record.data == b"mine"
        other.delete(sid)
        assert store.load(sid) is not None

    def test_save_accepts_a_user_id(self, store: SessionStore) -> None:
        sid = new_sid()
        store.save(sid, b"data", 60, user_id="user@example.com")
        record = store.load(sid)
        assert record is not None and record.data == b"data"

    def test_a_long_time_to_live_is_kept(self, store: SessionStore) -> None:
        sid = new_sid()
        store.save(sid, b"long", FORTY_DAYS)
        record = store.load(sid)
        assert record is not None and record.data == b"long"

    def test_expired_records_are_never_returned(
        self, store: SessionStore, advance_time: c.Callable[[float], None]
    ) -> None:
        expiring, lasting, extended = new_sid(), new_sid(), new_sid()
        store.save(expiring, b"expiring", 1)
        store.save(lasting, b"lasting", 600)
        store.save(extended, b"extended", 1)
        store.save(extended, b"extended again", 600)
        self.wait_for_expiry(advance_time)
        assert store.load(expiring) is None
        assert store.load(expiring) is None
        assert store.load(lasting) is not None
        record = store.load(extended)
        assert record is not None and record.data == b"extended again"
        if Capability.ENUMERATE in store.capabilities:
            enumerable = t.cast("Enumerable", store)
            assert set(enumerable.iter_sids()) == {lasting, extended}
            assert enumerable.count() == 2

    def test_threads_save_and_load_at_once(self, store: SessionStore) -> None:
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                for round_ in range(20):
                    sid = new_sid()
                    data = f"{worker}:{round_}".encode()
                    store.save(sid, data, 60)
                    record = store.load(sid)
                    assert record is not None and record.data == data
                    store.delete(sid)
                    assert store.load(sid) is None
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        _run_threads(work, self.threads)
        assert errors == []

    # -- TOUCH and LOAD_AND_TOUCH -------------------------------------------------------------

    def test_touch_of_missing_sid_returns_false(self, store: SessionStore) -> None:
        _require(store, Capability.TOUCH)
        assert t.cast("Touchable", store).touch(new_sid(), 60) is False

    def test_load_and_touch_of_missing_sid_returns_none(self, store: SessionStore) -> None:
        _require(store, Capability.LOAD_AND_TOUCH)
        assert t.cast("LoadAndTouchable", store).load_and_touch(new_sid(), 60) is None

    def test_refresh_extends_expiry_and_keeps_data(
        self, store: SessionStore, advance_time: c.Callable[[float], None]
    ) -> None:
        if not store.capabilities & (Capability.TOUCH | Capability.LOAD_AND_TOUCH):
            pytest.skip(f"{type(store).__name__} declares neither TOUCH nor LOAD_AND_TOUCH")
        touched, loaded_and_touched = new_sid(), new_sid()
        store.save(touched, b"touched", 1)
        store.save(loaded_and_touched, b"loaded", 1)
        if Capability.TOUCH in store.capabilities:
            assert t.cast("Touchable", store).touch(touched, 600) is True
        if Capability.LOAD_AND_TOUCH in store.capabilities:
            record = t.cast("LoadAndTouchable", store).load_and_touch(loaded_and_touched, 600)
            assert record is not None and record.data == b"loaded"
        self.wait_for_expiry(advance_time)
        if Capability.TOUCH in store.capabilities:
            record = store.load(touched)
            assert record is not None and record.data == b"touched"
            assert t.cast("Touchable", store).touch(new_sid(), 600) is False
        if Capability.LOAD_AND_TOUCH in store.capabilities:
            record = store.load(loaded_and_touched)
            assert record is not None and record.data == b"loaded"

    # -- CONDITIONAL_SAVE ----------------------------------------------------------------------

    def test_create_only_when_absent(self, store: SessionStore) -> None:
        _require(store, Capability.CONDITIONAL_SAVE)
        cas = t.cast("ConditionallySavable", store)
        sid = new_sid()
        assert cas.save_if(sid, b"first", 60, expected=None) is True
        assert cas.save_if(sid, b"second", 60, expected=None) is False
        record = store.load(sid)
        assert record is not None and record.data == b"first"

    def test_save_if_succeeds_on_the_loaded_version_only(self, store: SessionStore) -> None:
        _require(store, Capability.CONDITIONAL_SAVE)
        cas = t.cast("ConditionallySavable", store)
        sid = new_sid()
        store.save(sid, b"v1", 60)
        loaded = store.load(sid)
        assert loaded is not None
        assert cas.save_if(sid, b"v2", 60, expected=loaded, user_id="u1") is True
        assert cas.save_if(sid, b"v3", 60, expected=loaded) is False
        current = store.load(sid)
        assert current is not None and current.data == b"v2"
        assert current.version != loaded.version
        assert cas.save_if(sid, b"v3", 60, expected=current) is True

    def test_a_plain_save_makes_older_versions_stale(self, store: SessionStore) -> None:
        _require(store, Capability.CONDITIONAL_SAVE)
        cas = t.cast("ConditionallySavable", store)
        sid = new_sid()
        store.save(sid, b"same", 60)
        loaded = store.load(sid)
        assert loaded is not None
        store.save(sid, b"same", 60)
        assert cas.save_if(sid, b"late", 60, expected=loaded) is False

    def test_save_if_after_delete(self, store: SessionStore) -> None:
        _require(store, Capability.CONDITIONAL_SAVE)
        cas = t.cast("ConditionallySavable", store)
        sid = new_sid()
        store.save(sid, b"data", 60)
        loaded = store.load(sid)
        store.delete(sid)
        assert cas.save_if(sid, b"resurrected", 60, expected=loaded) is False
        assert store.load(sid) is None
        assert cas.save_if(sid, b"fresh", 60, expected=None) is True

    def test_create_after_expiry(
        self, store: SessionStore, advance_time: c.Callable[[float], None]
    ) -> None:
        _require(store, Capability.CONDITIONAL_SAVE)
        cas = t.cast("ConditionallySavable", store)
        sid = new_sid()
        store.save(sid, b"old", 1)
        self.wait_for_expiry(advance_time)
        assert cas.save_if(sid, b"new", 60, expected=None) is True
        record = store.load(sid)
        assert record is not None and record.data == b"new"

    def test_conditional_increments_from_threads_lose_nothing(self, store: SessionStore) -> None:
        _require(store, Capability.CONDITIONAL_SAVE)
        cas = t.cast("ConditionallySavable", store)
        sid = new_sid()
        store.save(sid, b"0", 60)
        increments = 15
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                for _ in range(increments):
                    while True:
                        record = store.load(sid)
                        assert record is not None
                        value = str(int(record.data) + 1).encode()
                        if cas.save_if(sid, value, 60, expected=record):
                            break
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        _run_threads(work, self.threads)
        assert errors == []
        record = store.load(sid)
        assert record is not None and int(record.data) == self.threads * increments

    # -- PURGE, ENUMERATE, USER_INDEX ----------------------------------------------------------

    def test_purge_removes_expired_records_only(
        self, store: SessionStore, advance_time: c.Callable[[float], None]
    ) -> None:
        _require(store, Capability.PURGE)
        purgeable = t.cast("Purgeable", store)
        expired = [new_sid() for _ in range(3)]
        live = new_sid()
        for sid in expired:
            store.save(sid, b"old", 1)
        store.save(live, b"live", 600)
        self.wait_for_expiry(advance_time)
        removed = purgeable.purge_expired()
        if self.native_expiry:
            assert 0 <= removed <= 3
        else:
            assert removed == 3
        assert purgeable.purge_expired() == 0
        assert all(store.load(sid) is None for sid in expired)
        assert store.load(live) is not None
        if Capability.ENUMERATE in store.capabilities:
            assert set(t.cast("Enumerable", store).iter_sids()) == {live}

    def test_count_and_iterate_this_prefix(
        self, store: SessionStore, make_store: c.Callable[[str], SessionStore]
    ) -> None:
        _require(store, Capability.ENUMERATE)
        enumerable = t.cast("Enumerable", store)
        assert enumerable.count() == 0
        sids = {new_sid() for _ in range(3)}
        for sid in sids:
            store.save(sid, b"data", 60)
        other = make_store(f"other-{secrets.token_hex(6)}:")
        other.save(new_sid(), b"elsewhere", 60)
        assert enumerable.count() == 3
        assert set(enumerable.iter_sids()) == sids
        removed = sids.pop()
        store.delete(removed)
        assert enumerable.count() == 2
        assert set(enumerable.iter_sids()) == sids

    def test_user_index_lists_a_users_sessions(self, store: SessionStore) -> None:
        _require(store, Capability.USER_INDEX)
        indexed = t.cast("UserIndexed", store)
        first, second, others = new_sid(), new_sid(), new_sid()
        store.save(first, b"a", 60, user_id="ünïcode user@example.com")
        store.save(second, b"b", 60, user_id="ünïcode user@example.com")
        store.save(others, b"c", 60, user_id="someone else")
        store.save(new_sid(), b"anonymous", 60)
        listed = set(indexed.user_sids("ünïcode user@example.com"))
        assert {first, second} <= listed
        assert others not in listed
        assert set(indexed.user_sids("nobody")) == set()

    def test_user_index_follows_a_session_to_its_new_user(self, store: SessionStore) -> None:
        _require(store, Capability.USER_INDEX)
        indexed = t.cast("UserIndexed", store)
        sid = new_sid()
        store.save(sid, b"a", 60, user_id="alice")
        store.save(sid, b"b", 60, user_id="bob")
        assert sid in set(indexed.user_sids("bob"))
        if Capability.CONDITIONAL_SAVE in store.capabilities:
            record = store.load(sid)
            cas = t.cast("ConditionallySavable", store)
            assert cas.save_if(sid, b"c", 60, expected=record, user_id="carol")
            assert sid in set(indexed.user_sids("carol"))


def _run_threads(work: c.Callable[[int], None], count: int) -> None:
    threads = [threading.Thread(target=work, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"


# -- Flask end to end --------------------------------------------------------------------------


class StoreSpy:
    """Wraps a store and counts the calls made to it, by method name."""

    def __init__(self, store: SessionStore) -> None:
        self.wrapped = store
        self.capabilities = store.capabilities
        #: Calls made, by method name.
        self.calls: collections.Counter[str] = collections.Counter()
        #: The session ids passed to the store, in order.
        self.sids: list[str] = []

    def reset(self) -> None:
        self.calls.clear()
        self.sids.clear()

    @property
    def writes(self) -> int:
        """Calls that write data: ``save`` and ``save_if``."""
        return self.calls["save"] + self.calls["save_if"]

    def __getattr__(self, name: str) -> t.Any:
        method = getattr(self.wrapped, name)
        if not callable(method):
            return method

        def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
            self.calls[name] += 1
            if args and isinstance(args[0], str):
                self.sids.append(args[0])
            return method(*args, **kwargs)

        return call


def spy_on_store(app: Flask) -> StoreSpy:
    """Put a :class:`StoreSpy` between ``app``'s sessions and its store, and return it."""
    state: SessionState = app.extensions[EXTENSION_KEY]
    spy = StoreSpy(state.store)
    state.store = state.interface.store = state.interface.writer.store = t.cast(t.Any, spy)
    return spy


def _cookie(response: TestResponse, name: str = "session") -> str | None:
    """Return the Set-Cookie header for ``name`` in ``response``, or ``None``."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    return None


class SessionFlowContract:
    """Flask end to end on a store. Subclass it and define the ``session_config`` fixture: the
    configuration (``SESSION_TYPE`` and the store's own keys) of an application on the store
    under test."""

    @pytest.fixture
    def session_config(self) -> dict[str, t.Any]:
        """Override: return the config keys that put an application on your store."""
        pytest.fail("define a session_config fixture in your SessionFlowContract subclass")

    @pytest.fixture
    def make_app(self, session_config: dict[str, t.Any]) -> c.Iterator[c.Callable[..., Flask]]:
        """A factory of applications on the store, each with its own key prefix; keyword
        arguments override config keys."""
        states: list[SessionState] = []

        def make(**overrides: t.Any) -> Flask:
            app = Flask("flow_contract")
            app.config.update(
                SECRET_KEY="flow-contract-secret",
                SESSION_KEY_PREFIX=f"flow-{secrets.token_hex(6)}:",
                **session_config,
            )
            app.config.update(overrides)
            Session(app)
            states.append(app.extensions[EXTENSION_KEY])
            _add_views(app)
            return app

        yield make
        for state in states:
            state.close()

    @pytest.fixture
    def app(self, make_app: c.Callable[..., Flask]) -> Flask:
        return make_app()

    @pytest.fixture
    def client(self, app: Flask) -> FlaskClient:
        return app.test_client()

    def test_a_visit_that_stores_nothing_sends_no_cookie(self, app: Flask) -> None:
        spy = spy_on_store(app)
        response = app.test_client().get("/read")
        assert response.status_code == 200
        assert response.get_json() == {"user": None, "count": 0}
        assert _cookie(response) is None
        assert "Cookie" in response.vary
        assert spy.writes == 0

    def test_login_counter_and_logout(self, app: Flask, client: FlaskClient) -> None:
        response = client.post("/login", data={"user": "alice"})
        cookie = _cookie(response)
        assert cookie is not None
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
        for expected in (1, 2, 3):
            assert client.post("/count").get_json() == {"count": expected}
        assert client.get("/read").get_json() == {"user": "alice", "count": 3}
        sid = client.get("/sid").get_json()["sid"]
        state: SessionState = app.extensions[EXTENSION_KEY]
        assert state.store.load(sid) is not None
        response = client.post("/logout")
        removal = _cookie(response)
        assert removal is not None and "Expires=Thu, 01 Jan 1970" in removal
        assert "HttpOnly" in removal and "SameSite=Lax" in removal and "Path=/" in removal
        assert state.store.load(sid) is None
        assert client.get("/read").get_json() == {"user": None, "count": 0}

    def test_flash_messages_keep_markup(self, client: FlaskClient) -> None:
        client.post("/flash")
        assert client.get("/flashes").get_json() == {
            "messages": [["info", "<b>plain</b>", "str"], ["warning", "<b>bold</b>", "Markup"]]
        }
        assert client.get("/flashes").get_json() == {"messages": []}

    def test_flask_tagged_types_round_trip(self, client: FlaskClient) -> None:
        client.post("/types")
        assert client.get("/types").get_json() == {"ok": True}

    def test_nested_changes_are_saved_without_modified(self, client: FlaskClient) -> None:
        client.post("/login", data={"user": "alice"})
        client.post("/cart/apple")
        client.post("/cart/pear")
        assert client.get("/cart").get_json() == {"cart": ["apple", "pear"]}

    def test_a_read_only_request_only_refreshes_expiry(
        self, app: Flask, client: FlaskClient
    ) -> None:
        client.post("/login", data={"user": "alice"})
        spy = spy_on_store(app)
        assert client.get("/read").get_json()["user"] == "alice"
        if Capability.LOAD_AND_TOUCH in spy.capabilities:
            assert dict(spy.calls) == {"load_and_touch": 1}
        elif Capability.TOUCH in spy.capabilities:
            assert dict(spy.calls) == {"load": 1, "touch": 1}
        else:  # the only way to refresh the expiry is to write the record again
            assert sum(spy.calls.values()) == 2 and spy.writes == 1

    def test_without_sliding_expiry_a_read_only_request_is_one_load(
        self, make_app: c.Callable[..., Flask]
    ) -> None:
        app = make_app(SESSION_REFRESH_EACH_REQUEST=False)
        client = app.test_client()
        client.post("/login", data={"user": "alice"})
        spy = spy_on_store(app)
        response = client.get("/read")
        assert response.get_json()["user"] == "alice"
        assert dict(spy.calls) == {"load": 1}
        assert _cookie(response) is None

    def test_regenerate_moves_data_to_a_new_id(self, app: Flask, client: FlaskClient) -> None:
        client.post("/login", data={"user": "alice"})
        old_sid = client.get("/sid").get_json()["sid"]
        client.post("/regenerate")
        new_sid_ = client.get("/sid").get_json()["sid"]
        assert new_sid_ != old_sid
        state: SessionState = app.extensions[EXTENSION_KEY]
        assert state.store.load(old_sid) is None
        assert client.get("/read").get_json()["user"] == "alice"

    def test_hostile_cookies_never_reach_the_store(self, app: Flask) -> None:
        spy = spy_on_store(app)
        hostile = [
            "../../../../etc/passwd",
            "x" * 4000,
            "a" * 42 + "\u00e9",
            "%00%0d%0a",
            new_sid()[:-1] + "/",
            "",
        ]
        for value in hostile:
            client = app.test_client()
            client.set_cookie("session", value)
            response = client.get("/read")
            assert response.status_code == 200
            assert response.get_json() == {"user": None, "count": 0}
        assert spy.sids == []

    def test_an_unknown_id_is_never_adopted(self, app: Flask) -> None:
        client = app.test_client()
        planted = new_sid()
        client.set_cookie("session", planted)
        response = client.post("/login", data={"user": "mallory"})
        assert response.status_code == 200
        assert client.get("/sid").get_json()["sid"] not in (planted, None)

    def test_a_corrupt_record_gives_a_fresh_session_and_a_log_line(
        self, app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        client.post("/login", data={"user": "alice"})
        sid = client.get("/sid").get_json()["sid"]
        state: SessionState = app.extensions[EXTENSION_KEY]
        state.store.save(sid, b"\xffnot a session", 60)
        with caplog.at_level(logging.WARNING, logger="flask_serverside"):
            response = client.get("/read")
        assert response.status_code == 200
        assert response.get_json() == {"user": None, "count": 0}
        assert "corrupt" in caplog.text

    def test_signed_ids_reject_tampering(self, make_app: c.Callable[..., Flask]) -> None:
        app = make_app(SESSION_USE_SIGNER=True)
        client = app.test_client()
        cookie = _cookie(client.post("/login", data={"user": "alice"}))
        assert cookie is not None
        value = cookie.split(";", 1)[0].split("=", 1)[1]
        sid, _, signature = value.rpartition(".")
        assert sid == client.get("/sid").get_json()["sid"] and signature
        assert client.get("/read").get_json()["user"] == "alice"
        forged = app.test_client()
        forged.set_cookie("session", sid + "." + signature[::-1])
        assert forged.get("/read").get_json()["user"] is None
        bare = app.test_client()
        bare.set_cookie("session", sid)
        assert bare.get("/read").get_json()["user"] is None

    def test_browser_session_cookie_when_not_permanent(
        self, make_app: c.Callable[..., Flask]
    ) -> None:
        app = make_app(SESSION_PERMANENT=False)
        cookie = _cookie(app.test_client().post("/login", data={"user": "alice"}))
        assert cookie is not None and "Expires=" not in cookie

    def test_concurrent_requests_changing_different_keys_both_land(self, app: Flask) -> None:
        if Capability.CONDITIONAL_SAVE not in app.extensions[EXTENSION_KEY].store.capabilities:
            pytest.skip("the store has no conditional save: the last writer wins")
        client = app.test_client()
        client.post("/login", data={"user": "alice"})
        cookie = _request_cookie(client)
        interface = app.session_interface
        with app.test_request_context("/", headers={"Cookie": cookie}) as first:
            with app.test_request_context("/", headers={"Cookie": cookie}) as second:
                first.session["theme"] = "dark"
                second.session["lang"] = "fr"
                del second.session["count"]
                for ctx in (first, second):
                    interface.save_session(app, ctx.session, app.response_class())
        data = client.get("/dump").get_json()
        assert data["theme"] == "dark" and data["lang"] == "fr" and "count" not in data
        assert data["user"] == "alice"


def _request_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return f"session={cookie.value}"


def _add_views(app: Flask) -> None:
    from flask import request

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"user": session.get("user"), "count": session.get("count", 0)}

    @app.get("/dump")
    def dump() -> dict[str, t.Any]:
        return {key: value for key, value in session.items() if not key.startswith("_")}

    @app.get("/sid")
    def sid() -> dict[str, t.Any]:
        return {"sid": getattr(session, "sid", None)}

    @app.post("/login")
    def login() -> dict[str, t.Any]:
        session["user"] = request.form["user"]
        session["count"] = 0
        return {"ok": True}

    @app.post("/count")
    def count() -> dict[str, t.Any]:
        session["count"] = session.get("count", 0) + 1
        return {"count": session["count"]}

    @app.post("/logout")
    def logout() -> dict[str, t.Any]:
        session.destroy()  # type: ignore[attr-defined]
        return {"ok": True}

    @app.post("/regenerate")
    def regenerate() -> dict[str, t.Any]:
        session.regenerate()  # type: ignore[attr-defined]
        return {"ok": True}

    @app.post("/flash")
    def add_flashes() -> dict[str, t.Any]:
        flash("<b>plain</b>", "info")
        flash(Markup("<b>bold</b>"), "warning")
        return {"ok": True}

    @app.get("/flashes")
    def flashes() -> dict[str, t.Any]:
        messages = t.cast("list[tuple[str, str]]", get_flashed_messages(with_categories=True))
        return {"messages": [[cat, str(msg), type(msg).__name__] for cat, msg in messages]}

    sample = {
        "tuple": (1, "two"),
        "bytes": b"\x00\xff",
        "markup": Markup("<i>x</i>"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "nested": {" t": ["looks", "like", "a tag"]},
    }

    @app.post("/types")
    def store_types() -> dict[str, t.Any]:
        session["sample"] = sample
        return {"ok": True}

    @app.get("/types")
    def check_types() -> dict[str, t.Any]:
        loaded = session["sample"]
        same_types = all(type(loaded[key]) is type(value) for key, value in sample.items())
        return {"ok": loaded == sample and same_types}

    @app.post("/cart/<item>")
    def add_to_cart(item: str) -> dict[str, t.Any]:
        session.setdefault("cart", {"items": []})["items"].append(item)
        return {"ok": True}

    @app.get("/cart")
    def cart() -> dict[str, t.Any]:
        return {"cart": session.get("cart", {"items": []})["items"]}
