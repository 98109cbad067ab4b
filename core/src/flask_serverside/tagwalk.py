"""The writing walk of :class:`~flask_serverside.tagging.SessionTagger`: every value of a
session turned into data JSON and MessagePack hold, with the built-in tags of
:mod:`flask_serverside.tagging`'s table.

``depth`` is how many containers enclose the value being encoded in the output; a value that
becomes containers checks that the deepest of them stays within :data:`MAX_DEPTH`. ``msgpack``
picks MessagePack's native forms where they are exact and readable by flask-serverside 0.1.
Containers whose members are all written as they are come back as they went in (no copy).
Failures travel as :class:`Refused` and :class:`TooDeep`, which collect the path on their way
out; :class:`~flask_serverside.tagging.SessionTagger` turns them into the public errors.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import typing as t
import uuid
import zoneinfo

import msgspec
from markupsafe import Markup
from werkzeug.http import http_date

from .exceptions import UnserializableValue

if t.TYPE_CHECKING:
    import collections.abc as c

    from .tagging import SessionTagger

#: How deep containers may nest in a record (the session dict is level 1). Writing refuses
#: deeper data with a :exc:`ValueError`; reading refuses deeper records as corrupt.
MAX_DEPTH = 100

#: The ints MessagePack holds; others are tagged in both formats.
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
_FLOAT_MAX = 1.7976931348623157e308  # a float outside [-max, max] is inf, -inf or nan

_UTC = datetime.timezone.utc
_MICROSECOND = datetime.timedelta(microseconds=1)
_NATIVE_KEY_TYPES = frozenset([str, int, float, bool, type(None)])

#: The reason given for a value of a type sessions cannot hold.
CANNOT_STORE = (
    "cannot be stored in a session (sessions hold str, int, float, bool, None, list, dict,"
    " tuple, bytes, Markup, UUID, datetime, date, time, timedelta, Decimal, set, frozenset,"
    " and the types of tags registered on the serializer)"
)

Encoder = t.Callable[["SessionTagger", t.Any, int, bool], t.Any]


class Refused(Exception):
    """A value that cannot be written; the walk adds the path on its way out."""

    def __init__(self, value_type: type, reason: str) -> None:
        super().__init__(reason)
        self.value_type = value_type
        self.reason = reason
        #: Path segments, innermost first.
        self.segments: list[str] = []

    def error(self, root: str) -> UnserializableValue:
        path = root + "".join(reversed(self.segments))
        return UnserializableValue(path, self.value_type, self.reason)


class TooDeep(Exception):
    """The depth limit was reached; carries path segments like :class:`Refused`."""

    def __init__(self) -> None:
        super().__init__()
        self.segments: list[str] = []

    def error(self, root: str) -> ValueError:
        path = root + "".join(reversed(self.segments))
        return ValueError(f"{path}: nests deeper than {MAX_DEPTH} levels (a circular reference?)")


def key_segment(key: t.Any) -> str:
    """A dict key as a path segment, ``['name']``, cut to 40 characters."""
    text = repr(key)
    if len(text) > 40:
        text = text[:39] + "…"
    return f"[{text}]"


def _too_deep() -> t.NoReturn:
    raise TooDeep()


# -- the writing walk ------------------------------------------------------------------------
#
# ``depth`` is how many containers enclose the value being encoded in the output; a value that
# becomes containers checks that the deepest of them stays within MAX_DEPTH. ``msgpack`` picks
# MessagePack's native forms where they are exact and readable by 0.1.


def _number(value: int | float, depth: int) -> dict[str, str]:
    """The tag of an int outside MessagePack's range or of a float JSON cannot hold."""
    if depth >= MAX_DEPTH:
        _too_deep()
    if value.__class__ is int:
        return {" i": hex(value)}
    return {" f": repr(value)}


def encode(tagger: SessionTagger, value: t.Any, depth: int, msgpack: bool) -> t.Any:
    if _is_plain(value, msgpack):
        return value
    cls = value.__class__
    if cls is int or cls is float:
        return _number(value, depth)
    encoder = _ENCODERS.get(cls)
    if encoder is not None:
        return encoder(tagger, value, depth, msgpack)
    return tagger.custom(value, depth, msgpack)


def _is_plain(value: t.Any, msgpack: bool) -> bool:
    """Whether a scalar is written as itself."""
    cls = value.__class__
    return (
        cls is str
        or cls is bool
        or value is None
        or (cls is int and INT_MIN <= value <= INT_MAX)
        or (cls is float and (msgpack or -_FLOAT_MAX <= value <= _FLOAT_MAX))
    )


def _encode_list(tagger: SessionTagger, value: list[t.Any], depth: int, msgpack: bool) -> t.Any:
    if depth >= MAX_DEPTH:
        _too_deep()
    out: list[t.Any] | None = None
    index = 0
    try:
        for index, item in enumerate(value):  # noqa: B007 (read in the handler)
            cls = item.__class__  # _is_plain, inlined: this loop is the hot path
            if cls is str or cls is bool or item is None:
                continue
            if cls is int and INT_MIN <= item <= INT_MAX:
                continue
            if cls is float and (msgpack or -_FLOAT_MAX <= item <= _FLOAT_MAX):
                continue
            new = encode(tagger, item, depth + 1, msgpack)
            if new is not item:
                if out is None:
                    out = list(value)
                out[index] = new
    except (Refused, TooDeep) as exc:
        exc.segments.append(f"[{index}]")
        raise
    return value if out is None else out


def _encode_items(
    tagger: SessionTagger, items: c.Iterable[t.Any], depth: int, msgpack: bool
) -> list[t.Any]:
    """Encode the members of a tuple (or a set, in order) into a new list at ``depth``."""
    out = []
    try:
        for item in items:
            out.append(item if _is_plain(item, msgpack) else encode(tagger, item, depth, msgpack))
    except (Refused, TooDeep) as exc:
        exc.segments.append(f"[{len(out)}]")
        raise
    return out


def encode_dict(
    tagger: SessionTagger, value: c.Mapping[t.Any, t.Any], depth: int, msgpack: bool
) -> t.Any:
    if depth >= MAX_DEPTH:
        _too_deep()
    if len(value) == 1:
        for key, item in value.items():
            if key.__class__ is str and key in tagger.reserved:
                # Flask's TagDict: a lone key that looks like a tag gets "__" and a wrapper.
                if depth + 2 > MAX_DEPTH:
                    _too_deep()
                try:
                    return {" di": {key + "__": encode(tagger, item, depth + 2, msgpack)}}
                except (Refused, TooDeep) as exc:
                    exc.segments.append(key_segment(key))
                    raise
    out: dict[t.Any, t.Any] | None = None
    key = None
    try:
        for key, item in value.items():
            if key.__class__ is not str:
                break
            cls = item.__class__  # _is_plain, inlined: this loop is the hot path
            if cls is str or cls is bool or item is None:
                continue
            if cls is int and INT_MIN <= item <= INT_MAX:
                continue
            if cls is float and (msgpack or -_FLOAT_MAX <= item <= _FLOAT_MAX):
                continue
            new = encode(tagger, item, depth + 1, msgpack)
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        else:
            return value if out is None else out
    except (Refused, TooDeep) as exc:
        exc.segments.append(key_segment(key))
        raise
    return _encode_keyed(tagger, value, depth, msgpack)


def _encode_keyed(
    tagger: SessionTagger, value: c.Mapping[t.Any, t.Any], depth: int, msgpack: bool
) -> t.Any:
    """A dict with keys that are not all ``str``."""
    if msgpack and all(
        key.__class__ in _NATIVE_KEY_TYPES
        and (key.__class__ is not int or INT_MIN <= key <= INT_MAX)
        for key in value
    ):
        out = {}
        for key, item in value.items():
            try:
                out[key] = encode(tagger, item, depth + 1, msgpack)
            except (Refused, TooDeep) as exc:
                exc.segments.append(key_segment(key))
                raise
        return out
    if depth + 3 > MAX_DEPTH:
        _too_deep()
    pairs = []
    for key, item in value.items():
        try:
            encoded_key = encode(tagger, key, depth + 3, msgpack)
        except (Refused, TooDeep) as exc:
            exc.segments.append("<key>")
            raise
        try:
            pairs.append([encoded_key, encode(tagger, item, depth + 3, msgpack)])
        except (Refused, TooDeep) as exc:
            exc.segments.append(key_segment(key))
            raise
    return {" dk": pairs}


def _encode_tuple(
    tagger: SessionTagger, value: tuple[t.Any, ...], depth: int, msgpack: bool
) -> t.Any:
    if depth + 2 > MAX_DEPTH:
        _too_deep()
    return {" t": _encode_items(tagger, value, depth + 2, msgpack)}


def _set_order(item: t.Any) -> bytes:
    return msgspec.msgpack.encode(item)


def _encode_set(tagger: SessionTagger, value: c.Set[t.Any], depth: int, msgpack: bool) -> t.Any:
    if depth + 2 > MAX_DEPTH:
        _too_deep()
    try:
        members = _encode_items(tagger, value, depth + 2, msgpack)
    except (Refused, TooDeep) as exc:
        exc.segments[-1] = "{…}"  # a set member has no index
        raise
    # A set's iteration order depends on its history and the process's hash seed: sort the
    # encoded members so equal sets give equal records (an unchanged session is not rewritten).
    members.sort(key=_set_order)
    return {" fs" if value.__class__ is frozenset else " s": members}


def _leaf(key: str, payload: t.Any, depth: int) -> dict[str, t.Any]:
    levels = 2 if payload.__class__ is list else 1
    if depth + levels > MAX_DEPTH:
        _too_deep()
    return {key: payload}


def _encode_bytes(tagger: SessionTagger, value: bytes, depth: int, msgpack: bool) -> t.Any:
    if msgpack:
        return value
    return _leaf(" b", base64.b64encode(value).decode("ascii"), depth)


def _encode_markup(tagger: SessionTagger, value: Markup, depth: int, msgpack: bool) -> t.Any:
    return _leaf(" m", str(value.__html__()), depth)


def _encode_uuid(tagger: SessionTagger, value: uuid.UUID, depth: int, msgpack: bool) -> t.Any:
    return _leaf(" u", value.hex, depth)


def _zoned(value: datetime.datetime | datetime.time) -> t.Any:
    """The ISO form of a datetime or time, or ``[isoformat, zone, fold]`` where ISO 8601 is not
    enough: a ZoneInfo (``zone`` is its key), an offset with microseconds, which ISO parsers
    drop (``zone`` is the offset in microseconds, the time is without it), or a fold of 1
    (``zone`` is ``None``)."""
    tz = value.tzinfo
    if tz is not None:
        if isinstance(tz, zoneinfo.ZoneInfo) and tz.key is not None:
            return [value.isoformat(), tz.key, value.fold]
        offset = value.utcoffset()
        if offset is None:
            raise Refused(
                type(tz), "is a tzinfo without an offset here; use datetime.timezone or ZoneInfo"
            )
        if tz.__class__ is not datetime.timezone:
            value = value.replace(tzinfo=datetime.timezone(offset))
        if offset.microseconds:
            return [value.replace(tzinfo=None).isoformat(), offset // _MICROSECOND, value.fold]
    if value.fold:
        return [value.isoformat(), None, 1]
    return value.isoformat()


def _encode_datetime(
    tagger: SessionTagger, value: datetime.datetime, depth: int, msgpack: bool
) -> t.Any:
    if value.tzinfo is _UTC and not value.fold:
        if msgpack:
            return value  # a MessagePack timestamp, read back with timezone.utc
        if not value.microsecond and value.year >= 100:
            return _leaf(" d", http_date(value), depth)
    return _leaf(" dt", _zoned(value), depth)


def _encode_date(tagger: SessionTagger, value: datetime.date, depth: int, msgpack: bool) -> t.Any:
    return _leaf(" da", value.isoformat(), depth)


def _encode_time(tagger: SessionTagger, value: datetime.time, depth: int, msgpack: bool) -> t.Any:
    return _leaf(" ti", _zoned(value), depth)


def _encode_timedelta(
    tagger: SessionTagger, value: datetime.timedelta, depth: int, msgpack: bool
) -> t.Any:
    return _leaf(" td", [value.days, value.seconds, value.microseconds], depth)


def _encode_decimal(
    tagger: SessionTagger, value: decimal.Decimal, depth: int, msgpack: bool
) -> t.Any:
    return _leaf(" dc", str(value), depth)


_ENCODERS: dict[type, Encoder] = {
    list: _encode_list,
    dict: encode_dict,
    tuple: _encode_tuple,
    set: _encode_set,
    frozenset: _encode_set,
    bytes: _encode_bytes,
    Markup: _encode_markup,
    uuid.UUID: _encode_uuid,
    datetime.datetime: _encode_datetime,
    datetime.date: _encode_date,
    datetime.time: _encode_time,
    datetime.timedelta: _encode_timedelta,
    decimal.Decimal: _encode_decimal,
}


def plain(value: t.Any, depth: int, msgpack: bool, key: str) -> t.Any:
    """Check what a registered tag returned: JSON data (tuples become lists); ints and floats
    JSON or MessagePack cannot hold are tagged, anything else refused."""
    cls = value.__class__
    if _is_plain(value, msgpack):
        return value
    if cls is int or cls is float:
        return _number(value, depth)
    if cls is list or cls is tuple:
        if depth >= MAX_DEPTH:
            _too_deep()
        out = []
        try:
            for item in value:
                out.append(plain(item, depth + 1, msgpack, key))
        except (Refused, TooDeep) as exc:
            exc.segments.append(f"[{len(out)}]")
            raise
        return out
    if cls is dict:
        if depth >= MAX_DEPTH:
            _too_deep()
        result = {}
        for name, item in value.items():
            if name.__class__ is not str:
                raise Refused(
                    type(name), f"is a key in what tag {key!r} returned; keys must be str"
                )
            try:
                result[name] = plain(item, depth + 1, msgpack, key)
            except (Refused, TooDeep) as exc:
                exc.segments.append(key_segment(name))
                raise
        return result
    raise Refused(
        cls,
        f"is in what tag {key!r} returned, which must be JSON data (tag nested values with"
        " self.serializer.tag)",
    )
