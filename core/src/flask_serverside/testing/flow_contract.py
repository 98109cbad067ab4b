"""The Flask flow contract: applications on the store under test, end to end."""

from __future__ import annotations

import collections.abc as c
import importlib.util
import logging
import secrets
import threading
import typing as t

import pytest
from flask import Flask

from ..extension import Session
from ..state import SessionState
from ..state import get_state
from ..store import Capability
from ..writer import forward_target
from .hostile import HOSTILE_RECORDS
from .spy import spy_on_store
from .store_contract import new_sid
from .views import flow_views


class StoreOutage(t.Protocol):
    """A backend of the store under test that the test can take down, for
    :meth:`SessionFlowContract.test_a_store_fault_is_never_read_as_no_such_session`."""

    #: The configuration keys of an application on this backend (as ``session_config``).
    config: dict[str, t.Any]

    def down(self) -> contextlib.AbstractContextManager[None]:
        """Make the backend unreachable or failing (stop it, freeze it, break its files) for
        the ``with`` block, and bring it back after."""
        ...


if t.TYPE_CHECKING:
    import contextlib

    from flask.testing import FlaskClient
    from werkzeug.wrappers import Response


def _cookie(response: Response, name: str = "session") -> str | None:
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
        key = state.store_key(sid)
        assert state.store.load(key) is not None
        response = client.post("/logout")
        removal = _cookie(response)
        assert removal is not None and "Expires=Thu, 01 Jan 1970" in removal
        assert "HttpOnly" in removal and "SameSite=Lax" in removal and "Path=/" in removal
        assert state.store.load(key) is None
        assert client.get("/read").get_json() == {"user": None, "count": 0}

    def test_flash_messages_keep_markup(self, client: FlaskClient) -> None:
        _skip_in_flask_session_encoding(client)
        client.post("/flash")
        assert client.get("/flashes").get_json() == {
            "messages": [["info", "<b>plain</b>", "str"], ["warning", "<b>bold</b>", "Markup"]]
        }
        assert client.get("/flashes").get_json() == {"messages": []}

    def test_flask_tagged_types_round_trip(self, client: FlaskClient) -> None:
        _skip_in_flask_session_encoding(client)
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
        # Gone, or a short-lived forward to the new session's key.
        old = state.store.load(state.store_key(old_sid))
        assert old is None or forward_target(old.data) == state.store_key(new_sid_)
        assert client.get("/read").get_json()["user"] == "alice"
        stolen = app.test_client()
        stolen.set_cookie("session", old_sid)  # the old id gives nothing, not even a forward
        assert stolen.get("/read").get_json() == {"user": None, "count": 0}

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
        state = get_state(app)
        if state.config.compat_flask_session and not state.serializer.compat:
            pytest.skip(
                "in the compatibility write mode this store keeps Flask-Session's pickles, which"
                " hold sessions only (its own tests plant refused pickles)"
            )
        client.post("/login", data={"user": "alice"})
        sid = client.get("/sid").get_json()["sid"]
        state.store.save(state.store_key(sid), b"\xffnot a session", 60)
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

    # -- contention, regeneration and logout races, faults ----------------------------------

    #: Threads in the contention tests, each a request stream on the same session.
    contention_threads: int = 16
    #: Requests each contention thread makes.
    contention_rounds: int = 4

    def _contend(self, app: Flask, cookie: str, path: c.Callable[[int, int], str]) -> list[int]:
        """Run :attr:`contention_threads` threads, each making :attr:`contention_rounds`
        POSTs to ``path(thread, round)`` with ``cookie``; return every status code."""
        statuses: list[int] = []
        lock = threading.Lock()
        value = cookie.split("=", 1)[1]

        def work(number: int) -> None:
            client = app.test_client()
            client.set_cookie("session", value)
            for round_ in range(self.contention_rounds):
                status = client.post(path(number, round_)).status_code
                with lock:
                    statuses.append(status)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(self.contention_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a request thread hung"
        return statuses

    def test_parallel_requests_writing_their_own_keys_all_land(self, app: Flask) -> None:
        if Capability.CONDITIONAL_SAVE not in get_state(app).store.capabilities:
            pytest.skip("the store has no conditional save: the last writer wins")
        client = app.test_client()
        client.post("/login", data={"user": "alice"})
        statuses = self._contend(app, _request_cookie(client), lambda n, r: f"/key/k{n}/{r}")
        assert statuses == [200] * (self.contention_threads * self.contention_rounds)
        data = client.get("/dump").get_json()
        last = str(self.contention_rounds - 1)
        assert {f"k{n}": data.get(f"k{n}") for n in range(self.contention_threads)} == {
            f"k{n}": last for n in range(self.contention_threads)
        }
        assert data["user"] == "alice"

    def test_parallel_writes_of_one_key_never_fail(self, app: Flask) -> None:
        client = app.test_client()
        client.post("/login", data={"user": "alice"})
        statuses = self._contend(app, _request_cookie(client), lambda n, r: f"/key/shared/{n}-{r}")
        assert set(statuses) == {200}
        data = client.get("/dump").get_json()
        assert data["shared"] in {
            f"{n}-{r}"
            for n in range(self.contention_threads)
            for r in range(self.contention_rounds)
        }
        assert data["user"] == "alice"

    def test_a_write_racing_a_regenerate_follows_the_session(self, app: Flask) -> None:
        if Capability.CONDITIONAL_SAVE not in get_state(app).store.capabilities:
            pytest.skip("forwarding a regenerated session needs a conditional save")
        if get_state(app).config.compat_flask_session:
            pytest.skip("the compatibility write mode deletes the old id, as Flask-Session does")
        client = app.test_client()
        client.post("/login", data={"user": "alice"})
        cookie = _request_cookie(client)
        interface = app.session_interface
        with app.test_request_context("/", headers={"Cookie": cookie}) as other:
            with app.test_request_context("/", headers={"Cookie": cookie}) as login:
                other.session["theme"] = "dark"  # loaded before the regeneration
                login.session.regenerate()  # type: ignore[attr-defined]
                login.session["user"] = "alice (signed in again)"
                login_response = app.response_class()
                interface.save_session(app, login.session, login_response)
                other_response = app.response_class()
                interface.save_session(app, other.session, other_response)
        assert other_response.status_code == 200
        assert _cookie(other_response) is None  # never undoes the new cookie
        new_cookie = _cookie(login_response)
        assert new_cookie is not None
        client.set_cookie("session", new_cookie.split(";", 1)[0].split("=", 1)[1])
        data = client.get("/dump").get_json()
        assert data == {"user": "alice (signed in again)", "count": 0, "theme": "dark"}
        late = app.test_client()  # a request sent with the old cookie after the regeneration
        late.set_cookie("session", cookie.split("=", 1)[1])
        assert late.get("/read").get_json() == {"user": None, "count": 0}
        refused = late.post("/key/theme/light")
        assert refused.status_code == 409 and _cookie(refused) is None
        assert client.get("/dump").get_json()["theme"] == "dark"

    def test_a_write_racing_a_logout_does_not_bring_the_session_back(self, app: Flask) -> None:
        if Capability.CONDITIONAL_SAVE not in get_state(app).store.capabilities:
            pytest.skip("without a conditional save the last writer wins, even over a logout")
        client = app.test_client()
        client.post("/login", data={"user": "alice"})
        cookie = _request_cookie(client)
        sid = cookie.split("=", 1)[1]
        interface = app.session_interface
        with app.test_request_context("/", headers={"Cookie": cookie}) as other:
            with app.test_request_context("/", headers={"Cookie": cookie}) as logout:
                other.session["theme"] = "dark"
                logout.session.destroy()  # type: ignore[attr-defined]
                logout_response = app.response_class()
                interface.save_session(app, logout.session, logout_response)
                other_response = app.response_class()
                interface.save_session(app, other.session, other_response)
        removal = _cookie(logout_response)
        assert removal is not None and "Expires=Thu, 01 Jan 1970" in removal
        assert other_response.status_code == 200 and _cookie(other_response) is None
        state = get_state(app)
        assert state.store.load(state.store_key(sid)) is None  # stays destroyed

    @pytest.fixture
    def store_outage(self) -> StoreOutage:
        """Override: a :class:`StoreOutage` for a backend of this store's own (so that taking
        it down does not disturb other tests). Without one, the fault tests are skipped."""
        pytest.skip("define a store_outage fixture to run the fault tests on this store")

    def test_a_store_fault_is_never_read_as_no_such_session(
        self, store_outage: StoreOutage
    ) -> None:
        for policy, status in (("unavailable", 503), ("empty", 200)):
            app = Flask("flow_contract_outage")
            app.config.update(
                SECRET_KEY="flow-contract-secret",
                SESSION_KEY_PREFIX=f"outage-{secrets.token_hex(6)}:",
                SESSION_ON_STORE_ERROR=policy,
                SESSION_BREAKER_WINDOW=0,
                **store_outage.config,
            )
            Session(app)
            app.register_blueprint(flow_views)
            try:
                client = app.test_client()
                client.post("/login", data={"user": "alice"})
                with store_outage.down():
                    response = client.get("/read")
                assert response.status_code == status, response.text
                assert _cookie(response) is None  # the user's cookie is kept
                assert client.get("/read").get_json()["user"] == "alice"
            finally:
                get_state(app).close()

    # -- sessions at rest ---------------------------------------------------------------------

    @pytest.fixture
    def backend_dump(self) -> c.Callable[[Flask], bytes]:
        """Override: a function that returns everything the backend of an application holds,
        as bytes, the way someone who copies it would see it (every key and value of a Redis,
        every file of a directory, every row or document). Without one, the at-rest tests are
        skipped."""
        pytest.skip("define a backend_dump fixture to run the at-rest tests on this store")

    def test_a_dump_of_the_store_holds_no_id_and_no_plain_data(
        self, make_app: c.Callable[..., Flask], backend_dump: c.Callable[[Flask], bytes]
    ) -> None:
        # Encryption needs the cryptography package (flask-serverside[encryption]).
        can_encrypt = importlib.util.find_spec("cryptography") is not None
        for encrypted in (False, True) if can_encrypt else (False,):
            marker = f"marker-{secrets.token_hex(8)}"
            extra = {"SESSION_ENCRYPTION_KEY": secrets.token_urlsafe(32)} if encrypted else {}
            app = make_app(**extra)
            client = app.test_client()
            client.post("/login", data={"user": marker})
            client.post("/count")
            sid = client.get("/sid").get_json()["sid"]
            dump = backend_dump(app)
            assert sid.encode() not in dump  # hashed ids: never the bearer token
            if encrypted:
                assert marker.encode() not in dump
            else:  # proves the dump holds the records: the data is there in clear
                assert marker.encode() in dump
            assert client.get("/read").get_json() == {"user": marker, "count": 1}

    # -- hostile records ---------------------------------------------------------------------
    # Each record of flask_serverside.testing.hostile, planted under a live session id on the
    # store under test, gives a served request (never a 500), a fresh session with a new cookie,
    # one warning, and is deleted, so it is neither refreshed nor read again.

    def plant_record(self, app: Flask, key: str, record: bytes) -> None:
        """Put ``record`` under store key ``key`` of ``app``'s store, as a hostile writer of the
        backend would. By default through the store's ``save``; override it for a store that
        rewrites what it is given (in the layout of another library, say)."""
        get_state(app).store.save(key, record, 60)

    def _plant(self, app: Flask, record: bytes) -> tuple[FlaskClient, str]:
        client = app.test_client()
        client.post("/login", data={"user": "alice"})
        sid = client.get("/sid").get_json()["sid"]
        self.plant_record(app, get_state(app).store_key(sid), record)
        return client, sid

    def test_a_hostile_record_gives_a_fresh_session_and_is_deleted(
        self, app: Flask, caplog: pytest.LogCaptureFixture
    ) -> None:
        state = get_state(app)
        for name, record in HOSTILE_RECORDS:
            client, sid = self._plant(app, record)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="flask_serverside"):
                response = client.get("/read")
            assert response.status_code == 200, name
            assert response.get_json() == {"user": None, "count": 0}, name
            logged = [r for r in caplog.records if r.name.startswith("flask_serverside")]
            assert [r.levelno for r in logged] == [logging.WARNING], name
            assert "corrupt" in logged[0].getMessage(), name
            assert sid not in logged[0].getMessage(), name
            assert state.store.load(state.store_key(sid)) is None, name
            assert client.get_cookie("session") is None, name  # the stale cookie is removed
            client.post("/login", data={"user": "bob"})
            assert client.get("/sid").get_json()["sid"] not in (sid, None), name
            assert client.get("/read").get_json() == {"user": "bob", "count": 0}, name

    def test_a_hostile_record_never_breaks_a_page_that_ignores_the_session(
        self, app: Flask, caplog: pytest.LogCaptureFixture
    ) -> None:
        app.add_url_rule("/no-session", "no_session", lambda: "no session here")
        for name, record in HOSTILE_RECORDS:
            client, _ = self._plant(app, record)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="flask_serverside"):
                for path in ("/no-session", "/no-session", "/read"):
                    response = client.get(path)
                    assert response.status_code == 200, (name, path)
            assert response.get_json() == {"user": None, "count": 0}, name
            logged = [r for r in caplog.records if r.name.startswith("flask_serverside")]
            assert len(logged) <= 1 and all(r.levelno == logging.WARNING for r in logged), name


def _request_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return f"session={cookie.value}"


def _skip_in_flask_session_encoding(client: FlaskClient) -> None:
    if get_state(client.application).serializer.compat:
        pytest.skip(
            "with SESSION_COMPAT_FLASK_SESSION the core writes Flask-Session 0.8's encoding,"
            " which holds no Markup and turns tuples into lists"
        )
