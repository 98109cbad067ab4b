"""The Flask flow contract: applications on the store under test, end to end."""

from __future__ import annotations

import collections.abc as c
import logging
import secrets
import typing as t

import pytest
from flask import Flask

from ..extension import Session
from ..state import SessionState
from ..state import get_state
from ..store import Capability
from .spy import spy_on_store
from .store_contract import new_sid
from .views import flow_views

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse


def _cookie(response: TestResponse, name: str = "session") -> str | None:
    """Return the Set-Cookie header for ``name`` in ``response``, or ``None``."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    return None


class SessionFlowContract:
    """Flask end to end on a store. Subclass it and define the ``session_config`` fixture: the
    configuration (``SESSION_TYPE`` and the store's own keys) of an application on the store
    under test."""

    @pytest.fixture
    def session_config(self) -> dict[str, t.Any]:
        """Override: return the config keys that put an application on your store."""
        pytest.fail("define a session_config fixture in your SessionFlowContract subclass")

    @pytest.fixture
    def make_app(self, session_config: dict[str, t.Any]) -> c.Iterator[c.Callable[..., Flask]]:
        """A factory of applications on the store, each with its own key prefix; keyword
        arguments override config keys."""
        states: list[SessionState] = []

        def make(**overrides: t.Any) -> Flask:
            app = Flask("flow_contract")
            app.config.update(
                SECRET_KEY="flow-contract-secret",
                SESSION_KEY_PREFIX=f"flow-{secrets.token_hex(6)}:",
                **session_config,
            )
            app.config.update(overrides)
            Session(app)
            states.append(get_state(app))
            app.register_blueprint(flow_views)
            return app

        yield make
        for state in states:
            state.close()

    @pytest.fixture
    def app(self, make_app: c.Callable[..., Flask]) -> Flask:
        return make_app()

    @pytest.fixture
    def client(self, app: Flask) -> FlaskClient:
        return app.test_client()

    def test_a_visit_that_stores_nothing_sends_no_cookie(self, app: Flask) -> None:
        spy = spy_on_store(app)
        response = app.test_client().get("/read")
        assert response.status_code == 200
        assert response.get_json() == {"user": None, "count": 0}
        assert _cookie(response) is None
        assert "Cookie" in response.vary
        assert spy.writes == 0

    def test_login_counter_and_logout(self, app: Flask, client: FlaskClient) -> None:
        response = client.post("/login", data={"user": "alice"})
        cookie = _cookie(response)
        assert cookie is not None
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
        for expected in (1, 2, 3):
            assert client.post("/count").get_json() == {"count": expected}
        assert client.get("/read").get_json() == {"user": "alice", "count": 3}
        sid = client.get("/sid").get_json()["sid"]
        state = get_state(app)
        assert state.store.load(sid) is not None
        response = client.post("/logout")
        removal = _cookie(response)
        assert removal is not None and "Expires=Thu, 01 Jan 1970" in removal
        assert "HttpOnly" in removal and "SameSite=Lax" in removal and "Path=/" in removal
        assert state.store.load(sid) is None
        assert client.get("/read").get_json() == {"user": None, "count": 0}

    def test_flash_messages_keep_markup(self, client: FlaskClient) -> None:
        client.post("/flash")
        assert client.get("/flashes").get_json() == {
            "messages": [["info", "<b>plain</b>", "str"], ["warning", "<b>bold</b>", "Markup"]]
        }
        assert client.get("/flashes").get_json() == {"messages": []}

    def test_flask_tagged_types_round_trip(self, client: FlaskClient) -> None:
        client.post("/types")
        assert client.get("/types").get_json() == {"ok": True}

    def test_nested_changes_are_saved_without_modified(self, client: FlaskClient) -> None:
        client.post("/login", data={"user": "alice"})
        client.post("/cart/apple")
        client.post("/cart/pear")
        assert client.get("/cart").get_json() == {"cart": ["apple", "pear"]}

    def test_a_read_only_request_only_refreshes_expiry(
        self, app: Flask, client: FlaskClient
    ) -> None:
        client.post("/login", data={"user": "alice"})
        spy = spy_on_store(app)
        assert client.get("/read").get_json()["user"] == "alice"
        if Capability.LOAD_AND_TOUCH in spy.capabilities:
            assert dict(spy.calls) == {"load_and_touch": 1}
        elif Capability.TOUCH in spy.capabilities:
            assert dict(spy.calls) == {"load": 1, "touch": 1}
        else:  # the only way to refresh the expiry is to write the record again
            assert sum(spy.calls.values()) == 2 and spy.writes == 1

    def test_without_sliding_expiry_a_read_only_request_is_one_load(
        self, make_app: c.Callable[..., Flask]
    ) -> None:
        app = make_app(SESSION_REFRESH_EACH_REQUEST=False)
        client = app.test_client()
        client.post("/login", data={"user": "alice"})
        spy = spy_on_store(app)
        response = client.get("/read")
        assert response.get_json()["user"] == "alice"
        assert dict(spy.calls) == {"load": 1}
        assert _cookie(response) is None

    def test_regenerate_moves_data_to_a_new_id(self, app: Flask, client: FlaskClient) -> None:
        client.post("/login", data={"user": "alice"})
        old_sid = client.get("/sid").get_json()["sid"]
        client.post("/regenerate")
        new_sid_ = client.get("/sid").get_json()["sid"]
        assert new_sid_ != old_sid
        state = get_state(app)
        assert state.store.load(old_sid) is None
        assert client.get("/read").get_json()["user"] == "alice"

    def test_hostile_cookies_never_reach_the_store(self, app: Flask) -> None:
        spy = spy_on_store(app)
        hostile = [
            "../../../../etc/passwd",
            "x" * 4000,
            "a" * 42 + "\u00e9",
            "%00%0d%0a",
            new_sid(app)[:-1] + "/",
            "",
        ]
        for value in hostile:
            client = app.test_client()
            client.set_cookie("session", value)
            response = client.get("/read")
            assert response.status_code == 200
            assert response.get_json() == {"user": None, "count": 0}
        assert spy.sids == []

    def test_an_unknown_id_is_never_adopted(self, app: Flask) -> None:
        client = app.test_client()
        planted = new_sid(app)
        client.set_cookie("session", planted)
        response = client.post("/login", data={"user": "mallory"})
        assert response.status_code == 200
        assert client.get("/sid").get_json()["sid"] not in (planted, None)

    def test_a_corrupt_record_gives_a_fresh_session_and_a_log_line(
        self, app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        client.post("/login", data={"user": "alice"})
        sid = client.get("/sid").get_json()["sid"]
        state = get_state(app)
        state.store.save(sid, b"\xffnot a session", 60)
        with caplog.at_level(logging.WARNING, logger="flask_serverside"):
            response = client.get("/read")
        assert response.status_code == 200
        assert response.get_json() == {"user": None, "count": 0}
        assert "corrupt" in caplog.text

    def test_signed_ids_reject_tampering(self, make_app: c.Callable[..., Flask]) -> None:
        app = make_app(SESSION_USE_SIGNER=True)
        client = app.test_client()
        cookie = _cookie(client.post("/login", data={"user": "alice"}))
        assert cookie is not None
        value = cookie.split(";", 1)[0].split("=", 1)[1]
        sid, _, signature = value.rpartition(".")
        assert sid == client.get("/sid").get_json()["sid"] and signature
        assert client.get("/read").get_json()["user"] == "alice"
        forged = app.test_client()
        forged.set_cookie("session", sid + "." + signature[::-1])
        assert forged.get("/read").get_json()["user"] is None
        bare = app.test_client()
        bare.set_cookie("session", sid)
        assert bare.get("/read").get_json()["user"] is None

    def test_browser_session_cookie_when_not_permanent(
        self, make_app: c.Callable[..., Flask]
    ) -> None:
        app = make_app(SESSION_PERMANENT=False)
        cookie = _cookie(app.test_client().post("/login", data={"user": "alice"}))
        assert cookie is not None and "Expires=" not in cookie

    def test_concurrent_requests_changing_different_keys_both_land(self, app: Flask) -> None:
        if Capability.CONDITIONAL_SAVE not in get_state(app).store.capabilities:
            pytest.skip("the store has no conditional save: the last writer wins")
        client = app.test_client()
        client.post("/login", data={"user": "alice"})
        cookie = _request_cookie(client)
        interface = app.session_interface
        with app.test_request_context("/", headers={"Cookie": cookie}) as first:
            with app.test_request_context("/", headers={"Cookie": cookie}) as second:
                first.session["theme"] = "dark"
                second.session["lang"] = "fr"
                del second.session["count"]
                for ctx in (first, second):
                    interface.save_session(app, ctx.session, app.response_class())
        data = client.get("/dump").get_json()
        assert data["theme"] == "dark" and data["lang"] == "fr" and "count" not in data
        assert data["user"] == "alice"


def _request_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return f"session={cookie.value}"
