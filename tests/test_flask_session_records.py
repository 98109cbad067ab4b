"""Records written by the real Flask-Session 0.8 serializer load through our interface."""

from __future__ import annotations

import pytest
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside import get_state

flask_session_base = pytest.importorskip("flask_session.base")


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_a_flask_session_08_record_is_read_and_rewritten_in_our_format(fmt):
    legacy_app = Flask("legacy")
    serializer = flask_session_base.MsgSpecSerializer(legacy_app, fmt)
    legacy = flask_session_base.ServerSideSession(
        {"user_id": 42, "cart": ["apple"], "_flashes": [["message", "welcome back"]]},
        sid="ignored",
        permanent=True,
    )
    record = serializer.encode(legacy)

    app = Flask("ours")
    app.config.update(SECRET_KEY="s", SESSION_TYPE="memory")
    Session(app)

    @app.get("/me")
    def me():
        return {"user": session.get("user_id"), "cart": session.get("cart")}

    state = get_state(app)
    sid = state.ids.generate()
    store = state.store
    store.save(sid, record, 60)  # under the raw id, as Flask-Session keys it
    client = app.test_client()
    client.set_cookie("session", sid)
    assert client.get("/me").get_json() == {"user": 42, "cart": ["apple"]}
    assert store.load(sid) is None  # moved to its hashed key, in our format
    assert session_is_permanent(store.load(state.store_key(sid)).data, app)


def session_is_permanent(raw, app):
    return get_state(app).serializer.loads(raw)["_permanent"] is True
