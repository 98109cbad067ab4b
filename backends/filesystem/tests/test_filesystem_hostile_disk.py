"""A directory other users can write is refused at start-up, a record another user planted is
never loaded, a read-only disk still serves read-only requests, and anonymous traffic does not
evict signed-in users."""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import pwd
import subprocess
import typing as t

import pytest
from flask import Flask
from flask import session

from flask_serverside import ConfigurationError
from flask_serverside import Session
from flask_serverside import get_state
from flask_serverside.testing import new_sid
from flask_serverside_filesystem import FileSystemStore
from flask_serverside_filesystem.store import DEFAULT_THRESHOLD

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


def _nobody() -> int:
    return pwd.getpwnam("nobody").pw_uid


def make_app(directory: pathlib.Path, **config: t.Any) -> Flask:
    app = Flask("hostile_disk")
    app.config.update(SECRET_KEY="s", SESSION_FILE_DIR=str(directory), **config)
    Session(app)

    @app.post("/login/<user>")
    def login(user: str) -> str:
        session["_user_id"] = user
        return "ok"

    @app.get("/me")
    def me() -> dict[str, t.Any]:
        return {"user": session.get("_user_id")}

    @app.get("/form")
    def form() -> str:
        session["csrf_token"] = "token"  # as Flask-WTF does for an anonymous visitor
        return "form"

    return app


# -- who owns the directory ---------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o703, 0o1777])
def test_a_directory_others_can_write_is_refused(tmp_path, mode):
    directory = tmp_path / "sessions"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(ConfigurationError, match=r"writable by .*chmod go-w") as caught:
        make_app(directory)
    assert str(directory) in str(caught.value)
    assert os.listdir(directory) == []  # nothing made in it


def test_a_group_may_write_when_the_mode_shares_the_files(tmp_path):
    directory = tmp_path / "sessions"
    directory.mkdir()
    directory.chmod(0o770)
    with pytest.raises(ConfigurationError, match="SESSION_FILE_MODE = 0o660"):
        make_app(directory)
    app = make_app(directory, SESSION_FILE_MODE=0o660)
    client = app.test_client()
    client.post("/login/alice")
    assert client.get("/me").get_json() == {"user": "alice"}


def test_a_store_subdirectory_others_can_write_is_refused(tmp_path):
    store = FileSystemStore(tmp_path / "sessions")
    store.save(new_sid(), b"data", 60)
    top = next(pathlib.Path(store._sessions).iterdir())
    leaf = next(top.iterdir())
    leaf.chmod(0o777)  # a bucket, from a time the directory was open to everyone
    with pytest.raises(ConfigurationError, match=f"{leaf}.*writable by other users"):
        FileSystemStore(tmp_path / "sessions")
    leaf.chmod(0o700)
    FileSystemStore(tmp_path / "sessions")


def test_a_link_in_place_of_a_store_subdirectory_is_refused(tmp_path):
    store = FileSystemStore(tmp_path / "sessions")
    users = pathlib.Path(store._users)
    users.rmdir()
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    users.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigurationError, match="symbolic link"):
        FileSystemStore(tmp_path / "sessions")


def test_the_mode_may_not_let_other_users_write(tmp_path):
    with pytest.raises(ConfigurationError, match="SESSION_FILE_MODE"):
        make_app(tmp_path / "sessions", SESSION_FILE_MODE=0o606)


@root_only
def test_a_directory_of_another_user_is_refused(tmp_path):
    directory = tmp_path / "sessions"
    directory.mkdir(mode=0o700)
    os.chown(directory, _nobody(), -1)
    with pytest.raises(ConfigurationError, match=r"belongs to 'nobody'.*chown -R root"):
        make_app(directory)


@root_only
def test_a_record_another_user_planted_is_never_loaded(tmp_path, caplog):
    """The attack of the issue: another user writes a record signed in as "admin" (here, by
    taking one over) and sends its id; the store ignores a file it does not own."""
    app = make_app(tmp_path / "sessions")
    client = app.test_client()
    client.post("/login/admin")
    sid = client.get_cookie("session").value
    state = get_state(app)
    _, path = state.store._locate(state.store_key(sid))
    os.chown(path, _nobody(), -1)
    with caplog.at_level(logging.WARNING, "flask_serverside.filesystem"):
        assert client.get("/me").get_json() == {"user": None}
    assert "belongs to uid" in caplog.text
    assert sid not in caplog.text


# -- a read-only disk --------------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(path: pathlib.Path) -> t.Iterator[t.Callable[[str], None]]:
    """A tmpfs mounted at ``path``; yields ``remount("ro" | "rw")``. Skips when this process
    cannot mount (not root, or no CAP_SYS_ADMIN)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")

    def remount(how: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{how}", str(path)], check=True)

    try:
        yield remount
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem needs root")
def test_a_read_only_disk_serves_read_only_requests(tmp_path, caplog):
    with _tmpfs(tmp_path / "disk") as remount:
        app = make_app(tmp_path / "disk" / "sessions")
        client = app.test_client()
        client.post("/login/alice")
        remount("ro")
        try:
            with caplog.at_level(logging.WARNING, "flask_serverside.filesystem"):
                for _ in range(3):
                    assert client.get("/me").get_json() == {"user": "alice"}
            refresh_warnings = [r for r in caplog.records if "refresh the expiry" in r.message]
            assert len(refresh_warnings) == 1  # logged, once a minute at most
            assert "Read-only file system" in refresh_warnings[0].getMessage()
            assert client.get_cookie("session").value not in caplog.text
            # A write cannot land: it is refused (503), never lost silently.
            assert client.post("/login/bob").status_code == 503
        finally:
            remount("rw")
        assert client.get("/me").get_json() == {"user": "alice"}
        assert client.post("/login/bob").status_code == 200
        assert client.get("/me").get_json() == {"user": "bob"}


# -- anonymous traffic and the threshold ----------------------------------------------------


def _flood(app: Flask, users: int, visitors: int) -> list[t.Any]:
    clients = []
    for number in range(users):
        client = app.test_client()
        assert client.post(f"/login/user{number}").status_code == 200
        clients.append(client)
    for _ in range(visitors):  # cookie-less requests: each stores a new CSRF token
        assert app.test_client().get("/form").status_code == 200
    return clients


def test_anonymous_traffic_does_not_evict_users_with_the_defaults(tmp_path):
    app = make_app(tmp_path / "sessions")
    assert get_state(app).store.threshold == DEFAULT_THRESHOLD
    clients = _flood(app, users=200, visitors=600)
    assert [c.get("/me").get_json()["user"] for c in clients] == [f"user{n}" for n in range(200)]


def test_over_the_threshold_anonymous_sessions_go_before_users(tmp_path, caplog):
    app = make_app(tmp_path / "sessions", SESSION_FILE_THRESHOLD=500)
    with caplog.at_level(logging.WARNING, "flask_serverside.filesystem"):
        clients = _flood(app, users=200, visitors=600)
    assert [c.get("/me").get_json()["user"] for c in clients] == [f"user{n}" for n in range(200)]
    assert get_state(app).store.count() <= 500 + 50  # checked every 50 writes
    assert "(0 of signed-in users)" in caplog.text
    assert not any(c.get_cookie("session").value in caplog.text for c in clients)


def test_users_are_evicted_only_when_anonymous_sessions_do_not_suffice(tmp_path, clock):
    store = FileSystemStore(tmp_path, clock=clock, threshold=10)
    users = [new_sid() for _ in range(8)]
    for number, sid in enumerate(users):
        store.save(sid, b"data", 600 + number, user_id=f"user{number}")
    visitors = [new_sid() for _ in range(3)]
    for number, sid in enumerate(visitors):
        store.save(sid, b"data", 900 + number)  # later expiry than every user's
    store._enforce_threshold()  # 11 records: one too many
    assert [store.load(sid) is not None for sid in visitors] == [False, True, True]
    assert all(store.load(sid) is not None for sid in users)
    for sid in [new_sid() for _ in range(4)]:
        store.save(sid, b"data", 900, user_id="late")
    store._enforce_threshold()  # 14 records, 2 anonymous: 2 of them and 2 users go
    assert not any(store.load(sid) is not None for sid in visitors)
    assert [store.load(sid) is not None for sid in users[:3]] == [False, False, True]
