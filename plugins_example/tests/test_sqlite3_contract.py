"""The conformance kit on the sqlite3 store: one fixture per contract, and the optional ones
that run the at-rest and outage checks."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract

from serverside_sqlite3_store import SQLite3Store


class TestSQLite3Store(StoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path):
        stores = []

        def factory(key_prefix):
            stores.append(SQLite3Store(tmp_path / "sessions.db", key_prefix=key_prefix))
            return stores[-1]

        yield factory
        for store in stores:
            store.close()


class TestSQLite3StoreWithFlask(SessionFlowContract):
    @pytest.fixture
    def session_config(self, tmp_path):
        return {"SESSION_TYPE": "sqlite3", "SESSION_SQLITE3_PATH": str(tmp_path / "sessions.db")}

    @pytest.fixture
    def backend_dump(self, tmp_path):
        """The database file, byte for byte (its write-ahead log too, if any)."""

        def dump(app):
            return b"".join(path.read_bytes() for path in sorted(tmp_path.glob("sessions.db*")))

        return dump

    @pytest.fixture
    def store_outage(self, tmp_path):
        return LockedDatabase(tmp_path / "outage.db")


class LockedDatabase:
    """The database's write lock held by another process for the outage (a long migration, a
    stuck writer): every request that loads a session (and refreshes its expiry, a write)
    waits ``SESSION_SQLITE3_TIMEOUT`` and fails."""

    def __init__(self, path):
        self.path = path
        self.config = {
            "SESSION_TYPE": "sqlite3",
            "SESSION_SQLITE3_PATH": str(path),
            "SESSION_SQLITE3_TIMEOUT": 0.2,
        }

    @contextlib.contextmanager
    def down(self):
        holder = sqlite3.connect(self.path, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            yield
        finally:
            holder.close()  # rolls back, releasing the lock
