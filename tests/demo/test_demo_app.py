"""The demo application through Flask's test client, on the in-process ``memory`` store:
its secret key file, the session record and devices it shows (never a whole id), logging out
one device or all of them, and a store without a user index."""

from __future__ import annotations

import re
import stat
import typing as t

import pytest

from demo.app import create_app
from demo.sessions import handle
from flask_serverside import Capability
from flask_serverside import MemoryStore
from flask_serverside import get_state
from flask_serverside import register_store
from flask_serverside import unregister_store

if t.TYPE_CHECKING:
    import collections.abc as c
    from pathlib import Path

    from flask import Flask
    from flask.testing import FlaskClient


class UnindexedStore(MemoryStore):
    """The memory store without its user index, as memcached is."""

    capabilities = MemoryStore.capabilities & ~Capability.USER_INDEX


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app("memory", str(tmp_path / "instance"))


@pytest.fixture
def unindexed(tmp_path: Path) -> c.Iterator[Flask]:
    register_store("demo-unindexed", UnindexedStore)
    try:
        yield create_app("demo-unindexed", str(tmp_path / "instance"))
    finally:
        unregister_store("demo-unindexed")


def log_in(
    client: FlaskClient, name: str, agent: str = "Mozilla/5.0 (X11; Linux) Firefox/130"
) -> str:
    response = client.post("/login", data={"name": name}, headers={"User-Agent": agent})
    assert response.status_code == 302
    return client.get("/", headers={"User-Agent": agent}).get_data(as_text=True)


def sid_of(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value.split(".")[0]


def test_the_secret_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    first = create_app("memory", str(instance))
    key_file = instance / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.config["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first.config["SECRET_KEY"]) == 64
    second = create_app("memory", str(instance))
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    assert (
        create_app("memory", str(tmp_path / "other")).config["SECRET_KEY"]
        != first.config["SECRET_KEY"]
    )


def test_a_signed_cookie_survives_a_new_app_on_the_same_instance(tmp_path: Path) -> None:
    instance = str(tmp_path / "instance")
    app = create_app("memory", instance)
    client = app.test_client()
    log_in(client, "ada")
    cookie = client.get_cookie("session")
    assert cookie is not None and "." in cookie.value  # signed
    again = create_app("memory", instance)
    # The new application verifies the old cookie's signature: it reaches the store. The
    # memory store is per application, so the session itself is gone (a new one starts).
    assert again.session_interface.parse_cookie(cookie.value) == sid_of(client)  # type: ignore[attr-defined]


def test_the_page_shows_the_record_and_never_a_whole_id(app: Flask) -> None:
    client = app.test_client()
    page = log_in(client, "ada")
    sid = sid_of(client)
    assert sid not in page
    key = get_state(app).store_key(sid)  # the store holds a keyed hash of the id
    assert f'<code id="record-key">session:{key[:6]}…</code>' in page
    size = int(re.search(r'id="record-size">(\d+)<', page).group(1))  # type: ignore[union-attr]
    assert size > 0
    assert 'data-seconds="1800"' in page
    assert "&#34;_user_id&#34;: &#34;ada&#34;" in page  # the decoded data, as JSON
    assert "Firefox on Linux" in page
    assert "(this device)" in page


def test_flash_categories_are_styled_apart(app: Flask) -> None:
    client = app.test_client()
    client.post("/login", data={"name": "  "})
    page = client.get("/").get_data(as_text=True)
    assert 'class="flash flash-error" role="alert"' in page
    page = log_in(client, "ada")
    assert 'class="flash flash-success" role="status"' in page


def test_log_out_one_device_from_another(app: Flask) -> None:
    laptop = app.test_client()
    phone = app.test_client()
    log_in(laptop, "ada")
    log_in(phone, "ada", agent="Mozilla/5.0 (Linux; Android 14) Chrome/130 Mobile Safari")
    phone_sid = sid_of(phone)
    phone_key = get_state(app).store_key(phone_sid)
    page = laptop.get("/").get_data(as_text=True)
    assert page.count("Log out this device") == 2
    handles = re.findall(r'action="/devices/([0-9a-f]{16})/logout"', page)
    assert len(handles) == 2
    assert phone_sid not in page
    phone_handle = handle(phone_key)
    assert phone_handle in handles
    response = laptop.post(f"/devices/{phone_handle}/logout", follow_redirects=True)
    assert f"Logged out the device with key {phone_key[:6]}…" in response.get_data(as_text=True)
    assert 'id="user"' not in phone.get("/").get_data(as_text=True)
    assert 'id="user"' in laptop.get("/").get_data(as_text=True)
    # A handle that names no session of this user changes nothing.
    response = laptop.post("/devices/0123456789abcdef/logout", follow_redirects=True)
    assert "already logged out" in response.get_data(as_text=True)
    assert 'id="user"' in laptop.get("/").get_data(as_text=True)


def test_a_device_of_another_user_cannot_be_logged_out(app: Flask) -> None:
    ada = app.test_client()
    bob = app.test_client()
    log_in(ada, "ada")
    bob_page = log_in(bob, "bob")
    bob_handle = re.search(r'action="/devices/([0-9a-f]{16})/logout"', bob_page).group(1)  # type: ignore[union-attr]
    response = ada.post(f"/devices/{bob_handle}/logout", follow_redirects=True)
    assert "already logged out" in response.get_data(as_text=True)
    assert 'id="user"' in bob.get("/").get_data(as_text=True)


def test_log_out_everywhere(app: Flask) -> None:
    laptop = app.test_client()
    phone = app.test_client()
    other = app.test_client()
    log_in(laptop, "ada")
    log_in(phone, "ada")
    log_in(other, "bob")
    response = phone.post("/devices/logout", follow_redirects=True)
    assert "2 session(s) deleted" in response.get_data(as_text=True)
    assert 'id="user"' not in laptop.get("/").get_data(as_text=True)
    assert 'id="user"' in other.get("/").get_data(as_text=True)


def test_a_store_without_a_user_index_says_so(unindexed: Flask) -> None:
    client = unindexed.test_client()
    page = log_in(client, "ada")
    assert "keeps no index of sessions by user" in " ".join(page.split())
    assert "Log out this device" not in page
    assert 'id="logout"' in page  # logging out this device still works
    response = client.post("/devices/logout", follow_redirects=True)
    assert response.status_code == 200
    assert "cannot log you out everywhere" in response.get_data(as_text=True)
    assert 'id="user"' in client.get("/").get_data(as_text=True)
    client.post("/logout")
    assert 'id="user"' not in client.get("/").get_data(as_text=True)


def test_parallel_request_endpoints_need_a_login(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/race").status_code == 401
    assert client.post("/race/0").get_json() == {"error": "You are logged out: log in again."}
    log_in(client, "ada")
    assert client.post("/race/6").status_code == 404
    assert client.post("/race/2").get_json()["value"] == 1
    assert client.get("/race").get_json()["race_2"] == 1


def test_an_unknown_store_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from demo.__main__ import main

    assert main(["--store", "nosuchstore://x", "--instance", str(tmp_path)]) == 2
    assert "nosuchstore" in capsys.readouterr().err
