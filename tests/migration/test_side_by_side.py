"""Flask-Session 0.8 and flask-serverside serve the same users on the same store, one request
each in turn, in both directions and in any order: with ``SESSION_COMPAT_FLASK_SESSION`` on, no
request answers a 5xx and no user is logged out on either side; with it off, users logged in
under Flask-Session stay logged in once flask-serverside serves them."""

from __future__ import annotations

import random

import pytest
from click.testing import CliRunner
from flask.cli import FlaskGroup

from flask_serverside import Capability
from flask_serverside import get_state

from .conftest import Browser
from .conftest import SideBySide

pytestmark = pytest.mark.servers


def test_logged_in_under_flask_session_then_served_in_turn(side_by_side: SideBySide, browser):
    old = side_by_side.app(flask_session_08=True)
    new = side_by_side.app(flask_session_08=False, compat=True)
    browser.request(old, "POST", "/login/alice")
    cart = []
    for turn, app in enumerate([new, old] * 4):
        item = f"item{turn}"
        browser.request(app, "POST", f"/cart/{item}")
        cart.append(item)
        browser.request(app, "POST", f"/flash/hello{turn}")
        other = old if app is new else new
        assert browser.page(other) == {"user": "alice", "cart": cart, "flashes": [f"hello{turn}"]}
    browser.request(new, "POST", "/logout")
    assert browser.page(old)["user"] is None
    assert browser.page(new)["user"] is None


def test_logged_in_under_flask_serverside_then_served_in_turn(side_by_side: SideBySide, browser):
    old = side_by_side.app(flask_session_08=True)
    new = side_by_side.app(flask_session_08=False, compat=True)
    browser.request(new, "POST", "/login/bob")
    cart = []
    for turn, app in enumerate([old, new] * 4):
        item = f"item{turn}"
        browser.request(app, "POST", f"/cart/{item}")
        cart.append(item)
        browser.request(app, "POST", f"/flash/hi{turn}")
        other = old if app is new else new
        assert browser.page(other) == {"user": "bob", "cart": cart, "flashes": [f"hi{turn}"]}
    browser.request(old, "POST", "/logout")
    assert browser.page(new)["user"] is None
    assert browser.page(old)["user"] is None


@pytest.mark.parametrize("seed", [1, 2])
def test_interleaved_in_any_order_with_signed_cookies_and_logins(
    side_by_side: SideBySide, seed: int
):
    """Several users, each request to a random side, logins (new ids) on either side, signed
    cookies: a rolling deploy as it happens."""
    chooser = random.Random(seed)
    apps = [
        side_by_side.app(flask_session_08=True, signer=True),
        side_by_side.app(flask_session_08=False, compat=True, signer=True),
    ]
    users = {name: (Browser(), []) for name in ("ann", "ben", "cat")}
    for name, (browser, _) in users.items():
        browser.request(chooser.choice(apps), "POST", f"/login/{name}")
    for step in range(24):
        name = chooser.choice(sorted(users))
        browser, cart = users[name]
        action = chooser.choice(["cart", "page", "login"])
        app = chooser.choice(apps)
        if action == "cart":
            browser.request(app, "POST", f"/cart/{step}")
            cart.append(str(step))
        elif action == "login":
            browser.request(app, "POST", f"/login/{name}")  # a new id, the same data
        page = browser.page(chooser.choice(apps))
        assert (page["user"], page["cart"]) == (name, cart), browser.log
    for browser, _ in users.values():
        browser.request(chooser.choice(apps), "POST", "/logout")
        assert browser.page(apps[0])["user"] is None
        assert browser.page(apps[1])["user"] is None


def test_without_compat_mode_flask_session_users_stay_logged_in(side_by_side: SideBySide, browser):
    """The forward switch alone (every worker moved at once): Flask-Session's sessions load."""
    old = side_by_side.app(flask_session_08=True)
    browser.request(old, "POST", "/login/dan")
    browser.request(old, "POST", "/cart/first")
    browser.request(old, "POST", "/flash/before")
    new = side_by_side.app(flask_session_08=False)
    assert browser.page(new) == {"user": "dan", "cart": ["first"], "flashes": ["before"]}
    for item in ("second", "third"):
        browser.request(new, "POST", f"/cart/{item}")
        assert browser.page(new)["cart"] == ["first", item] if item == "second" else True
    assert browser.page(new) == {"user": "dan", "cart": ["first", "second", "third"], "flashes": []}
    browser.request(new, "POST", "/login/dan")  # a new id under flask-serverside
    assert browser.page(new)["user"] == "dan"


def test_without_compat_mode_signed_flask_session_cookies_are_accepted(
    side_by_side: SideBySide, browser
):
    old = side_by_side.app(flask_session_08=True, signer=True)
    browser.request(old, "POST", "/login/eve")
    new = side_by_side.app(flask_session_08=False, signer=True)
    assert browser.page(new)["user"] == "eve"
    browser.request(new, "POST", "/cart/x")
    assert browser.page(new) == {"user": "eve", "cart": ["x"], "flashes": []}


def _flask(app, *args: str):
    group = FlaskGroup(create_app=lambda: app, load_dotenv=False, set_debug_flag=False)
    return CliRunner().invoke(group, list(args))


@pytest.mark.parametrize("hashed", [True, False], ids=["hashed-keys", "raw-keys"])
def test_a_rollback_after_the_mode_was_off(side_by_side: SideBySide, browser, hashed: bool):
    """Sessions written without the mode (this project's layout and tags, under hashed keys by
    default) are made readable for Flask-Session once the mode is on: by their user's next
    request, which moves a record from its hashed key to its id; under raw ids
    (``SESSION_HASH_IDS = False``) by ``flask session rewrite`` too, where the store can list
    its sessions (memcached cannot). Flask-Session then serves them."""
    new = side_by_side.app(flask_session_08=False, SESSION_HASH_IDS=hashed)
    browser.request(new, "POST", "/login/fay")
    browser.request(new, "POST", "/cart/kept")
    browser.request(new, "POST", "/flash/pending")  # a (category, message) tuple, tagged
    compat = side_by_side.app(flask_session_08=False, compat=True, SESSION_HASH_IDS=hashed)
    cart = ["kept"]
    if not hashed and Capability.ENUMERATE in get_state(compat).store.capabilities:
        result = _flask(compat, "session", "rewrite")
        assert result.exit_code == 0, result.output
        assert "checked 1 sessions" in result.output
    else:
        browser.request(compat, "POST", "/cart/during")
        cart.append("during")
    old = side_by_side.app(flask_session_08=True)
    assert browser.page(old) == {"user": "fay", "cart": cart, "flashes": ["pending"]}
    browser.request(old, "POST", "/cart/after")
    assert browser.page(old)["cart"] == [*cart, "after"]
