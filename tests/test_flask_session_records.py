"""Records written by the real Flask-Session 0.8 serializer load through our interface."""

from __future__ import annotations

import datetime
import json
import math

import msgspec
import pytest
from flask import Flask
from flask import session
from flask.json.tag import TaggedJSONSerializer
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from flask_serverside import CorruptRecord
from flask_serverside import Session
from flask_serverside import get_state
from flask_serverside.serialization import SessionSerializer
from flask_serverside.tagging import NEW_TAGS

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


# -- any record Flask-Session 0.8 can write loads as flask-serverside 0.1 loaded it -------------

UTC = datetime.timezone.utc
# A dict whose only key is a tag name added in 0.2 is the documented exception (see
# flask_serverside.tagging): leave those keys out.
keys = st.text(max_size=4).filter(lambda key: key not in NEW_TAGS)
scalars = st.one_of(
    st.text(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),
    st.booleans(),
    st.none(),
    st.binary(),
    st.uuids(),
    st.decimals(allow_nan=False),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.timedeltas(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
        st.dictionaries(st.integers(min_value=-(2**63), max_value=2**63), children, max_size=3),
    ),
    max_leaves=12,
)


def read_as_0_1(raw):
    """flask-serverside 0.1's loads: msgspec or json, then Flask's untag, innermost first."""
    tagger = TaggedJSONSerializer()
    if raw[:1] == b"{":
        return json.loads(raw, object_hook=tagger.untag)

    def untag(value):
        if isinstance(value, dict):
            return tagger.untag({key: untag(item) for key, item in value.items()})
        if isinstance(value, list):
            return [untag(item) for item in value]
        return value

    return untag(msgspec.msgpack.decode(raw))


def same(a, b):
    """Equal with the same types all the way down (nan equal to nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    return a == b


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
@settings(max_examples=100, deadline=None)
@given(data=st.dictionaries(keys, values, max_size=5))
def test_any_flask_session_08_record_loads_as_before(fmt, data):
    serializer = flask_session_base.MsgSpecSerializer(Flask("legacy"), fmt)
    session = flask_session_base.ServerSideSession(data, sid="ignored")
    try:
        record = serializer.encode(session)
    except (TypeError, OverflowError):  # JSON cannot hold every key type: not a record
        return
    try:
        before = read_as_0_1(record)
        assert type(before) is dict and all(type(key) is str for key in before)
    except Exception:  # 0.1 could not load it (a lone Flask tag key with another payload)
        with pytest.raises(CorruptRecord):
            SessionSerializer(fmt).loads(record)
        return
    assert same(SessionSerializer(fmt).loads(record), before)
