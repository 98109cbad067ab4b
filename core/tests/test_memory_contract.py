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
