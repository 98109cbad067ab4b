"""Outages are bounded: load on first access, the circuit breaker, the empty policy, signals."""

from __future__ import annotations

import collections

import pytest
from flask import Flask
from flask import session

from flask_serverside import NodeUnavailable
from flask_serverside import Session
from flask_serverside import StoreError
from flask_serverside import StoreUnavailable
from flask_serverside import get_state
from flask_serverside import signals
from flask_serverside.breaker import BreakerOpen
from flask_serverside.breaker import CircuitBreaker
from flask_serverside.testing import spy_on_store
from flask_serverside.writer import NODE_ATTEMPTS


@pytest.fixture
def app(flaky, clock):
    app = Flask("breaker")
    app.config.update(SECRET_KEY="s", SESSION_TYPE="flaky", SESSION_BREAKER_WINDOW=5)
    Session(app)
    get_state(app).breaker._clock = clock

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return "ok"

    @app.get("/me")
    def me():
        return session.get("user", "anonymous")

    @app.post("/note")
    def note():
        session["note"] = "hello"
        return "ok"

    @app.get("/public")
    def public():
        return "public page"

    return app


@pytest.fixture
def events(app):
    seen = collections.Counter()

    def record(name):
        def receiver(sender, **extra):
            assert sender is app
            seen[name] += 1

        return receiver

    receivers = {
        name: record(name)
        for name in ("store_failed", "breaker_opened", "breaker_closed", "write_conflicted")
    }
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, sender=app)
    yield seen
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver, sender=app)


def test_a_view_that_never_touches_the_session_makes_no_store_call(app, flaky):
    client = app.test_client()
    client.post("/login")
    spy = spy_on_store(app)
    flaky.fault = StoreUnavailable("down")
    response = client.get("/public")
    assert response.status_code == 200 and response.text == "public page"
    assert sum(spy.calls.values()) == 0


def test_the_first_access_loads_once_in_one_round_trip(app):
    client = app.test_client()
    client.post("/login")
    spy = spy_on_store(app)
    assert client.get("/me").text == "alice"
    assert dict(spy.calls) == {"load_and_touch": 1}


def test_after_a_fault_calls_fail_fast_then_one_probe_closes_the_breaker(app, flaky, clock, events):
    client = app.test_client()
    client.post("/login")
    flaky.fault = StoreUnavailable("connection refused")
    first = client.get("/me")
    assert first.status_code == 503 and first.headers["Retry-After"] == "5"
    assert events["breaker_opened"] == 1 and events["store_failed"] == 1
    reached = flaky.reached
    clock.advance(2)
    fast = client.get("/me")
    assert fast.status_code == 503 and fast.headers["Retry-After"] == "3"
    assert flaky.reached == reached  # refused by the breaker: the store is not reached
    assert events["store_failed"] == 1  # refusals are not new faults
    flaky.fault = None  # the store is back, but the window has not passed
    assert client.get("/me").status_code == 503
    clock.advance(3)
    assert client.get("/me").text == "alice"  # the probe
    assert events["breaker_closed"] == 1
    assert client.get("/me").text == "alice"


def test_a_failed_probe_opens_another_window(app, flaky, clock, events):
    client = app.test_client()
    client.post("/login")
    flaky.fault = StoreUnavailable("timed out")
    assert client.get("/me").status_code == 503
    clock.advance(5)
    assert client.get("/me").status_code == 503  # the probe fails
    assert events["store_failed"] == 2 and events["breaker_opened"] == 1
    flaky.fault = None
    clock.advance(4)
    assert client.get("/me").status_code == 503  # still the second window
    clock.advance(1)
    assert client.get("/me").text == "alice"


def test_other_store_errors_do_not_open_the_breaker(app, flaky, events):
    client = app.test_client()
    client.post("/login")
    flaky.fault = StoreError("value too large")
    assert client.get("/me").status_code == 503
    flaky.fault = None
    assert client.get("/me").text == "alice"
    assert events["breaker_opened"] == 0 and events["store_failed"] == 1


def test_a_node_of_several_being_down_does_not_open_the_breaker(app, flaky, events):
    client = app.test_client()
    client.post("/login")
    flaky.fault = NodeUnavailable("the node of this session is down")
    assert client.get("/me").status_code == 503  # unavailable, not missing
    assert client.get("/me").status_code == 503
    assert events["breaker_opened"] == 0 and events["store_failed"] == 2
    assert not get_state(app).breaker.is_open  # other sessions are still served
    flaky.fault = None
    assert client.get("/me").text == "alice"


@pytest.mark.parametrize("down", [1, NODE_ATTEMPTS - 1, NODE_ATTEMPTS])
def test_a_new_session_takes_another_id_when_its_node_is_down(app, flaky, down):
    flaky.creations_down = down
    client = app.test_client()
    response = client.post("/login")
    created = flaky.created
    assert len(set(created)) == len(created)  # a fresh id each time
    if down < NODE_ATTEMPTS:
        assert response.status_code == 200 and len(created) == down + 1
        assert get_state(app).store_key(client.get_cookie("session").value) == created[-1]
        assert client.get("/me").text == "alice"
    else:
        assert response.status_code == 503 and len(created) == NODE_ATTEMPTS
        assert client.get_cookie("session") is None


def test_a_change_that_cannot_be_saved_is_a_503(app, flaky):
    client = app.test_client()
    flaky.fault = StoreUnavailable("down")
    response = client.post("/note")
    assert response.status_code == 503


def test_the_empty_policy_never_overwrites_a_record_it_could_not_load(app, flaky):
    app.config["SESSION_ON_STORE_ERROR"] = "empty"
    state = get_state(app)
    state.config = type(state.config).from_app(app)
    state.breaker.window = 0
    client = app.test_client()
    client.post("/login")
    old_sid = client.get_cookie("session").value
    flaky.fault = StoreUnavailable("down")
    assert client.get("/me").text == "anonymous"
    # The load fails, the save succeeds (the store came back in between).
    with app.test_request_context("/", headers={"Cookie": f"session={old_sid}"}) as ctx:
        assert ctx.session.get("user") is None
        flaky.fault = None
        ctx.session["note"] = "written during the outage"
        response = app.response_class()
        app.session_interface.save_session(app, ctx.session, response)
    new_sid = ctx.session.sid
    assert new_sid is not None and new_sid != old_sid
    old_key = state.store_key(old_sid)
    old = state.decode(old_key, state.store.load(old_key))
    assert old["user"] == "alice" and "note" not in old


def test_the_breaker_alone():
    now = [0.0]
    changes = []
    breaker = CircuitBreaker(10, clock=lambda: now[0], on_change=changes.append)
    breaker.before_call()
    breaker.failed()
    assert breaker.is_open and changes == [True]
    with pytest.raises(BreakerOpen) as refused:
        breaker.before_call()
    assert refused.value.retry_after == 10
    now[0] = 10.0
    breaker.before_call()  # the probe
    with pytest.raises(BreakerOpen):
        breaker.before_call()  # one probe at a time
    breaker.succeeded()
    assert not breaker.is_open and changes == [True, False]
    breaker.before_call()
    off = CircuitBreaker(0)
    off.failed()
    off.before_call()
    assert not off.is_open


def test_a_spy_behind_the_guard_counts_only_calls_that_reach_the_store(app, flaky, clock):
    client = app.test_client()
    client.post("/login")
    spy = spy_on_store(app, behind_guard=True)
    flaky.fault = StoreUnavailable("down")
    assert client.get("/me").status_code == 503
    assert dict(spy.calls) == {"load_and_touch": 1}  # reached the store, which failed
    spy.reset()
    assert client.get("/me").status_code == 503
    assert sum(spy.calls.values()) == 0  # refused by the open breaker
    flaky.fault = None
    clock.advance(5)
    assert client.get("/me").text == "alice"
    assert dict(spy.calls) == {"load_and_touch": 1}
    with pytest.raises(TypeError, match="not behind its guard"):
        spy_on_store(app)  # a spy in front ...
        spy_on_store(app, behind_guard=True)  # ... then none can go behind it
