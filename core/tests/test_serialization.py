"""Session data encoding: Flask's tagged types, both formats, Flask-Session records, no pickle."""

from __future__ import annotations

import datetime
import json
import pickle
import uuid

import msgspec
import pytest
from markupsafe import Markup

from flask_serverside import CorruptRecord
from flask_serverside.serialization import SessionSerializer

SAMPLE = {
    "_permanent": True,
    "user": "alice",
    "tuple": (1, (2, "three")),
    "bytes": b"\x00\x01\xff",
    "markup": Markup("<b>x</b>"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    "_flashes": [("message", Markup("<i>hi</i>"))],
    "tag lookalike": {" t": ["not", "a", "tuple"]},
    "nested": {"list": [1, 2.5, None, True, {"deep": "value"}]},
    "unicode": "ünïcødé ✓",
}


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_flask_tagged_types_round_trip(fmt):
    serializer = SessionSerializer(fmt)
    loaded = serializer.loads(serializer.dumps(SAMPLE))
    assert loaded == SAMPLE
    for key, value in SAMPLE.items():
        assert type(loaded[key]) is type(value), key
    assert type(loaded["_flashes"][0]) is tuple
    assert type(loaded["_flashes"][0][1]) is Markup


def test_either_format_reads_the_other():
    as_json = SessionSerializer("json").dumps(SAMPLE)
    as_msgpack = SessionSerializer("msgpack").dumps(SAMPLE)
    assert as_json.startswith(b"{")
    assert SessionSerializer("msgpack").loads(as_json) == SAMPLE
    assert SessionSerializer("json").loads(as_msgpack) == SAMPLE


def test_encoding_is_stable_for_unchanged_data():
    serializer = SessionSerializer()
    first = serializer.dumps(SAMPLE)
    assert serializer.dumps(serializer.loads(first)) == first


@pytest.mark.parametrize(
    "encode",
    [msgspec.msgpack.Encoder().encode, msgspec.json.Encoder().encode],
    ids=["msgpack", "json"],
)
def test_records_in_flask_session_08_formats_load(encode):
    # Flask-Session 0.7/0.8 write dict(session) with a plain msgspec encoder.
    written = {"_permanent": True, "user_id": 42, "cart": ["a", "b"], "n": {"x": 1.5}}
    assert SessionSerializer().loads(encode(written)) == written


def test_flask_session_msgpack_native_types_load():
    when = datetime.datetime(2026, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    raw = msgspec.msgpack.encode({"when": when, "blob": b"\x00\xff"})
    assert SessionSerializer().loads(raw) == {"when": when, "blob": b"\x00\xff"}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_is_refused_not_loaded(protocol):
    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("pickle was executed",))

    raw = pickle.dumps({"x": Boom()}, protocol=protocol)
    with pytest.raises(CorruptRecord, match="pickle"):
        SessionSerializer().loads(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage",
        b"{not json",
        b"[1, 2, 3]",
        json.dumps([{"a": 1}]).encode(),
        b"\x81\xa1a",  # truncated msgpack map
        msgspec.msgpack.encode({1: "int key"}),
        b"\x93\x01\x02\x03",  # a msgpack array, not a map
        b'{" t": [1]}',  # a tagged tuple at the top: not a mapping
    ],
)
def test_corrupt_records_raise_corrupt_record(raw):
    with pytest.raises(CorruptRecord):
        SessionSerializer().loads(raw)


def test_unserializable_values_say_what_sessions_hold():
    with pytest.raises(TypeError, match="Sessions hold JSON types"):
        SessionSerializer().dumps({"obj": object()})


def test_unknown_format_is_refused():
    with pytest.raises(ValueError):
        SessionSerializer("pickle")


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
@pytest.mark.parametrize("key", [" t", " di", " m", "_permanent"])
def test_a_lone_key_that_looks_like_a_tag_round_trips(fmt, key):
    serializer = SessionSerializer(fmt)
    assert serializer.loads(serializer.dumps({key: [1, 2]})) == {key: [1, 2]}
