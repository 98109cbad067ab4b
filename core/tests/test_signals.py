"""Every signal, counted through Flask with the example of the user guide and of
:mod:`flask_serverside.signals`: the counters see each event once, with its arguments, and never a
session id, user id or session data."""

from __future__ import annotations

import collections
import pathlib
import re
import textwrap

import pytest
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside import StoreUnavailable
from flask_serverside import get_state
from flask_serverside import signals

GUIDE = pathlib.Path(__file__).parents[2] / "docs" / "quickstart.rst"


def _guide_example() -> str:
    """The code block of the guide's *Signals* section."""
    text = GUIDE.read_text()
    section = text.split("Signals\n~~~~~~~\n", 1)[1]
    block = section.split(".. code-block:: python\n", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines)


@pytest.fixture
def app(flaky, clock):
    app = Flask("signals")
    app.config.update(SECRET_KEY="s", SESSION_TYPE="flaky", SESSION_BREAKER_WINDOW=5)
    Session(app)
    get_state(app).breaker._clock = clock

    @app.post("/login")
    def login():
        session["_user_id"] = "alice-the-user"
        return "ok"

    @app.get("/me")
    def me():
        return session.get("_user_id", "anonymous")

    return app


def test_the_guide_counts_every_signal(app, flaky, clock):
    example = _guide_example()
    # The module's docstring shows the same code.
    assert textwrap.indent(example, "    ") in (signals.__doc__ or "")
    namespace = {"app": app}
    exec(compile(example, str(GUIDE), "exec"), namespace)  # the documented code
    counts = namespace["counts"]
    assert counts == collections.Counter()  # nothing happened yet
    documented = set(re.findall(r"^:data:`(\w+)`", signals.__doc__ or "", re.M))
    assert documented == {
        "store_failed",
        "write_conflicted",
        "record_corrupt",
        "breaker_opened",
        "breaker_closed",
    }

    client = app.test_client()
    client.post("/login")
    sid = client.get_cookie("session").value
    state = get_state(app)

    # A write that loses to another writer once, then lands.
    with app.test_request_context("/", headers={"Cookie": f"session={sid}"}) as slow:
        slow.session["theme"] = "dark"  # loaded before the other write
        with app.test_request_context("/", headers={"Cookie": f"session={sid}"}) as other:
            other.session["lang"] = "fr"
            app.session_interface.save_session(app, other.session, app.response_class())
        app.session_interface.save_session(app, slow.session, app.response_class())
    # A corrupt record.
    state.store.save(state.store_key(sid), b"\xc1 not a record", 60)
    assert client.get("/me").text == "anonymous"
    # An outage: a failed call opens the breaker; after the window a probe closes it.
    client.post("/login")
    flaky.fault = StoreUnavailable("connection refused")
    assert client.get("/me").status_code == 503
    assert client.get("/me").status_code == 503  # refused by the breaker: not a new fault
    flaky.fault = None
    clock.advance(5)
    assert client.get("/me").text == "alice-the-user"

    assert counts == collections.Counter(
        {
            ("store_failed", "load_and_touch"): 1,
            "write_conflicted": 1,
            "write_retries": 1,
            "record_corrupt": 1,
            "breaker_opened": 1,
            "breaker_closed": 1,
        }
    )
