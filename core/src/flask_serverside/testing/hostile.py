"""A corpus of hostile records: bytes a store may hold that are no session.

Each one must make :meth:`~flask_serverside.serialization.SessionSerializer.loads` raise
:class:`~flask_serverside.CorruptRecord` and nothing else, and give a request a fresh session.
:class:`~flask_serverside.testing.SessionFlowContract` plants each under a live session id on the
store under test. Every record is small (a few KiB), so any store can hold it.

.. versionadded:: 0.2
"""

from __future__ import annotations

import pickle

import msgspec

from ..serialization import MAX_DEPTH

_json = msgspec.json.encode
_msgpack = msgspec.msgpack.encode


def _deep_json(levels: int) -> bytes:
    return b'{"a":' + b"[" * levels + b"]" * levels + b"}"


def _deep_msgpack(levels: int) -> bytes:
    return b"\x81\xa1a" + b"\x91" * (levels - 1) + b"\x90"


#: ``(name, record)`` pairs; none of them is a session.
HOSTILE_RECORDS: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("garbage", b"\xffnot a session"),
    ("text", b"hello"),
    ("json array", b'[{"a": 1}]'),
    ("json truncated", b'{"a": [1, 2'),
    ("json trailing data", b'{"a": 1} {"b": 2}'),
    ("json nan literal", b'{"a": NaN}'),
    ("json huge number", b'{"a": 1e400}'),
    ("json lone surrogate", b'{"a": "\\ud800"}'),
    ("json invalid utf-8", b'{"a": "\xff\xfe"}'),
    ("json 2000 deep", _deep_json(2000)),
    ("json just too deep", _deep_json(MAX_DEPTH)),
    ("json tagged top", b'{" t": [1, 2]}'),
    ("json bytes top", b'{" b": "AAAA"}'),
    ("datetime of an int", b'{" d": 5}'),
    ("nested datetime of an int", b'{"a": {" d": 5}}'),
    ("datetime of garbage", b'{"a": {" d": "not a date"}}'),
    ("uuid of an int", b'{" u": 1}'),
    ("nested uuid of garbage", b'{"a": {" u": "zz"}}'),
    ("bytes of an int", b'{"a": {" b": 5}}'),
    ("markup of a list", b'{"a": {" m": [1]}}'),
    ("tuple of a dict", b'{"a": {" t": {"x": 1}}}'),
    ("di of an int", b'{"a": {" di": 5}}'),
    ("di of two keys", b'{"a": {" di": {"x__": 1, "y__": 2}}}'),
    ("di without suffix", b'{"a": {" di": {"x": 1}}}'),
    ("pickle 2", pickle.dumps({"a": 1}, protocol=2)),
    ("pickle 5", pickle.dumps({"a": 1}, protocol=5)),
    ("msgpack array", _msgpack([1, 2, 3])),
    ("msgpack int key", _msgpack({1: "a"})),
    ("msgpack bytes key", _msgpack({b"a": 1})),
    ("msgpack truncated", b"\x82\xa1a\x01"),
    ("msgpack huge length", b"\xdf\xff\xff\xff\xff"),
    ("msgpack invalid utf-8", b"\x81\xa1a\xa2\xff\xfe"),
    ("msgpack extension", b"\x81\xa1a\xd4\x05\x00"),
    ("msgpack 2000 deep", _deep_msgpack(2000)),
    ("msgpack just too deep", _deep_msgpack(MAX_DEPTH)),
    ("msgpack datetime of an int", _msgpack({"a": {" d": 5}})),
    ("msgpack uuid of bytes", _msgpack({"a": {" u": b"\x00" * 16}})),
    ("msgpack tuple of a map", _msgpack({"a": {" t": {"x": 1}}})),
]
