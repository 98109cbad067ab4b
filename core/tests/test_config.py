"""Misconfiguration fails at init_app with a message that says how to fix it."""

from __future__ import annotations

import datetime

import pytest
from flask import Flask

from flask_serverside import ConfigurationError
from flask_serverside import MemoryStore
from flask_serverside import Session
from flask_serverside import StoreNotFound
from flask_serverside import get_state
from flask_serverside import register_store
from flask_serverside import registry
from flask_serverside import unregister_store


def _init(**config):
    app = Flask("config")
    app.config.update(config)
    Session(app)
    return app


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SESSION_TYPE": ""}, "SESSION_TYPE must name a session store"),
        ({"SESSION_TYPE": 3}, "SESSION_TYPE must name a session store"),
        ({"SESSION_TYPE": "memory", "SESSION_ID_LENGTH": 8}, "SESSION_ID_LENGTH must be"),
        ({"SESSION_TYPE": "memory", "SESSION_ID_LENGTH": True}, "SESSION_ID_LENGTH must be"),
        (
            {"SESSION_TYPE": "memory", "SESSION_SERIALIZATION_FORMAT": "pickle"},
            "SESSION_SERIALIZATION_FORMAT must be one of 'msgpack', 'json'",
        ),
        (
            {"SESSION_TYPE": "memory", "SESSION_ON_STORE_ERROR": "ignore"},
            "SESSION_ON_STORE_ERROR must be one of",
        ),
        ({"SESSION_TYPE": "memory", "SESSION_CLEANUP_N_REQUESTS": 0}, "SESSION_CLEANUP_N"),
        ({"SESSION_TYPE": "memory", "SESSION_KEY_PREFIX": None}, "SESSION_KEY_PREFIX"),
        ({"SESSION_TYPE": "memory", "SESSION_USER_ID_KEY": ""}, "SESSION_USER_ID_KEY"),
        (
            {"SESSION_TYPE": "memory", "PERMANENT_SESSION_LIFETIME": datetime.timedelta(0)},
            "PERMANENT_SESSION_LIFETIME must be positive",
        ),
        (
            {"SESSION_TYPE": "memory", "SESSION_USE_SIGNER": True},
            "SESSION_USE_SIGNER = True needs a SECRET_KEY",
        ),
    ],
)
def test_misconfiguration_fails_at_init_app(config, message):
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        _init(**config)


def test_unknown_store_lists_installed_ones():
    with pytest.raises(StoreNotFound) as caught:
        _init(SESSION_TYPE="nosuchstore")
    assert "No session store named 'nosuchstore'" in str(caught.value)
    assert "memory" in caught.value.installed
    assert "pip install" not in str(caught.value)


def test_unknown_first_party_store_says_what_to_install(monkeypatch):
    monkeypatch.setattr(registry, "KNOWN_DISTRIBUTIONS", {"quasar": "quasar"})
    with pytest.raises(StoreNotFound, match=r"pip install flask-serverside-quasar"):
        _init(SESSION_TYPE="quasar+tls://host:1/")


def test_defaults_match_flask_session():
    app = _init(SESSION_TYPE="memory")
    config = get_state(app).config
    assert config.key_prefix == "session:"
    assert config.permanent is True
    assert config.use_signer is False
    assert config.id_bytes == 32
    assert config.serialization_format == "msgpack"
    assert config.ttl == 31 * 24 * 3600
    assert app.config["SESSION_TYPE"] == "memory"


def test_lifetime_as_seconds_and_rounded_up():
    app = _init(SESSION_TYPE="memory", PERMANENT_SESSION_LIFETIME=90.2)
    assert get_state(app).config.ttl == 91


def test_default_store_is_filesystem():
    app = Flask("default")
    try:
        Session(app)
    except StoreNotFound as exc:  # core installed alone
        assert exc.name == "filesystem"
        assert "pip install flask-serverside-filesystem" in str(exc)
    else:
        assert get_state(app).store_name == "filesystem"


class SharedMemoryStore(MemoryStore):
    """Memory stores that share one dict, as two deployments share one server."""

    shared: dict[str, object] = {}

    @classmethod
    def from_settings(cls, settings):
        return cls(key_prefix=settings.key_prefix, entries=cls.shared)


def test_secret_key_fallbacks_verify_signed_ids():
    from flask import session

    register_store("shared-memory", SharedMemoryStore, replace=True)

    def build(**keys):
        app = _init(SESSION_TYPE="shared-memory", SESSION_USE_SIGNER=True, **keys)

        @app.post("/login")
        def login():
            session["user"] = "alice"
            return "ok"

        @app.get("/me")
        def me():
            return session.get("user", "anonymous")

        return app

    try:
        before = build(SECRET_KEY="old").test_client()
        before.post("/login")
        cookie = before.get_cookie("session").value
        for keys, expected in (
            ({"SECRET_KEY": "new", "SECRET_KEY_FALLBACKS": ["old"]}, "alice"),
            ({"SECRET_KEY": "new"}, "anonymous"),
        ):
            after = build(**keys).test_client()
            after.set_cookie("session", cookie)
            assert after.get("/me").text == expected
    finally:
        unregister_store("shared-memory")
