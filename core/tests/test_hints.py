"""Did you mean: misspelt configuration keys are logged at init_app (the core's and Flask's keys
here; the stores' keys in tests/test_config_keys.py)."""

from __future__ import annotations

import logging

import pytest

from flask_serverside.hints import misspelt_keys


@pytest.fixture
def warnings_logged(caplog):
    caplog.set_level(logging.WARNING, logger="flask_serverside")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "flask_serverside"]


def test_a_misspelt_core_key_is_logged_without_its_value(make_app, warnings_logged):
    make_app(SESSION_PERMANANT="secret-value", SESSION_USE_SINGER=True)
    assert warnings_logged() == [
        "SESSION_PERMANANT is not a setting of flask-serverside, Flask or the 'memory' session"
        " store, so it is ignored: did you mean SESSION_PERMANENT?",
        "SESSION_USE_SINGER is not a setting of flask-serverside, Flask or the 'memory' session"
        " store, so it is ignored: did you mean SESSION_USE_SIGNER?",
    ]


def test_known_and_unrelated_keys_are_left_alone(make_app, warnings_logged):
    make_app(
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PARTITIONED=False,
        SESSION_REFRESH_EACH_REQUEST=True,
        SESSION_ON_STORE_ERROR="empty",
        SESSION_MY_APP_FLAG=1,
        SESSIONS=1,
    )
    assert warnings_logged() == []


def test_a_key_extending_a_known_one_is_reported():
    assert misspelt_keys({"SESSION_TYPE_URL": 1}, {"SESSION_TYPE"}) == {
        "SESSION_TYPE_URL": ["SESSION_TYPE"]
    }
    assert misspelt_keys({"SESSION_TYPES": 1, "OTHER": 2}, {"SESSION_TYPE"}) == {
        "SESSION_TYPES": ["SESSION_TYPE"]
    }


def test_a_misspelt_store_name_is_a_value_error_with_a_did_you_mean(make_app):
    from flask_serverside import StoreNotFound

    with pytest.raises(ValueError, match=r"Did you mean 'memory'\?") as caught:
        make_app(SESSION_TYPE="memroy")
    assert isinstance(caught.value, StoreNotFound)
    assert caught.value.suggestions == ["memory"]
    assert "memory" in caught.value.installed
