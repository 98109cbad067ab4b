"""Configuration: the keys Flask-Session reads, their defaults, the file URL, and the errors
that say what to fix."""

from __future__ import annotations

import os
import stat

import pytest
from flask import Flask

from flask_serverside import ConfigurationError
from flask_serverside import Session
from flask_serverside import StoreSettings
from flask_serverside import get_state
from flask_serverside.registry import resolve_store
from flask_serverside_filesystem import FileSystemStore


def settings(**config):
    url = config.pop("url", None)
    app = config.pop("app", None)
    return StoreSettings(name="filesystem", config=config, url=url, app=app)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_both_names_and_file_urls_find_the_store():
    assert resolve_store("filesystem") == ("filesystem", FileSystemStore)
    assert resolve_store("file:///var/lib/app/sessions") == ("file", FileSystemStore)


def test_the_default_directory_is_in_the_instance_folder(tmp_path):
    app = Flask("config_test", instance_path=str(tmp_path / "instance"))
    app.config["SECRET_KEY"] = "secret"
    Session(app)  # SESSION_TYPE defaults to "filesystem"
    store = get_state(app).store
    assert isinstance(store, FileSystemStore)
    assert store.directory == str(tmp_path / "instance" / "flask_session")
    assert mode_of(store.directory) == 0o700
    with app.test_client() as client:
        client.get("/")  # an application without views still answers; nothing is stored
    assert store.count() == 0


def test_without_an_application_the_directory_must_be_set(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="set SESSION_FILE_DIR"):
        FileSystemStore.from_settings(settings())
    assert list(tmp_path.iterdir()) == []  # never the working directory, silently


def test_session_file_dir_is_created_when_missing(tmp_path):
    directory = tmp_path / "a" / "b" / "sessions"
    store = FileSystemStore.from_settings(settings(SESSION_FILE_DIR=str(directory)))
    assert store.directory == str(directory)
    assert mode_of(directory) == 0o700


def test_an_existing_directory_keeps_its_mode(tmp_path):
    tmp_path.chmod(0o755)
    FileSystemStore.from_settings(settings(SESSION_FILE_DIR=tmp_path))
    assert mode_of(tmp_path) == 0o755


def test_a_relative_directory_is_relative_to_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    store = FileSystemStore.from_settings(settings(SESSION_FILE_DIR="flask_session"))
    assert store.directory == str(tmp_path / "flask_session")


@pytest.mark.parametrize("netloc", ["", "localhost"])
def test_a_file_url_names_an_absolute_directory(tmp_path, netloc):
    directory = tmp_path / "with space"
    url = f"file://{netloc}{directory.as_posix().replace(' ', '%20')}"
    store = FileSystemStore.from_settings(settings(url=url))
    assert store.directory == str(directory)
    same = FileSystemStore.from_settings(settings(url=url, SESSION_FILE_DIR=str(directory)))
    assert same.directory == str(directory)


@pytest.mark.parametrize(
    "url",
    ["file://relative/sessions", "file://host.example/var/sessions", "file:///tmp/x?mode=600"],
)
def test_a_file_url_must_be_local_and_absolute(url):
    with pytest.raises(ConfigurationError, match="three slashes"):
        FileSystemStore.from_settings(settings(url=url))


def test_a_url_and_a_different_session_file_dir_conflict(tmp_path):
    with pytest.raises(ConfigurationError, match="set only one"):
        FileSystemStore.from_settings(
            settings(url=(tmp_path / "a").as_uri(), SESSION_FILE_DIR=str(tmp_path / "b"))
        )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SESSION_FILE_DIR", 42),
        ("SESSION_FILE_DIR", ""),
        ("SESSION_FILE_THRESHOLD", -1),
        ("SESSION_FILE_THRESHOLD", "500"),
        ("SESSION_FILE_THRESHOLD", True),
        ("SESSION_FILE_MODE", 0o400),
        ("SESSION_FILE_MODE", "0600"),
        ("SESSION_FILE_MODE", 0o4600),
        ("SESSION_FILE_FSYNC", "yes"),
    ],
)
def test_wrong_values_name_their_key(tmp_path, key, value):
    config = {"SESSION_FILE_DIR": str(tmp_path), key: value}
    with pytest.raises(ConfigurationError, match=key):
        FileSystemStore.from_settings(settings(**config))


def test_a_directory_that_cannot_be_created_fails_at_init_app(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    app = Flask("config_test")
    app.config.update(SECRET_KEY="s", SESSION_FILE_DIR=str(tmp_path / "file" / "sessions"))
    with pytest.raises(ConfigurationError, match="SESSION_FILE_DIR"):
        Session(app)


def test_the_keys_reach_the_store(tmp_path):
    store = FileSystemStore.from_settings(
        settings(
            SESSION_FILE_DIR=str(tmp_path),
            SESSION_FILE_THRESHOLD=0,
            SESSION_FILE_MODE=0o640,
            SESSION_FILE_FSYNC=True,
        )
    )
    assert (store.threshold, store.mode, store.dir_mode, store.fsync) == (0, 0o640, 0o750, True)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
@pytest.mark.parametrize(("mode", "dir_mode"), [(0o600, 0o700), (0o640, 0o750), (0o660, 0o770)])
def test_files_and_directories_get_exactly_the_mode(tmp_path, umask, mode, dir_mode):
    old = os.umask(umask)
    try:
        store = FileSystemStore(tmp_path / "sessions", mode=mode, threshold=0)
        store.save("a" * 43, b"data", 60, user_id="alice")
    finally:
        os.umask(old)
    for root, directories, files in os.walk(tmp_path / "sessions"):
        for name in directories:
            assert mode_of(os.path.join(root, name)) == dir_mode, name
        for name in files:
            assert mode_of(os.path.join(root, name)) == mode, name
    assert mode_of(tmp_path / "sessions") == dir_mode
