"""Session data to bytes and back, without pickle.

Values are tagged with Flask's own :class:`~flask.json.tag.TaggedJSONSerializer` tags, so
everything Flask's cookie session round-trips does here too: ``tuple``, ``bytes``,
:class:`~markupsafe.Markup`, :class:`~uuid.UUID`, :class:`~datetime.datetime` and dicts whose
keys look like tags. Flash messages therefore keep their ``(category, Markup)`` tuples.

The tagged value is then encoded as MessagePack (``SESSION_SERIALIZATION_FORMAT = "msgpack"``,
the default, as in Flask-Session) or JSON (``"json"``) with :mod:`msgspec`. Reading does not
depend on the setting: the first byte tells the format apart, so records written by
Flask-Session 0.7/0.8 in either of its formats load too, and changing the setting needs no
migration. Pickle records (Flask-Session before 0.7) are refused, never unpickled.
"""

from __future__ import annotations

import json
import typing as t

import msgspec
from flask.json.tag import TaggedJSONSerializer

from .exceptions import CorruptRecord

if t.TYPE_CHECKING:
    import collections.abc as c

#: The names ``SESSION_SERIALIZATION_FORMAT`` accepts.
FORMATS = ("msgpack", "json")

# Values the tagger leaves alone; exact types, so Markup (a str subclass) is still tagged.
_PLAIN_TYPES = frozenset([str, int, float, bool, type(None)])
_PLAIN_OR_LIST = _PLAIN_TYPES | {list}
_JSON_START = frozenset(b"{")
# A MessagePack map: fixmap (0x80-0x8f), map16 (0xde), map32 (0xdf).
_MSGPACK_START = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])
# A pickle of protocol 2 to 5 starts with PROTO (0x80) and the protocol number.
_PICKLE_PROTOCOLS = frozenset(range(2, 6))


def _plain(value: t.Any) -> bool:
    """Whether the tagger would leave ``value`` as it is: a JSON scalar, or a list of them."""
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return True
    return kind is list and all(type(item) in _PLAIN_TYPES for item in value)


def _all_plain(data: c.Mapping[str, t.Any]) -> bool:
    """Whether the tagger would leave every value of ``data`` as it is (see :func:`_plain`)."""
    kinds = set(map(type, data.values()))
    if kinds <= _PLAIN_TYPES:
        return True
    if not kinds <= _PLAIN_OR_LIST:
        return False
    return all(
        set(map(type, value)) <= _PLAIN_TYPES for value in data.values() if type(value) is list
    )


class SessionSerializer:
    """Encodes session dicts into record bytes and decodes them back.

    :param format: the format :meth:`dumps` writes, one of :data:`FORMATS`.
    """

    def __init__(self, format: str = "msgpack") -> None:
        if format not in FORMATS:
            raise ValueError(f"unknown serialization format {format!r}, expected one of {FORMATS}")
        #: The format records are written in.
        self.format = format
        #: Flask's tagger; register extra :class:`~flask.json.tag.JSONTag` types on it.
        self.tagger = TaggedJSONSerializer()
        self._msgpack_encoder = msgspec.msgpack.Encoder()
        self._json_encoder = msgspec.json.Encoder()

    def dumps(self, data: c.Mapping[str, t.Any]) -> bytes:
        """Encode a session's data.

        :raises TypeError: when a value is of a type sessions cannot hold.
        """
        if len(data) == 1:
            # Flask's tagger protects a lone key that looks like a tag (" t", " di", ...).
            tagged = self.tagger.tag(dict(data))
        else:
            tagged = self._tag_values(data)
        try:
            if self.format == "msgpack":
                return self._msgpack_encoder.encode(tagged)
            return self._json_encoder.encode(tagged)
        except (TypeError, msgspec.EncodeError) as exc:
            raise TypeError(
                f"session data cannot be serialized: {exc}. Sessions hold JSON types plus"
                " tuple, bytes, Markup, UUID and datetime."
            ) from exc

    def loads(self, raw: bytes) -> dict[str, t.Any]:
        """Decode a record written by :meth:`dumps` in either format, or by Flask-Session 0.7
        or 0.8.

        :raises CorruptRecord: when ``raw`` is none of those, is pickle, or is not a mapping.
        """
        if not raw:
            raise CorruptRecord("the record is empty")
        first = raw[0]
        try:
            if first in _JSON_START:
                value = json.loads(raw, object_hook=self.tagger.untag)
            elif first == 0x80 and len(raw) > 1 and raw[1] in _PICKLE_PROTOCOLS:
                raise CorruptRecord("the record is a pickle, which is never loaded")
            elif first in _MSGPACK_START:
                value = msgspec.msgpack.decode(raw)
                if type(value) is not dict or len(value) == 1 or not _all_plain(value):
                    # Tagged values are one-key maps: only such a record, or one holding
                    # containers beyond lists of scalars, needs the walk.
                    value = self._untag(value)
            else:
                raise CorruptRecord(f"the record starts with byte {first:#04x}, not a mapping")
        except (ValueError, TypeError, KeyError, msgspec.DecodeError) as exc:
            raise CorruptRecord(f"the record cannot be decoded: {exc}") from exc
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise CorruptRecord("the record is not a mapping of string keys")
        return value

    def _tag_values(self, data: c.Mapping[str, t.Any]) -> c.Mapping[str, t.Any]:
        """Tag the values of a session of several keys: the data itself when every value is
        one the tagger leaves alone (most sessions), else a tagged copy."""
        if _all_plain(data):
            return data
        tag = self.tagger.tag
        return {key: value if _plain(value) else tag(value) for key, value in data.items()}

    def _untag(self, value: t.Any) -> t.Any:
        """Undo :meth:`TaggedJSONSerializer.tag` on a decoded structure, innermost first."""
        if isinstance(value, dict):
            return self.tagger.untag({key: self._untag(item) for key, item in value.items()})
        if isinstance(value, list):
            return [self._untag(item) for item in value]
        return value
