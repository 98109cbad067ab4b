"""The filesystem store runs the conformance kit: with a fake clock, and on the real clock
through Flask (the application builds the store from its configuration)."""

from __future__ import annotations

import contextlib
import os

import pytest

from flask_serverside import get_state
from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract
from flask_serverside_filesystem import FileSystemStore


class TestFileSystemStore(StoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path, clock):
        return lambda key_prefix: FileSystemStore(tmp_path, key_prefix=key_prefix, clock=clock)

    @pytest.fixture
    def advance_time(self, clock):
        return clock.advance


class TestFileSystemStoreWithRename(StoreContract):
    """The same where the filesystem cannot exchange two files: records are renamed in place."""

    @pytest.fixture
    def store_factory(self, tmp_path, clock):
        def make(key_prefix):
            store = FileSystemStore(tmp_path, key_prefix=key_prefix, clock=clock)
            store._exchange = None
            return store

        return make

    @pytest.fixture
    def advance_time(self, clock):
        return clock.advance


class TestFileSystemStoreWithFsync(StoreContract):
    """The same, flushing every write to disk."""

    @pytest.fixture
    def store_factory(self, tmp_path, clock):
        return lambda key_prefix: FileSystemStore(
            tmp_path, key_prefix=key_prefix, clock=clock, fsync=True
        )

    @pytest.fixture
    def advance_time(self, clock):
        return clock.advance


class BrokenDirectory:
    """The session directory replaced by a file for the outage (a disk that went away, a
    mount gone wrong): every operation fails, whatever the process's privileges."""

    def __init__(self, directory):
        self.directory = directory
        self.config = {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(directory)}

    @contextlib.contextmanager
    def down(self):
        aside = self.directory.with_name(self.directory.name + ".aside")
        os.rename(self.directory, aside)
        self.directory.write_bytes(b"not a directory")
        try:
            yield
        finally:
            self.directory.unlink()
            os.rename(aside, self.directory)


class TestFileSystemStoreWithFlask(SessionFlowContract):
    @pytest.fixture
    def session_config(self, tmp_path):
        return {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(tmp_path)}

    @pytest.fixture
    def backend_dump(self, tmp_path):
        """Every path under the session directory and every file's bytes (a copy of it)."""

        def dump(app):
            found = []
            for path in sorted(tmp_path.rglob("*")):
                found.append(str(path.relative_to(tmp_path)).encode())
                if path.is_file():
                    found.append(path.read_bytes())
            return b"".join(found)

        return dump

    @pytest.fixture
    def store_outage(self, tmp_path):
        return BrokenDirectory(tmp_path / "outage")


class TestFileUrlWithFlask(SessionFlowContract):
    @pytest.fixture
    def session_config(self, tmp_path):
        return {"SESSION_TYPE": tmp_path.as_uri()}


class TestFileSystemCompatWithFlask(SessionFlowContract):
    """The compatibility write mode: every session in Flask-Session's files."""

    def plant_record(self, app, key, record):
        """In this mode the store pickles what it is given, as Flask-Session's files hold:
        plant the hostile bytes as a record of the store's own layout, which it also reads."""
        store = get_state(app).store.wrapped
        FileSystemStore(store.directory, key_prefix=store.key_prefix).save(key, record, 60)

    @pytest.fixture
    def session_config(self, tmp_path):
        return {
            "SESSION_TYPE": "filesystem",
            "SESSION_FILE_DIR": str(tmp_path),
            "SESSION_COMPAT_FLASK_SESSION": True,
        }
