"""The built-in memory store runs the same conformance kit as every other store."""

from __future__ import annotations

import pytest

from flask_serverside import MemoryStore
from flask_serverside import get_state
from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store_factory(self, clock):
        entries: dict[str, object] = {}
        return lambda key_prefix: MemoryStore(key_prefix=key_prefix, clock=clock, entries=entries)

    @pytest.fixture
    def advance_time(self, clock):
        return clock.advance


class TestMemoryStoreWithFlask(SessionFlowContract):
    @pytest.fixture
    def session_config(self):
        return {"SESSION_TYPE": "memory"}

    @pytest.fixture
    def backend_dump(self):
        def dump(app):
            entries = get_state(app).store.wrapped._entries
            return b"".join(
                key.encode() + entry.data + (entry.user_id or "").encode()
                for key, entry in entries.items()
            )

        return dump


def test_expired_records_are_freed_under_churn_without_configuration(make_app, clock):
    """Anonymous traffic that stores something (a CSRF token) makes a session per request:
    the memory store frees the expired ones as it goes, with SESSION_CLEANUP_N_REQUESTS unset."""
    import datetime

    from flask import session

    app = make_app(PERMANENT_SESSION_LIFETIME=datetime.timedelta(seconds=10))
    assert app.config["SESSION_CLEANUP_N_REQUESTS"] is None
    store = get_state(app).store
    store.wrapped._clock = clock

    @app.get("/form")
    def form():
        session["csrf_token"] = "token"
        return "form"

    live = 100  # one request every 0.1 s, each session lives 10 s
    sizes = []
    for _ in range(5000):
        assert app.test_client().get("/form").status_code == 200
        clock.advance(0.1)
        sizes.append(len(store.wrapped._entries))
    assert store.count() <= live
    # Without freeing, the dict would hold all 5,000; the sweep keeps it within a few times
    # the live records.
    assert max(sizes) <= 3 * live
