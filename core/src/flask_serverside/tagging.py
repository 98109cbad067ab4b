"""Tags: how session values that JSON and MessagePack cannot hold are written, exactly.

:class:`SessionTagger` walks a session once and turns every value into data both formats hold
(``str``, ``int``, ``float``, ``bool``, ``None``, lists and maps), wrapping each other value in a
one-key dict whose key names its type, as Flask's :class:`~flask.json.tag.TaggedJSONSerializer`
does. Flask's tags keep their names and layout, so a record stays readable by Flask's tagger, and
therefore by flask-serverside 0.1, wherever the value allows. Types are matched exactly: a
subclass (an ``IntEnum``, an ``OrderedDict``, a ``str`` subclass) would come back as its base
type, so it is refused like any other unknown type, unless a registered tag claims it.

Each type, how it is written, and what a reader of 0.1 (Flask's untagging) sees of it:

``str``, ``bool``, ``None``, ``list``, an ``int`` in [-2**63, 2**64-1]
    Themselves. 0.1 sees the same.
other ``int``
    ``{" i": hex(value)}`` in both formats (MessagePack holds 64 bits; JSON parsers differ
    past that). 0.1 sees that dict.
``float``
    Itself; in JSON inf, -inf and nan are ``{" f": "inf"}`` (JSON has no such numbers). 0.1
    sees the float, or in JSON that dict for a non-finite one.
``dict`` with ``str`` keys
    A map; one whose only key is a tag key is ``{" di": {key + "__": value}}``, Flask's
    ``TagDict``. 0.1 sees the same dict.
``dict`` with other keys
    In MessagePack a map when every key is a ``str``, an ``int`` in range, a ``float``, a
    ``bool`` or ``None``; else ``{" dk": [[key, value], ...]}``. 0.1 sees the map in
    MessagePack, else that dict.
``tuple``, ``Markup``, ``UUID``
    Flask's ``{" t": [...]}``, ``{" m": str}``, ``{" u": hex}``. 0.1 sees the value.
``bytes``
    MessagePack's bin; in JSON Flask's ``{" b": base64}``. 0.1 sees the bytes.
``datetime``
    With ``tzinfo=timezone.utc``: in MessagePack its timestamp (microseconds kept), in JSON
    Flask's ``{" d": HTTP date}`` when it is whole seconds. Else ``{" dt": isoformat}``, or
    ``{" dt": [isoformat, zone, fold]}`` for a :class:`~zoneinfo.ZoneInfo` (``zone`` is its
    key), a fold of 1 (``zone`` is ``None``) or an offset with microseconds, which ISO parsers
    drop (``zone`` is the offset in microseconds and the time is written without it). 0.1 sees
    the datetime for the first two forms, else that dict.
``date``, ``time``, ``timedelta``, ``Decimal``
    ``{" da": isoformat}``, ``{" ti": isoformat}`` (or ``[isoformat, zone, fold]`` as for a
    datetime), ``{" td": [days, seconds, microseconds]}``, ``{" dc": str(value)}``. 0.1 sees
    that dict.
``set``, ``frozenset``
    ``{" s": [...]}``, ``{" fs": [...]}``, the members sorted by their encoding so that equal
    sets give equal records (an unchanged session is not rewritten). 0.1 sees that dict.

A ``datetime`` or ``time`` keeps a :class:`datetime.timezone` offset or a
:class:`zoneinfo.ZoneInfo` zone (and its ``fold``) exactly; another tzinfo (pytz, dateutil)
comes back as a ``datetime.timezone`` of the same offset, and a ``time`` whose tzinfo gives no
offset is refused. A zone unknown where the record is read leaves the value at its offset.

Applications add types with :meth:`SessionTagger.register`, which takes Flask
:class:`~flask.json.tag.JSONTag` subclasses as Flask's own tagger does. A registered tag is
asked (in its order) about values whose type has no built-in encoding; built-in types always use
the exact encoding above, and built-in keys cannot be replaced.

Reading undoes the tags innermost first, as Flask does. A Flask tag (or a registered one) whose
payload is not what the writer puts there makes the record corrupt (:class:`CorruptRecord`). A
new tag with such a payload is left as the dict it is: flask-serverside 0.1 did not know these
keys, so it wrote an application's dict whose only key was, say, ``" s"`` as it was, and such a
record reads as 0.1 read it, unless its payload is valid for the tag (a list, for ``" s"``). Our
writer wraps every dict whose only key is a tag key in ``" di"``, so this ambiguity only
concerns records written before 0.2.

Containers nest at most :data:`MAX_DEPTH` levels deep in a record, counted as written (a tuple
is two levels: the tag's dict and its list); writing refuses deeper data, so whatever is
written can be read.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import typing as t
import uuid
import zoneinfo

import msgspec
from flask.json.tag import TaggedJSONSerializer
from markupsafe import Markup
from werkzeug.http import parse_date

from .exceptions import CorruptRecord
from .exceptions import UnserializableValue
from .tagwalk import CANNOT_STORE
from .tagwalk import MAX_DEPTH as MAX_DEPTH
from .tagwalk import Refused
from .tagwalk import TooDeep
from .tagwalk import encode
from .tagwalk import encode_dict
from .tagwalk import key_segment
from .tagwalk import plain

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask.json.tag import JSONTag

#: The keys of Flask's own tags, written as Flask writes them.
FLASK_TAGS = (" di", " t", " b", " m", " u", " d")
#: The keys of the tags added by flask-serverside 0.2.
NEW_TAGS = (" i", " f", " dk", " dt", " da", " ti", " td", " dc", " s", " fs")

_OWN_NEW_TAGS = frozenset(NEW_TAGS)
_NON_FINITE = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}


class SessionTagger(TaggedJSONSerializer):
    """Tags session values exactly for JSON and MessagePack, and untags them.

    A :class:`~flask.json.tag.TaggedJSONSerializer` (its :meth:`dumps` and :meth:`loads` work
    on JSON text as Flask's do) with the exact encodings of the module's table. Flask's default
    tags are not registered on it: the built-in encodings replace them, and :attr:`tags` and
    :attr:`order` hold only the tags registered by the application.

    .. versionadded:: 0.2
    """

    __slots__ = ("_decoders", "reserved", "_spaced", "json_markers", "msgpack_markers")

    default_tags = []  # the built-in encodings replace Flask's default tags

    def __init__(self) -> None:
        super().__init__()
        #: The decoder of every tag key, built in and registered.
        self._decoders: dict[str, t.Callable[[t.Any], t.Any]] = dict(_BUILTIN_DECODERS)
        #: Every tag key: a dict whose only key is one of them is wrapped in ``" di"``.
        self.reserved: frozenset[str] = frozenset(self._decoders)
        #: Whether every tag key holds a space (the built-in ones do).
        self._spaced = True
        #: Byte strings at least one of which a JSON record holding a tag contains.
        self.json_markers: tuple[bytes, ...] = (b'" ',)
        #: Byte strings at least one of which a MessagePack record holding a tag contains.
        self.msgpack_markers: tuple[bytes, ...] = (b"\xa2 ", b"\xa3 ")

    # -- registration ------------------------------------------------------------------------

    def register(
        self, tag_class: type[JSONTag], force: bool = False, index: int | None = None
    ) -> None:
        """Register an application's tag, as :meth:`TaggedJSONSerializer.register` does.

        ``tag_class`` is a :class:`~flask.json.tag.JSONTag` subclass: :meth:`~JSONTag.check`
        is asked about values of types without a built-in encoding, :meth:`~JSONTag.to_json`
        must return JSON data (call ``self.serializer.tag(...)`` on nested values, as Flask's
        tags do), and :meth:`~JSONTag.to_python` receives its payload already untagged.

        :param tag_class: the tag class; instantiated with this tagger.
        :param force: replace a tag registered earlier under the same key.
        :param index: where in the order of registered tags to check it; ``None`` appends.
        :raises KeyError: when the key is taken and ``force`` is not set, or is a built-in
            key, which cannot be replaced.
        """
        tag = tag_class(self)
        key = tag.key
        if key:
            if key in _BUILTIN_DECODERS:
                raise KeyError(f"Tag {key!r} is built in and cannot be replaced.")
            if not force and key in self.tags:
                raise KeyError(f"Tag {key!r} is already registered.")
            self.tags[key] = tag
            self._decoders[key] = tag.to_python
            self.reserved = frozenset(self._decoders)
            self._spaced = self._spaced and " " in key
            extra_json = [] if key.startswith(" ") else [msgspec.json.encode(key)]
            if not (key.startswith(" ") and len(key) in (2, 3)):
                self.msgpack_markers = (*self.msgpack_markers, msgspec.msgpack.encode(key))
            self.json_markers = (*self.json_markers, *extra_json)
        if index is None:
            self.order.append(tag)
        else:
            self.order.insert(index, tag)

    def may_hold_tags(self, raw: bytes, *, msgpack: bool) -> bool:
        """Whether a record may hold a tag; ``False`` means it holds none, so decoding it needs
        no untag walk. A few byte searches, no parsing.

        .. versionadded:: 0.2
        """
        if self._spaced and b" " not in raw:
            return False
        for marker in self.msgpack_markers if msgpack else self.json_markers:
            if marker in raw:
                return True
        return False

    # -- writing -----------------------------------------------------------------------------

    def tag_session(self, data: c.Mapping[str, t.Any], *, msgpack: bool) -> t.Any:
        """Tag a whole session for one format.

        :param data: the session's data; its keys must be ``str``.
        :param msgpack: whether the result is for MessagePack (else JSON).
        :raises UnserializableValue: naming the path and the type of a value (or a key) that
            sessions cannot hold.
        :raises ValueError: when the data nests deeper than :data:`MAX_DEPTH`.
        """
        for key in data:
            if key.__class__ is not str:
                raise UnserializableValue(
                    f"session[{key_segment(key)[1:-1]}]",
                    type(key),
                    "a top-level session key must be str",
                )
        try:
            return encode_dict(self, data, 0, msgpack)
        except Refused as exc:
            raise exc.error("session") from None
        except TooDeep as exc:
            raise exc.error("session") from None

    def tag(self, value: t.Any) -> t.Any:
        """Tag ``value`` into JSON data (the form custom tags nest), as Flask's
        :meth:`TaggedJSONSerializer.tag` does.

        :raises UnserializableValue: for a value sessions cannot hold.
        :raises ValueError: when it nests deeper than :data:`MAX_DEPTH`.
        """
        try:
            return encode(self, value, 0, False)
        except Refused as exc:
            raise exc.error("value") from None
        except TooDeep as exc:
            raise exc.error("value") from None

    def custom(self, value: t.Any, depth: int, msgpack: bool) -> t.Any:
        """Encode a value of a type without a built-in encoding with the first registered tag
        that accepts it (for the walk of :mod:`.tagwalk`, which passes ``depth``)."""
        for tag in self.order:
            if tag.check(value):
                return plain(tag.tag(value), depth, msgpack, tag.key)
        raise Refused(type(value), CANNOT_STORE)

    # -- reading -----------------------------------------------------------------------------

    def untag(self, value: dict[str, t.Any]) -> t.Any:
        """Undo one tag, as Flask's :meth:`TaggedJSONSerializer.untag` does: a one-key dict
        whose key is a tag becomes its value; anything else is returned as is."""
        if len(value) != 1:
            return value
        key = next(iter(value))
        decode = self._decoders.get(key) if key.__class__ is str else None
        return value if decode is None else decode(value[key])

    def untag_tree(self, value: t.Any, depth: int = 1) -> t.Any:
        """Undo every tag in a decoded record, innermost first, changing its lists and dicts
        in place.

        :param depth: the nesting level of ``value`` (the record's top-level dict is 1).
        :raises CorruptRecord: when it nests deeper than :data:`MAX_DEPTH` or a tag's payload
            is not what the writer puts there.
        """
        if depth > MAX_DEPTH:
            raise CorruptRecord(f"the record nests deeper than {MAX_DEPTH} levels")
        if value.__class__ is list:
            for index, item in enumerate(value):
                if item.__class__ is dict or item.__class__ is list:
                    new = self.untag_tree(item, depth + 1)
                    if new is not item:
                        value[index] = new
            return value
        if len(value) == 1:
            for key, inner in value.items():
                decode = self._decoders.get(key) if key.__class__ is str else None
                if decode is not None:
                    if inner.__class__ is dict or inner.__class__ is list:
                        inner = self.untag_tree(inner, depth + 1)
                    try:
                        return decode(inner)
                    except Exception as exc:
                        if key in _OWN_NEW_TAGS:
                            # flask-serverside 0.1 wrote such a dict as it was: read it so.
                            value[key] = inner
                            return value
                        if isinstance(exc, CorruptRecord):
                            raise
                        raise CorruptRecord(
                            f"the {key!r} tag holds what it cannot decode ({type(exc).__name__})"
                        ) from exc
        for key, item in value.items():
            if item.__class__ is dict or item.__class__ is list:
                new = self.untag_tree(item, depth + 1)
                if new is not item:
                    value[key] = new
        return value

    def _untag_scan(self, value: t.Any) -> t.Any:
        if value.__class__ is dict or value.__class__ is list:
            return self.untag_tree(value)
        return value


# -- the reading side ------------------------------------------------------------------------


def _str(value: t.Any) -> str:
    if value.__class__ is not str:
        raise CorruptRecord("a tag holds a value of the wrong type")
    return value


def _list(value: t.Any, length: int | None = None) -> list[t.Any]:
    if value.__class__ is not list or (length is not None and len(value) != length):
        raise CorruptRecord("a tag holds a value of the wrong shape")
    return value


def _decode_di(value: t.Any) -> dict[str, t.Any]:
    if value.__class__ is not dict or len(value) != 1:
        raise CorruptRecord("a ' di' tag holds a value of the wrong shape")
    ((key, item),) = value.items()
    if key.__class__ is not str or not key.endswith("__"):
        raise CorruptRecord("a ' di' tag holds a value of the wrong shape")
    return {key[:-2]: item}


def _decode_date(value: t.Any) -> datetime.datetime:
    parsed = parse_date(_str(value))
    if parsed is None:
        raise CorruptRecord("a ' d' tag holds what is not an HTTP date")
    return parsed


def _decode_float(value: t.Any) -> float:
    try:
        return _NON_FINITE[_str(value)]
    except KeyError:
        raise CorruptRecord("a ' f' tag holds what is not inf, -inf or nan") from None


def _zone(value: t.Any, parse: t.Callable[[str], t.Any]) -> t.Any:
    if value.__class__ is str:
        return parse(value)
    iso, key, fold = _list(value, 3)
    parsed = parse(_str(iso))
    if fold.__class__ is not int or fold not in (0, 1):
        raise CorruptRecord("a zoned tag holds a fold that is not 0 or 1")
    if key is None:
        return parsed.replace(fold=fold)
    if key.__class__ is int:
        offset = datetime.timezone(datetime.timedelta(microseconds=key))
        return parsed.replace(tzinfo=offset, fold=fold)
    try:
        zone = zoneinfo.ZoneInfo(_str(key))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return parsed.replace(fold=fold)  # the zone is unknown here: keep the offset
    return parsed.replace(tzinfo=zone, fold=fold)


def _decode_datetime(value: t.Any) -> datetime.datetime:
    return t.cast(datetime.datetime, _zone(value, datetime.datetime.fromisoformat))


def _decode_time(value: t.Any) -> datetime.time:
    return t.cast(datetime.time, _zone(value, datetime.time.fromisoformat))


def _decode_timedelta(value: t.Any) -> datetime.timedelta:
    days, seconds, microseconds = _list(value, 3)
    if not all(part.__class__ is int for part in (days, seconds, microseconds)):
        raise CorruptRecord("a ' td' tag holds what is not three ints")
    return datetime.timedelta(days, seconds, microseconds)


def _decode_keyed(value: t.Any) -> dict[t.Any, t.Any]:
    out = {}
    for pair in _list(value):
        key, item = _list(pair, 2)
        out[key] = item
    return out


_BUILTIN_DECODERS: dict[str, t.Callable[[t.Any], t.Any]] = {
    " di": _decode_di,
    " t": lambda value: tuple(_list(value)),
    " b": lambda value: base64.b64decode(_str(value)),
    " m": lambda value: Markup(_str(value)),
    " u": lambda value: uuid.UUID(_str(value)),
    " d": _decode_date,
    " i": lambda value: int(_str(value), 16),
    " f": _decode_float,
    " dk": _decode_keyed,
    " dt": _decode_datetime,
    " da": lambda value: datetime.date.fromisoformat(_str(value)),
    " ti": _decode_time,
    " td": _decode_timedelta,
    " dc": lambda value: decimal.Decimal(_str(value)),
    " s": lambda value: set(_list(value)),
    " fs": lambda value: frozenset(_list(value)),
}
