"""Flask-Session's pickled sessions, read without unpickling.

Flask-Session 0.8's ``filesystem`` and ``cachelib`` types hand the session dict to a cachelib
cache, which pickles it: a cachelib ``FileSystemCache`` file is a 4-byte expiry followed by
``pickle.dump(dict(session), f, pickle.HIGHEST_PROTOCOL)``. :func:`load_legacy_pickle` reads
such a pickle with an interpreter of its own that knows a fixed list of opcodes and builds
values itself: ``pickle`` is never called, no module is imported and nothing is looked up by a
name the data chooses. It accepts exactly what the standard library writes (protocols 2 to 5)
for the values sessions hold:

* ``dict``, ``list``, ``tuple``, ``set``, ``frozenset``, ``str``, ``bytes``, ``int``,
  ``float``, ``bool`` and ``None``;
* :class:`~markupsafe.Markup`, :class:`~uuid.UUID`, :class:`~decimal.Decimal` and
  :mod:`datetime`'s ``datetime``, ``date``, ``time``, ``timedelta`` and ``timezone`` (and
  ``set``/``frozenset`` as protocol 3 writes them): the only names a ``GLOBAL``/``STACK_GLOBAL``
  may give, each rebuilt from its checked arguments by the class's public constructor, and only
  in the shape the standard library writes it.

Anything else is refused with :class:`~flask_serverside.CorruptRecord`: any other opcode
(``INST``, ``OBJ``, ``EXT*``, ``PERSID``, ``NEWOBJ_EX``, ...), any other name, a known name
in another shape, values left on the stack, bytes after ``STOP``, a record larger than
:data:`MAX_SIZE`, nesting deeper than :data:`MAX_DEPTH`, cycles, and shared references that
expand into more values than the pickle could honestly hold. Such a session is not loaded
(its user signs in again); nothing in it ever runs.

:func:`dump_legacy_pickle` writes such a pickle, as cachelib does (protocol 5), from values of
exactly those types only, so whatever it writes, :func:`load_legacy_pickle` reads back.
:func:`pickle_to_record` and :func:`record_to_pickle` convert between Flask-Session's pickles
and the core's records, for stores whose Flask-Session counterpart pickles
(``flask_session_encoding = "pickle"``).

.. versionadded:: 0.2
"""

from __future__ import annotations

import datetime
import decimal
import pickle
import struct
import typing as t
import uuid

if t.TYPE_CHECKING:
    import collections.abc as c

from markupsafe import Markup

from .exceptions import CorruptRecord
from .serialization import SessionSerializer

#: The largest pickle read, in bytes.
MAX_SIZE = 16 * 1024 * 1024
#: The deepest nesting of containers read or written.
MAX_DEPTH = 100
#: The longest integer read, in bytes of its two's complement (``LONG1``/``LONG4``).
MAX_INT_BYTES = 1024
#: The protocol :func:`dump_legacy_pickle` writes: ``pickle.HIGHEST_PROTOCOL`` since Python 3.8,
#: what cachelib writes.
PROTOCOL = 5

_UNPACK_LENGTH = {4: struct.Struct("<I").unpack_from, 8: struct.Struct("<Q").unpack_from}
_UNPACK_FLOAT = struct.Struct(">d").unpack_from
_UNPACK_INT32 = struct.Struct("<i").unpack_from


class _Global:
    """A class named by ``GLOBAL``/``STACK_GLOBAL``: never a value, only something ``REDUCE``
    or ``NEWOBJ`` may apply."""

    __slots__ = ("name",)

    def __init__(self, name: tuple[str, str]) -> None:
        self.name = name


class _PendingUUID:
    """What ``NEWOBJ`` of ``uuid.UUID`` makes: a UUID whose value the following ``BUILD``
    gives."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: uuid.UUID | None = None


_MARKUP = ("markupsafe", "Markup")
_UUID = ("uuid", "UUID")
_DATETIME = ("datetime", "datetime")
_DATE = ("datetime", "date")
_TIME = ("datetime", "time")
_TIMEDELTA = ("datetime", "timedelta")
_TIMEZONE = ("datetime", "timezone")
_DECIMAL = ("decimal", "Decimal")
_SET = ("builtins", "set")  # protocol 3 writes sets this way
_FROZENSET = ("builtins", "frozenset")
_NAMES = frozenset(
    [_MARKUP, _UUID, _DATETIME, _DATE, _TIME, _TIMEDELTA, _TIMEZONE, _DECIMAL, _SET, _FROZENSET]
)


def _refuse(why: str) -> t.NoReturn:
    raise CorruptRecord(f"the pickle is refused: {why}")


def _is(value: object, kind: type) -> bool:
    return value.__class__ is kind


def _microseconds(raw: bytes) -> int:
    return (raw[0] << 16) | (raw[1] << 8) | raw[2]


def _tz(args: tuple[t.Any, ...], size: int) -> datetime.timezone | None:
    if len(args) == 1:
        return None
    if len(args) == 2 and _is(args[1], datetime.timezone):
        return t.cast(datetime.timezone, args[1])
    _refuse(f"a time zone that is not a datetime.timezone ({len(args)} arguments of {size})")


def _reduce(name: tuple[str, str], args: tuple[t.Any, ...]) -> t.Any:
    """Build what ``REDUCE`` of ``name`` with ``args`` makes, in the shapes the standard library
    writes."""
    if name == _DATETIME and 1 <= len(args) <= 2 and _is(args[0], bytes) and len(args[0]) == 10:
        raw = args[0]
        return datetime.datetime(
            raw[0] * 256 + raw[1],
            raw[2] & 0x7F,
            raw[3],
            raw[4],
            raw[5],
            raw[6],
            _microseconds(raw[7:10]),
            _tz(args, 10),
            fold=raw[2] >> 7,
        )
    if name == _DATE and len(args) == 1 and _is(args[0], bytes) and len(args[0]) == 4:
        raw = args[0]
        return datetime.date(raw[0] * 256 + raw[1], raw[2], raw[3])
    if name == _TIME and 1 <= len(args) <= 2 and _is(args[0], bytes) and len(args[0]) == 6:
        raw = args[0]
        return datetime.time(
            raw[0] & 0x7F, raw[1], raw[2], _microseconds(raw[3:6]), _tz(args, 6), fold=raw[0] >> 7
        )
    if name == _TIMEDELTA and len(args) == 3 and all(_is(arg, int) for arg in args):
        return datetime.timedelta(*args)
    if (
        name == _TIMEZONE
        and 1 <= len(args) <= 2
        and _is(args[0], datetime.timedelta)
        and (len(args) == 1 or _is(args[1], str))
    ):
        return datetime.timezone(*args)
    if name == _DECIMAL and len(args) == 1 and _is(args[0], str):
        return decimal.Decimal(args[0])
    if name in (_SET, _FROZENSET) and len(args) == 1 and _is(args[0], list):
        members: set[t.Any] = set()
        for item in args[0]:
            _add(members, item)
        return members if name == _SET else frozenset(members)
    _refuse(f"REDUCE of {'.'.join(name)} with {len(args)} arguments")


def _newobj(name: tuple[str, str], args: tuple[t.Any, ...]) -> t.Any:
    if name == _MARKUP and len(args) == 1 and _is(args[0], str):
        return Markup(args[0])
    if name == _UUID and not args:
        return _PendingUUID()
    _refuse(f"NEWOBJ of {'.'.join(name)} with {len(args)} arguments")


def _build(target: t.Any, state: t.Any) -> None:
    if not isinstance(target, _PendingUUID) or target.value is not None or not _is(state, dict):
        _refuse("BUILD of anything but a new UUID")
    number, safe = state.get("int"), state.get("is_safe")
    if set(state) - {"int", "is_safe"} or not _is(number, int) or safe not in (None, 0, -1):
        _refuse("a UUID state that is not its int and is_safe")
    target.value = uuid.UUID(int=number, is_safe=uuid.SafeUUID(safe))


class _Reader:
    """One pass over a pickle: a stack machine for the opcodes listed in :meth:`run`."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.pos = 0
        self.stack: list[t.Any] = []
        self.marks: list[list[t.Any]] = []
        self.memo: dict[int, t.Any] = {}
        self.result: t.Any = None

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.raw):
            _refuse("it ends in the middle of an opcode")
        chunk = self.raw[self.pos : end]
        self.pos = end
        return chunk

    def length(self, size: int) -> int:
        value = t.cast(int, _UNPACK_LENGTH[size](self.take(size))[0])
        if value > len(self.raw) - self.pos:
            _refuse("a length beyond its end")
        return value

    def pop(self) -> t.Any:
        if not self.stack:
            _refuse("an opcode without its operand")
        return self.stack.pop()

    def top(self) -> t.Any:
        if not self.stack:
            _refuse("an opcode without its operand")
        return self.stack[-1]

    def pop_mark(self) -> list[t.Any]:
        if not self.marks:
            _refuse("a marked opcode without its MARK")
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def push_text(self, size: int) -> None:
        try:
            self.stack.append(self.take(size).decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:
            _refuse("a string that is not UTF-8")

    def push_int(self, raw: bytes) -> None:
        if len(raw) > MAX_INT_BYTES:
            _refuse("an integer too long")
        self.stack.append(int.from_bytes(raw, "little", signed=True))

    def get(self, index: int) -> None:
        if index not in self.memo:
            _refuse("a memo reference to nothing")
        self.stack.append(self.memo[index])

    def put(self, index: int) -> None:
        self.memo[index] = self.top()

    def extend(self, opcode: str) -> None:
        items = self.pop_mark()
        target = self.top()
        if opcode == "u":  # SETITEMS
            if not _is(target, dict) or len(items) % 2:
                _refuse("SETITEMS on something else than a dict")
            for index in range(0, len(items), 2):
                _set_item(target, items[index], items[index + 1])
        elif opcode == "e":  # APPENDS
            if not _is(target, list):
                _refuse("APPENDS on something else than a list")
            target.extend(items)
        else:  # ADDITEMS
            if not _is(target, set):
                _refuse("ADDITEMS on something else than a set")
            for item in items:
                _add(target, item)

    def run(self) -> t.Any:
        """Run the opcodes of :data:`_HANDLERS` until ``STOP``; refuse any other."""
        raw = self.raw
        size = len(raw)
        handlers = _HANDLERS
        while self.pos < size:
            opcode = raw[self.pos]
            self.pos += 1
            handler = handlers.get(opcode)
            if handler is None:
                _refuse(f"opcode {chr(opcode)!r} at byte {self.pos - 1}")
            if handler(self):
                return self.result
        _refuse("it has no STOP")

    # One method per opcode; a true return value stops the run (STOP).

    def op_proto(self) -> None:
        if self.pos != 1 or not 2 <= self.take(1)[0] <= 5:
            _refuse("a PROTO that is not the first opcode of protocol 2 to 5")

    def op_frame(self) -> None:  # a buffering hint; the frame must lie within
        self.length(8)

    def op_stop(self) -> bool:
        self.result = self.pop()
        if self.stack or self.marks or self.pos != len(self.raw):
            _refuse("something besides one value")
        return True

    def op_mark(self) -> None:
        self.marks.append(self.stack)
        self.stack = []

    def op_memoize(self) -> None:
        self.put(len(self.memo))

    def op_binput(self) -> None:
        self.put(self.take(1)[0])

    def op_long_binput(self) -> None:
        self.put(self.length_free(4))

    def op_binget(self) -> None:
        self.get(self.take(1)[0])

    def op_long_binget(self) -> None:
        self.get(self.length_free(4))

    def op_none(self) -> None:
        self.stack.append(None)

    def op_true(self) -> None:
        self.stack.append(True)

    def op_false(self) -> None:
        self.stack.append(False)

    def op_binint1(self) -> None:
        self.stack.append(self.take(1)[0])

    def op_binint2(self) -> None:
        raw = self.take(2)
        self.stack.append(raw[0] | raw[1] << 8)

    def op_binint(self) -> None:
        self.stack.append(_UNPACK_INT32(self.take(4))[0])

    def op_long1(self) -> None:
        self.push_int(self.take(self.take(1)[0]))

    def op_long4(self) -> None:
        self.push_int(self.take(self.length(4)))

    def op_binfloat(self) -> None:
        self.stack.append(_UNPACK_FLOAT(self.take(8))[0])

    def op_short_binunicode(self) -> None:
        self.push_text(self.take(1)[0])

    def op_binunicode(self) -> None:
        self.push_text(self.length(4))

    def op_binunicode8(self) -> None:
        self.push_text(self.length(8))

    def op_short_binbytes(self) -> None:
        self.stack.append(self.take(self.take(1)[0]))

    def op_binbytes(self) -> None:
        self.stack.append(self.take(self.length(4)))

    def op_binbytes8(self) -> None:
        self.stack.append(self.take(self.length(8)))

    def op_empty_dict(self) -> None:
        self.stack.append({})

    def op_empty_list(self) -> None:
        self.stack.append([])

    def op_empty_tuple(self) -> None:
        self.stack.append(())

    def op_empty_set(self) -> None:
        self.stack.append(set())

    def _tuple_of(self, size: int) -> None:
        stack = self.stack
        if len(stack) < size:
            _refuse("a tuple without its items")
        items = tuple(stack[-size:])
        del stack[-size:]
        stack.append(items)

    def op_tuple1(self) -> None:
        self._tuple_of(1)

    def op_tuple2(self) -> None:
        self._tuple_of(2)

    def op_tuple3(self) -> None:
        self._tuple_of(3)

    def op_tuple(self) -> None:
        items = tuple(self.pop_mark())
        self.stack.append(items)

    def op_list(self) -> None:
        items = self.pop_mark()
        self.stack.append(items)

    def op_frozenset(self) -> None:
        members: set[t.Any] = set()
        for item in self.pop_mark():
            _add(members, item)
        self.stack.append(frozenset(members))

    def op_setitem(self) -> None:
        value = self.pop()
        key = self.pop()
        target = self.top()
        if not _is(target, dict):
            _refuse("SETITEM on something else than a dict")
        _set_item(target, key, value)

    def op_append(self) -> None:
        value = self.pop()
        target = self.top()
        if not _is(target, list):
            _refuse("APPEND on something else than a list")
        target.append(value)

    def op_setitems(self) -> None:
        self.extend("u")

    def op_appends(self) -> None:
        self.extend("e")

    def op_additems(self) -> None:
        self.extend("\x90")

    def op_stack_global(self) -> None:
        name = self.pop()
        module = self.pop()
        self.stack.append(_global(module, name))

    def op_global(self) -> None:  # protocols 2 and 3
        module = self.line()
        self.stack.append(_global(module, self.line()))

    def op_reduce(self) -> None:
        args = self.pop()
        target = self.pop()
        if not isinstance(target, _Global) or not _is(args, tuple):
            _refuse("REDUCE of something else than a known class")
        self.stack.append(_reduce(target.name, args))

    def op_newobj(self) -> None:
        args = self.pop()
        target = self.pop()
        if not isinstance(target, _Global) or not _is(args, tuple):
            _refuse("NEWOBJ of something else than a known class")
        self.stack.append(_newobj(target.name, args))

    def op_build(self) -> None:
        state = self.pop()
        _build(self.top(), state)

    def length_free(self, size: int) -> int:
        """An unsigned number that is not a length (a memo index)."""
        return t.cast(int, _UNPACK_LENGTH[size](self.take(size))[0])

    def line(self) -> str:
        end = self.raw.find(b"\n", self.pos, self.pos + 256)
        if end < 0:
            _refuse("a GLOBAL without its end of line")
        text = self.raw[self.pos : end]
        self.pos = end + 1
        try:
            return text.decode("ascii")
        except UnicodeDecodeError:
            _refuse("a GLOBAL name that is not ASCII")


#: The opcodes read, by byte: every other opcode is refused.
_HANDLERS: dict[int, c.Callable[[_Reader], bool | None]] = {
    0x80: _Reader.op_proto,
    0x95: _Reader.op_frame,
    ord("."): _Reader.op_stop,
    ord("("): _Reader.op_mark,
    0x94: _Reader.op_memoize,
    ord("q"): _Reader.op_binput,
    ord("r"): _Reader.op_long_binput,
    ord("h"): _Reader.op_binget,
    ord("j"): _Reader.op_long_binget,
    ord("N"): _Reader.op_none,
    0x88: _Reader.op_true,
    0x89: _Reader.op_false,
    ord("K"): _Reader.op_binint1,
    ord("M"): _Reader.op_binint2,
    ord("J"): _Reader.op_binint,
    0x8A: _Reader.op_long1,
    0x8B: _Reader.op_long4,
    ord("G"): _Reader.op_binfloat,
    0x8C: _Reader.op_short_binunicode,
    ord("X"): _Reader.op_binunicode,
    0x8D: _Reader.op_binunicode8,
    ord("C"): _Reader.op_short_binbytes,
    ord("B"): _Reader.op_binbytes,
    0x8E: _Reader.op_binbytes8,
    ord("}"): _Reader.op_empty_dict,
    ord("]"): _Reader.op_empty_list,
    ord(")"): _Reader.op_empty_tuple,
    0x8F: _Reader.op_empty_set,
    0x85: _Reader.op_tuple1,
    0x86: _Reader.op_tuple2,
    0x87: _Reader.op_tuple3,
    ord("t"): _Reader.op_tuple,
    ord("l"): _Reader.op_list,
    0x91: _Reader.op_frozenset,
    ord("s"): _Reader.op_setitem,
    ord("a"): _Reader.op_append,
    ord("u"): _Reader.op_setitems,
    ord("e"): _Reader.op_appends,
    0x90: _Reader.op_additems,
    0x93: _Reader.op_stack_global,
    ord("c"): _Reader.op_global,
    ord("R"): _Reader.op_reduce,
    0x81: _Reader.op_newobj,
    ord("b"): _Reader.op_build,
}


def _global(module: t.Any, name: t.Any) -> _Global:
    key = (module, name)
    if not (_is(module, str) and _is(name, str)) or key not in _NAMES:
        shown = f"{module}.{name}" if _is(module, str) and _is(name, str) else "a non-name"
        _refuse(f"the global {shown[:80]!r} is not one sessions hold")
    return _Global(key)


def _hashable(value: t.Any) -> t.Any:
    if isinstance(value, _Global) or _is(value, list) or _is(value, dict) or _is(value, set):
        _refuse("a dict key or set member that cannot be one")
    return value


def _set_item(target: dict[t.Any, t.Any], key: t.Any, value: t.Any) -> None:
    target[_hashable(key)] = value


def _add(target: set[t.Any], item: t.Any) -> None:
    target.add(_hashable(item))


class _Resolver:
    """Copies the parsed value into plain values: placeholders replaced by what they built,
    every shared reference expanded within a budget of values, depth bounded (cycles are
    infinitely deep)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def __call__(self, value: t.Any, depth: int = 0) -> t.Any:
        self.budget -= 1
        if self.budget < 0:
            _refuse("shared references that expand into too many values")
        if depth > MAX_DEPTH:
            _refuse(f"it nests deeper than {MAX_DEPTH} levels (or refers to itself)")
        kind = value.__class__
        if kind is dict:
            return {self(key, depth + 1): self(item, depth + 1) for key, item in value.items()}
        if kind is list:
            return [self(item, depth + 1) for item in value]
        if kind is tuple:
            return tuple(self(item, depth + 1) for item in value)
        if kind is set or kind is frozenset:
            return kind(self(item, depth + 1) for item in value)
        if kind is _PendingUUID:
            if value.value is None:
                _refuse("a UUID without its state")
            return value.value
        if kind is _Global:
            _refuse("a class as a value")
        return value


def load_legacy_pickle(raw: bytes) -> t.Any:
    """Return the value a pickle of session values holds, without unpickling it (see the
    module for what is accepted).

    :raises CorruptRecord: for anything else; nothing in ``raw`` runs.
    """
    if len(raw) > MAX_SIZE:
        _refuse(f"it is larger than {MAX_SIZE} bytes")
    try:
        value = _Reader(raw).run()
        return _Resolver(4 * len(raw) + 1024)(value)
    except CorruptRecord:
        raise
    except (ValueError, TypeError, OverflowError, decimal.InvalidOperation) as exc:
        _refuse(f"a value out of range ({type(exc).__name__})")
    except RecursionError:
        _refuse("it nests too deeply")


_PLAIN = frozenset(
    [str, bytes, int, float, bool, type(None), Markup, uuid.UUID, decimal.Decimal]
    + [datetime.date, datetime.timedelta]
)


def _check(value: t.Any, path: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"{path} nests deeper than {MAX_DEPTH} levels")
    kind = value.__class__
    if kind in _PLAIN:
        return
    if kind is datetime.datetime or kind is datetime.time:
        if value.tzinfo is not None and value.tzinfo.__class__ is not datetime.timezone:
            raise TypeError(
                f"{path}: a time zone other than datetime.timezone cannot be stored in a"
                " Flask-Session file"
            )
        return
    if kind is dict:
        for key, item in value.items():
            _check(key, f"{path}<key>", depth + 1)
            _check(item, f"{path}[{key!r}]", depth + 1)
        return
    if kind in (list, tuple, set, frozenset):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", depth + 1)
        return
    raise TypeError(f"{path}: {kind.__name__} cannot be stored in a Flask-Session file")


def dump_legacy_pickle(value: t.Any) -> bytes:
    """Return ``value`` pickled as cachelib pickles it (protocol :data:`PROTOCOL`).

    Only values of the types :func:`load_legacy_pickle` reads are written, so the pickle
    calls nothing but the standard library's own reductions of those types.

    :raises TypeError: for a value of any other type (subclasses included), naming where.
    :raises ValueError: when it nests deeper than :data:`MAX_DEPTH`.
    """
    _check(value, "session")
    return pickle.dumps(value, protocol=PROTOCOL)


def pickle_to_record(raw: bytes) -> bytes:
    """Return the core's record (MessagePack) of the session a Flask-Session pickle holds.

    :raises CorruptRecord: when ``raw`` is refused, is not a dict of ``str`` keys, or holds a
        value the core cannot store.
    """
    value = load_legacy_pickle(raw)
    if not _is(value, dict) or not all(_is(key, str) for key in value):
        _refuse("it is not a session (a dict of str keys)")
    try:
        return SessionSerializer().dumps(value)
    except (TypeError, ValueError) as exc:
        raise CorruptRecord(f"the pickled session holds what a session cannot: {exc}") from exc


def record_to_pickle(data: bytes) -> bytes:
    """Return the pickle Flask-Session would write of the session the core's record ``data``
    holds.

    :raises CorruptRecord: when ``data`` is not a record.
    :raises TypeError: when the session holds a value a Flask-Session file cannot (see
        :func:`dump_legacy_pickle`).
    """
    return dump_legacy_pickle(SessionSerializer().loads(data))
