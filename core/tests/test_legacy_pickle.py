"""Flask-Session's pickled sessions are read by an interpreter of our own that never unpickles:
what the standard library writes for session values loads with exact types; every other
opcode, name or shape is refused, and nothing in a hostile pickle ever runs."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import os
import pathlib
import pickle
import pickletools
import re
import uuid
import zoneinfo

import pytest
from markupsafe import Markup

from flask_serverside import CorruptRecord
from flask_serverside import dump_legacy_pickle
from flask_serverside import load_legacy_pickle
from flask_serverside import pickle_to_record
from flask_serverside import record_to_pickle
from flask_serverside.legacy_pickle import MAX_DEPTH
from flask_serverside.legacy_pickle import MAX_SIZE
from flask_serverside.serialization import SessionSerializer

UTC = datetime.timezone.utc

#: What Flask-Session's sessions hold, as cachelib pickles them.
SESSION = {
    "_permanent": True,
    "_user_id": "42",
    "_fresh": False,
    "csrf_token": "f" * 40,
    "_flashes": [("message", Markup("<b>welcome</b>")), ("error", "plain")],
    "cart": [("pear", 2), ["plum", 1.5]],
    "seen": {1, 2},
    "tags": frozenset({"a"}),
    "avatar": b"\x00\xff" * 200,
    "nothing": None,
    "big": 2**200,
    "negative": -(2**40),
    "price": decimal.Decimal("3.14"),
    "when": datetime.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    "local": datetime.datetime(2024, 11, 3, 1, 30, fold=1),
    "cet": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
    "named": datetime.datetime(
        2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-5), "EST")
    ),
    "day": datetime.date(2020, 2, 29),
    "at": datetime.time(23, 59, 59, 999999, tzinfo=UTC),
    "delta": datetime.timedelta(days=-3, seconds=5, microseconds=7),
    "ids": [uuid.UUID(int=7), uuid.uuid1(), uuid.uuid4()],
    "nested": {"a": [1, {"b": (None, {"c": "é" * 300})}], 3: "int key", (1, 2): "tuple key"},
    "long_text": "x" * 70_000,
    "long_bytes": os.urandom(100_000),
}


def same(left, right) -> bool:
    """Equal, with the same types all the way down."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, (datetime.datetime, datetime.time)):
        return left == right and left.fold == right.fold and left.tzinfo == right.tzinfo
    if isinstance(left, uuid.UUID):
        return left == right and left.is_safe == right.is_safe
    return bool(left == right)


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_what_the_standard_library_writes_loads_exactly(protocol):
    expected = dict(SESSION)
    if protocol == 3:  # the standard library keeps a datetime's fold from protocol 4 on
        expected["local"] = expected["local"].replace(fold=0)
    assert same(load_legacy_pickle(pickle.dumps(SESSION, protocol)), expected)


def test_a_real_flask_session_file_loads(tmp_path):
    """The bytes after cachelib's expiry header, as Flask-Session 0.8 writes them."""
    cachelib = pytest.importorskip("cachelib")
    cache = cachelib.FileSystemCache(str(tmp_path), threshold=0)
    cache.set("session:abc", dict(SESSION), timeout=60)
    (path,) = tmp_path.iterdir()
    assert same(load_legacy_pickle(path.read_bytes()[4:]), SESSION)


def test_shared_references_load_as_values():
    shared = ["a", "b"]
    value = {"x": shared, "y": shared, "s": "same", "t": "same"}
    assert load_legacy_pickle(pickle.dumps(value, 5)) == value


def test_dump_writes_what_cachelib_writes_and_reads_back():
    assert dump_legacy_pickle(SESSION) == pickle.dumps(SESSION, pickle.HIGHEST_PROTOCOL)
    assert same(load_legacy_pickle(dump_legacy_pickle(SESSION)), SESSION)
    assert load_legacy_pickle(dump_legacy_pickle(41)) == 41  # cachelib's count file


class Color(enum.IntEnum):
    RED = 1


class Point(collections.namedtuple("Point", "x y")):
    pass


@pytest.mark.parametrize(
    "value",
    [
        collections.OrderedDict(a=1),
        Color.RED,
        Point(1, 2),
        type("Text", (str,), {})("subclass"),
        bytearray(b"x"),
        datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        object(),
        pathlib.Path("/"),
    ],
    ids=lambda value: type(value).__name__,
)
def test_dump_refuses_what_load_would_refuse(value):
    with pytest.raises(TypeError, match="cannot be stored in a Flask-Session file"):
        dump_legacy_pickle({"session": [value]})


def test_dump_refuses_deep_nesting():
    value: list = []
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(ValueError, match="nests deeper"):
        dump_legacy_pickle({"deep": value})


# -- hostile pickles ---------------------------------------------------------------------------


class Exploit:
    """Unpickling it would create a file: the proof that something ran."""

    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class Rebuild:
    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (self.target,))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("payload", [Exploit, Rebuild])
def test_code_in_a_pickle_never_runs(tmp_path, protocol, payload):
    target = tmp_path / "ran"
    raw = pickle.dumps({"_user_id": "1", "x": payload(target)}, protocol)
    with pytest.raises(CorruptRecord):
        load_legacy_pickle(raw)
    with pytest.raises(CorruptRecord):
        pickle_to_record(raw)
    assert not target.exists()


ALLOWED_OPCODES = {
    "BININT",
    "BININT1",
    "BININT2",
    "LONG1",
    "LONG4",
    "BINBYTES",
    "SHORT_BINBYTES",
    "BINBYTES8",
    "NONE",
    "NEWTRUE",
    "NEWFALSE",
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "BINFLOAT",
    "EMPTY_LIST",
    "APPEND",
    "APPENDS",
    "LIST",
    "EMPTY_TUPLE",
    "TUPLE",
    "TUPLE1",
    "TUPLE2",
    "TUPLE3",
    "EMPTY_DICT",
    "SETITEM",
    "SETITEMS",
    "EMPTY_SET",
    "ADDITEMS",
    "FROZENSET",
    "MARK",
    "BINGET",
    "LONG_BINGET",
    "BINPUT",
    "LONG_BINPUT",
    "MEMOIZE",
    "GLOBAL",
    "STACK_GLOBAL",
    "REDUCE",
    "BUILD",
    "NEWOBJ",
    "PROTO",
    "STOP",
    "FRAME",
}
REFUSED_OPCODES = [op for op in pickletools.opcodes if op.name not in ALLOWED_OPCODES]


def test_the_refused_opcodes_are_the_dangerous_and_the_unneeded_ones():
    names = {op.name for op in REFUSED_OPCODES}
    assert {"INST", "OBJ", "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID", "NEWOBJ_EX"} <= names
    assert {"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER", "POP", "DUP", "GET", "PUT"} <= names


@pytest.mark.parametrize("opcode", REFUSED_OPCODES, ids=lambda op: op.name)
def test_every_other_opcode_is_refused(opcode):
    # A value on the stack and a mark first, so that the opcode itself is what is refused.
    raw = b"\x80\x05N(" + opcode.code.encode("latin-1") + b"\x00" * 16 + b"."
    with pytest.raises(CorruptRecord, match=re.escape(f"opcode {opcode.code!r}")):
        load_legacy_pickle(raw)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("builtins", "eval"),
        ("builtins", "getattr"),
        ("subprocess", "Popen"),
        ("pickle", "loads"),
        ("datetime", "datetime.now"),
        ("markupsafe", "Markup.format"),
        ("uuid", "uuid4"),
        ("copyreg", "_reconstructor"),
    ],
)
@pytest.mark.parametrize("opcode", ["GLOBAL", "STACK_GLOBAL"])
def test_other_names_are_refused(module, name, opcode):
    if opcode == "GLOBAL":
        head = b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    else:
        head = (
            b"\x8c" + bytes([len(module)]) + module.encode()
            + b"\x8c" + bytes([len(name)]) + name.encode() + b"\x93"
        )  # fmt: skip
    with pytest.raises(CorruptRecord, match="is not one sessions hold"):
        load_legacy_pickle(b"\x80\x05" + head + b")R.")


def _global(module: str, name: str) -> bytes:
    return (
        b"\x8c" + bytes([len(module)]) + module.encode()
        + b"\x8c" + bytes([len(name)]) + name.encode() + b"\x93"
    )  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [
        # a known class in a shape the standard library never writes
        b"\x80\x05" + _global("datetime", "datetime") + b"\x8c\x01x\x85R.",
        b"\x80\x05" + _global("datetime", "datetime") + b"K\x01K\x02K\x03\x87R.",
        b"\x80\x05" + _global("datetime", "timedelta") + b"\x8c\x01x\x85R.",
        b"\x80\x05" + _global("datetime", "timezone") + b"K\x01\x85R.",
        b"\x80\x05" + _global("decimal", "Decimal") + b"K\x01\x85R.",
        b"\x80\x05" + _global("markupsafe", "Markup") + b")\x81.",
        b"\x80\x05" + _global("markupsafe", "Markup") + b"K\x01\x85\x81.",
        b"\x80\x05" + _global("markupsafe", "Markup") + b"\x8c\x01x\x85R.",
        b"\x80\x05" + _global("uuid", "UUID") + b"\x8c\x01x\x85R.",
        b"\x80\x05" + _global("uuid", "UUID") + b")\x81}\x8c\x03hex\x8c\x01xsb.",
        b"\x80\x05" + _global("uuid", "UUID") + b")\x81.",  # never built
        b"\x80\x05" + _global("uuid", "UUID") + b").",  # a class as a value
        b"\x80\x05}\x8c\x01a}b.",  # BUILD of a dict
        b"\x80\x05" + _global("builtins", "set") + b"\x8c\x01x\x85R.",
        # values out of range
        b"\x80\x05" + _global("datetime", "date") + b"C\x04\x07\xe8\x0d\x01\x85R.",
        b"\x80\x05" + _global("decimal", "Decimal") + b"\x8c\x03abc\x85R.",
        # a key that cannot be one
        b"\x80\x05}]K\x01s.",
        # broken framing
        b"\x80\x05K\x01",
        b"\x80\x05K\x01..",
        b"\x80\x05K\x01K\x02.",
        b"\x80\x05\x8c\xffab.",
        b"\x80\x05\x95\xff\x00\x00\x00\x00\x00\x00\x00K\x01.",
        b"\x80\x05X\xff\xff\xff\xffab.",
        b"\x80\x05h\x05.",
        b"\x80\x05(K\x01.",
        b"\x80\x05u.",
        b"\x80\x05K\x01\x80\x05.",
        b"\x80\x09K\x01.",
        b"\x80\x05\x8c\x02\xff\xfe.",
        b"",
    ],
)
def test_malformed_and_misshapen_pickles_are_refused(raw):
    with pytest.raises(CorruptRecord):
        load_legacy_pickle(raw)


def test_a_reference_bomb_is_refused():
    # Each list holds the previous one twice: 40 levels would be 2**40 values.
    bomb: list = ["boom"]
    for _ in range(40):
        bomb = [bomb, bomb]
    raw = pickle.dumps({"bomb": bomb}, 5)
    assert len(raw) < 400
    with pytest.raises(CorruptRecord, match="too many values"):
        load_legacy_pickle(raw)


def test_a_cycle_is_refused():
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(CorruptRecord, match="refers to itself"):
        load_legacy_pickle(pickle.dumps({"loop": cyclic}, 5))


def test_deep_nesting_is_refused():
    deep: list = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(CorruptRecord, match="nests deeper"):
        load_legacy_pickle(pickle.dumps(deep, 5))


def test_a_huge_integer_and_a_huge_pickle_are_refused():
    with pytest.raises(CorruptRecord, match="too long"):
        load_legacy_pickle(pickle.dumps(1 << 20_000, 5))
    with pytest.raises(CorruptRecord, match="larger than"):
        load_legacy_pickle(b"\x80\x05" + b"N" * MAX_SIZE + b".")


# -- conversion to and from the core's records -------------------------------------------------


def test_a_pickled_session_becomes_a_record_the_core_reads():
    session = {
        "_permanent": True,
        "_user_id": "42",
        "_flashes": [("message", Markup("<b>hi</b>"))],
        "avatar": b"\x00\x01",
        "id": uuid.UUID(int=5),
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    record = pickle_to_record(pickle.dumps(session, 5))
    assert same(SessionSerializer().loads(record), session)
    assert same(load_legacy_pickle(record_to_pickle(record)), session)


@pytest.mark.parametrize("value", [["not", "a", "dict"], {1: "int key"}, 42])
def test_a_pickle_that_is_not_a_session_is_refused(value):
    with pytest.raises(CorruptRecord, match="not a session"):
        pickle_to_record(pickle.dumps(value, 5))
