"""Session data to bytes and back: exact types, two formats, no pickle.

A session comes back as it went in, same types and same values, or it is refused when it is
saved. It may hold ``str``, ``int`` (any size), ``float`` (inf, -inf and nan too), ``bool``,
``None``, ``list``, ``dict`` (keys of any of these types when nested; ``str`` at the top),
``tuple``, ``bytes``, :class:`~markupsafe.Markup`, :class:`~uuid.UUID`,
:class:`~datetime.datetime` (naive or aware, microseconds and offset kept), ``date``, ``time``
(with its tzinfo), ``timedelta``, :class:`~decimal.Decimal`, ``set`` and ``frozenset``, nested
at will within :data:`MAX_DEPTH`, plus the types of tags the application registers
(:meth:`SessionSerializer.register`). Anything else, subclasses included (an ``IntEnum``, an
``OrderedDict``), raises :exc:`~flask_serverside.UnserializableValue` (a ``TypeError``) at save,
naming where it is: ``session['cart'][2]: Item cannot be stored in a session``.

One walk (:class:`~flask_serverside.tagging.SessionTagger`) tags the values that JSON and
MessagePack cannot hold, keeping the tags of Flask's ``TaggedJSONSerializer`` for the types
Flask has, so records stay readable by flask-serverside 0.1 wherever the value allows;
:mod:`flask_serverside.tagging` lists every encoding and what a 0.1 reader sees of it. Then
:mod:`msgspec` encodes the result as MessagePack (``SESSION_SERIALIZATION_FORMAT = "msgpack"``,
the default, as in Flask-Session) or JSON (``"json"``).

Reading does not depend on the setting: the first byte tells the format apart, so records
written by Flask-Session 0.7/0.8 in either of its formats load too, and changing the setting
needs no migration. A record without tags and with few containers is returned as decoded,
without a walk. :meth:`SessionSerializer.loads` raises nothing but
:class:`~flask_serverside.CorruptRecord`: for pickle (Flask-Session before 0.7), which is never
unpickled, for a record larger than :data:`MAX_RECORD_SIZE` or nested deeper than
:data:`MAX_DEPTH`, for MessagePack extension types other than timestamps, for malformed tags and
for any decoding error. Writing refuses what reading would refuse, so a saved session can always
be loaded.

.. versionchanged:: 0.2
    Exact types: ``datetime`` keeps microseconds, offsets and naivety; ``date``, ``time``,
    ``timedelta``, ``Decimal``, ``set``, ``frozenset``, big ints, non-finite floats and non-str
    nested keys round-trip; other types are refused at save with their path; limits on size and
    depth; every decoding error is a ``CorruptRecord``.
"""

from __future__ import annotations

import typing as t

import msgspec

from .compat import flask_session_dumps
from .exceptions import CorruptRecord
from .exceptions import UnserializableValue
from .tagging import MAX_DEPTH as MAX_DEPTH
from .tagging import SessionTagger
from .tagwalk import key_segment

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask.json.tag import JSONTag

#: The names ``SESSION_SERIALIZATION_FORMAT`` accepts.
FORMATS = ("msgpack", "json")

#: The largest record, in bytes, that is written or read (16 MiB): far above what a session
#: should hold, low enough to bound the work a hostile record can cause.
MAX_RECORD_SIZE = 16 * 1024 * 1024

# A MessagePack map: fixmap (0x80-0x8f), map16 (0xde), map32 (0xdf).
_MSGPACK_START = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])
# A pickle of protocol 2 to 5 starts with PROTO (0x80) and the protocol number.
_PICKLE_PROTOCOLS = frozenset(range(2, 6))
# Every byte but those that can open a MessagePack container (fixmap, fixarray, array16/32,
# map16/32): deleting these leaves at least as many bytes as the record nests levels.
_MSGPACK_NOT_CONTAINER = bytes(
    b for b in range(256) if not (0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF)
)


# What a record decodes to before untagging: msgspec checks the top level and its keys.
_Record = dict[str, t.Any]


def _no_extension(code: int, data: memoryview) -> t.NoReturn:
    raise CorruptRecord(f"the record holds a MessagePack extension of type {code}")


class SessionSerializer:
    """Encodes session dicts into record bytes and decodes them back.

    :param format: the format :meth:`dumps` writes, one of :data:`FORMATS`.
    :param compat: write as Flask-Session 0.8 does, without tags (the compatibility write
        mode, see :mod:`~flask_serverside.compat`); reading is the same either way.

    .. versionchanged:: 0.2
        Exact types (see the module), :meth:`register`, :attr:`tagger` is a
        :class:`~flask_serverside.tagging.SessionTagger`, and the ``compat`` parameter.
    """

    def __init__(self, format: str = "msgpack", *, compat: bool = False) -> None:
        if format not in FORMATS:
            raise ValueError(f"unknown serialization format {format!r}, expected one of {FORMATS}")
        #: The format records are written in.
        self.format = format
        #: Whether :meth:`dumps` writes Flask-Session 0.8's encoding (no tags).
        self.compat = compat
        #: Tags values for both formats; a :class:`~flask.json.tag.TaggedJSONSerializer`, so
        #: ``serializer.tagger.register(MyTag)`` works as with Flask's.
        self.tagger = SessionTagger()
        self._msgpack = format == "msgpack"
        self._msgpack_encoder = msgspec.msgpack.Encoder()
        self._json_encoder = msgspec.json.Encoder()
        self._msgpack_decoder = msgspec.msgpack.Decoder(_Record, ext_hook=_no_extension)
        self._json_decoder = msgspec.json.Decoder(_Record)

    def register(
        self, tag_class: type[JSONTag], force: bool = False, index: int | None = None
    ) -> None:
        """Let sessions hold another type: register a Flask :class:`~flask.json.tag.JSONTag`
        subclass, as with Flask's ``app.session_interface.serializer.register``. See
        :meth:`.SessionTagger.register`.

        .. versionadded:: 0.2
        """
        self.tagger.register(tag_class, force=force, index=index)

    def dumps(self, data: c.Mapping[str, t.Any]) -> bytes:
        """Encode a session's data.

        :raises UnserializableValue: (a ``TypeError``) naming the path and type of a value or
            key that sessions cannot hold, or of a top-level key that is not ``str``.
        :raises ValueError: when the data nests deeper than :data:`MAX_DEPTH` (a circular
            reference does) or encodes to more than :data:`MAX_RECORD_SIZE` bytes.
        """
        if self.compat:
            return flask_session_dumps(data, self.format)
        if data.__class__ is not dict:
            data = dict(data)
        tagged = self.tagger.tag_session(data, msgpack=self._msgpack)
        try:
            if self._msgpack:
                raw = self._msgpack_encoder.encode(tagged)
            else:
                raw = self._json_encoder.encode(tagged)
        except UnicodeEncodeError:
            raise UnserializableValue(
                _find_unencodable(data, "session") or "session",
                str,
                "holds a lone surrogate, which UTF-8 cannot encode",
            ) from None
        if len(raw) > MAX_RECORD_SIZE:
            raise ValueError(
                f"the session encodes to {len(raw)} bytes, more than the {MAX_RECORD_SIZE}"
                " a record may hold"
            )
        return raw

    def loads(self, raw: bytes) -> dict[str, t.Any]:
        """Decode a record written by :meth:`dumps` in either format, by flask-serverside 0.1,
        or by Flask-Session 0.7 or 0.8.

        :raises CorruptRecord: for anything else (and nothing else is raised): pickle, not a
            mapping of ``str`` keys, too large, too deep, a malformed tag, undecodable bytes.
        """
        size = len(raw)
        if not size:
            raise CorruptRecord("the record is empty")
        if size > MAX_RECORD_SIZE:
            raise CorruptRecord(f"the record is larger than {MAX_RECORD_SIZE} bytes")
        first = raw[0]
        try:
            if first == 0x7B:  # "{"
                value = self._json_decoder.decode(raw)
                containers = raw.count(b"{") + raw.count(b"[")
                msgpack = False
            elif first == 0x80 and size > 1 and raw[1] in _PICKLE_PROTOCOLS:
                raise CorruptRecord("the record is a pickle, which is never loaded")
            elif first in _MSGPACK_START:
                value = self._msgpack_decoder.decode(raw)
                containers = len(raw.translate(None, _MSGPACK_NOT_CONTAINER))
                msgpack = True
            else:
                raise CorruptRecord(f"the record starts with byte {first:#04x}, not a mapping")
            # The decoders return a dict of str keys. Only a record that may hold a tag or nest
            # too deep needs the walk, after which it must still be one.
            if containers <= MAX_DEPTH and not self.tagger.may_hold_tags(raw, msgpack=msgpack):
                return value
            value = self.tagger.untag_tree(value)
        except CorruptRecord:
            raise
        except Exception as exc:
            raise CorruptRecord(f"the record cannot be decoded: {_describe(exc)}") from exc
        if value.__class__ is not dict or not all(key.__class__ is str for key in value):
            raise CorruptRecord("the record is not a mapping of string keys")
        return value


def _describe(exc: Exception) -> str:
    """One line about a decoding error, without any of the record's content."""
    if isinstance(exc, msgspec.MsgspecError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, RecursionError):
        return "it nests too deeply"
    return type(exc).__name__


def _find_unencodable(value: t.Any, path: str) -> str | None:
    """The path of a string in ``value`` that UTF-8 cannot encode, if any (an error path)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_unencodable(key, f"{path}<key>") or _find_unencodable(
                item, path + key_segment(key)
            )
            if found:
                return found
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            found = _find_unencodable(item, f"{path}[{index}]")
            if found:
                return found
    return None
