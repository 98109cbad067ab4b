"""The store contract: the protocol and every capability a store declares, on its backend."""

from __future__ import annotations

import collections.abc as c
import secrets
import threading
import time
import typing as t

import pytest

from ..capabilities import missing_methods
from ..state import get_state
from ..store import Capability
from ..store import Record
from ..store import SessionStore

if t.TYPE_CHECKING:
    from flask import Flask

    from ..store import ConditionallySavable
    from ..store import Enumerable
    from ..store import LoadAndTouchable
    from ..store import Purgeable
    from ..store import SavableOrLoadable
    from ..store import Touchable
    from ..store import UserIndexed

#: Bytes that survive only a store that treats data as opaque: every byte value.
ALL_BYTES = bytes(range(256)) * 4
#: A long time to live, past memcached's 30-day switch to absolute times.
FORTY_DAYS = 40 * 24 * 3600


def new_sid(app: Flask | None = None) -> str:
    """Return a new id of the form the core generates: of ``app``'s configured length
    (``SESSION_ID_LENGTH``), or of the default length without an application."""
    if app is not None:
        return get_state(app).ids.generate()
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
    #: Set for a store whose version token is a digest of the record's bytes (the redis store
    #: in the compatibility write mode, where Flask-Session's records carry no version): saving
    #: the same bytes again keeps the version, which no merge can tell from no save at all.
    #:
    #: .. versionadded:: 0.2
    identical_saves_keep_version: bool = False

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

    # -- expiry: everything that needs time to pass, with one wait ---------------------------

    def test_expiry(self, store: SessionStore, advance_time: c.Callable[[float], None]) -> None:
        """Records saved with a time to live of 1 are never returned once it has passed, and
        saving again with a longer one keeps them; with the capabilities: ``touch`` and
        ``load_and_touch`` extend the expiry and keep the data, a new record can be created
        with ``save_if`` where one expired, and ``purge_expired`` deletes expired records
        only. One wait for all of them keeps the kit fast on real servers."""
        caps = store.capabilities
        expiring, lasting, extended = new_sid(), new_sid(), new_sid()
        store.save(expiring, b"expiring", 1)
        store.save(lasting, b"lasting", 600)
        store.save(extended, b"extended", 1)
        store.save(extended, b"extended again", 600)
        live = {lasting: b"lasting", extended: b"extended again"}
        expired = [expiring]
        if Capability.TOUCH in caps:
            touched = new_sid()
            store.save(touched, b"touched", 1)
            assert t.cast("Touchable", store).touch(touched, 600) is True
            live[touched] = b"touched"
        if Capability.LOAD_AND_TOUCH in caps:
            loaded = new_sid()
            store.save(loaded, b"loaded", 1)
            record = t.cast("LoadAndTouchable", store).load_and_touch(loaded, 600)
            assert record is not None and record.data == b"loaded"
            live[loaded] = b"loaded"
        if Capability.CONDITIONAL_SAVE in caps:
            recreated = new_sid()
            store.save(recreated, b"old", 1)
            expired.append(recreated)
        purged = [new_sid() for _ in range(3)] if Capability.PURGE in caps else []
        for sid in purged:
            store.save(sid, b"old", 1)
        expired += purged
        self.wait_for_expiry(advance_time)

        if Capability.PURGE in caps:  # first, before reads that may drop expired records
            purgeable = t.cast("Purgeable", store)
            removed = purgeable.purge_expired()
            if self.native_expiry:
                assert 0 <= removed <= len(expired)
            else:
                assert removed == len(expired)
            assert purgeable.purge_expired() == 0
        for sid in expired:
            assert store.load(sid) is None
        assert store.load(expiring) is None
        for sid, data in live.items():
            record = store.load(sid)
            assert record is not None and record.data == data
        if Capability.TOUCH in caps:
            assert t.cast("Touchable", store).touch(new_sid(), 600) is False
        if Capability.CONDITIONAL_SAVE in caps:
            cas = t.cast("ConditionallySavable", store)
            assert cas.save_if(recreated, b"new", 60, expected=None) is True
            record = store.load(recreated)
            assert record is not None and record.data == b"new"
            live[recreated] = b"new"
        if Capability.ENUMERATE in caps:
            enumerable = t.cast("Enumerable", store)
            assert set(enumerable.iter_sids()) == set(live)
            assert enumerable.count() == len(live)

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
        if self.identical_saves_keep_version:
            pytest.skip("the version is the content's digest: saving the same bytes keeps it")
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

    # -- SAVE_IF_OR_LOAD ----------------------------------------------------------------------

    def test_save_if_or_load_returns_the_record_it_lost_to(self, store: SessionStore) -> None:
        _require(store, Capability.SAVE_IF_OR_LOAD)
        returning = t.cast("SavableOrLoadable", store)
        sid = new_sid()
        assert returning.save_if_or_load(sid, b"first", 60, expected=None) == (True, None)
        first = store.load(sid)
        assert first is not None
        saved, current = returning.save_if_or_load(sid, b"second", 60, expected=None)
        assert saved is False
        assert current is not None and current.data == b"first"
        # What it returns is what load returns: a save against it lands.
        assert returning.save_if_or_load(sid, b"v2", 60, expected=current, user_id="u1") == (
            True,
            None,
        )
        saved, newer = returning.save_if_or_load(sid, b"stale", 60, expected=first)
        assert saved is False
        assert newer is not None and newer.data == b"v2"
        assert t.cast("ConditionallySavable", store).save_if(sid, b"v3", 60, expected=newer)
        loaded = store.load(sid)
        assert loaded is not None and loaded.data == b"v3"
        store.delete(sid)
        assert returning.save_if_or_load(sid, b"late", 60, expected=loaded) == (False, None)
        assert store.load(sid) is None

    # -- PURGE, ENUMERATE, USER_INDEX ----------------------------------------------------------

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
