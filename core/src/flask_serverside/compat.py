"""Flask-Session 0.8's own encoding of a session, for the compatibility write mode.

With ``SESSION_COMPAT_FLASK_SESSION = True`` (see :attr:`.StoreSettings.compat_flask_session`)
records are written so that Flask-Session 0.8 reads them as its own while some workers still
run it. Its redis, memcached, mongodb, sqlalchemy and dynamodb types store ``msgspec``'s
MessagePack (or JSON) encoding of the session dict as it is, and decode it with an untyped
decoder that does not know Flask's tags: a tagged value (``{" t": [...]}`` for a tuple) would
reach the application as a dict. So in this mode :class:`~.serialization.SessionSerializer`
writes exactly what Flask-Session's ``MsgSpecSerializer.encode`` writes, byte for byte: tuples
and sets become lists, UUIDs and naive datetimes strings, ``bytes`` stay bytes (base64 text in
JSON), aware datetimes stay datetimes (MessagePack timestamps), and a value neither can hold
(:class:`~markupsafe.Markup`, any other object) is refused, as Flask-Session refuses it.
Reading is unchanged: both encodings load.

Flask-Session's filesystem and cachelib types pickle the dict instead; their stores set
``flask_session_encoding = "pickle"`` and convert the core's own records themselves
(:mod:`~flask_serverside.legacy_pickle`).

.. versionadded:: 0.2
"""

from __future__ import annotations

import typing as t

import msgspec

if t.TYPE_CHECKING:
    import collections.abc as c

#: The values a store's optional ``flask_session_encoding`` attribute may take: how
#: Flask-Session 0.8 stores a session for that store's counterpart.
ENCODINGS = ("msgspec", "pickle")

_MSGPACK = msgspec.msgpack.Encoder()
_JSON = msgspec.json.Encoder()


def flask_session_dumps(data: c.Mapping[str, t.Any], format: str) -> bytes:
    """Encode ``data`` as Flask-Session 0.8 does in ``format`` (``"msgpack"`` or ``"json"``).

    :raises TypeError: when a value is of a type Flask-Session's encoding cannot hold.
    """
    try:
        if format == "msgpack":
            return _MSGPACK.encode(dict(data))
        return _JSON.encode(dict(data))
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(
            f"session data cannot be serialized as Flask-Session 0.8 stores it: {exc}. With"
            " SESSION_COMPAT_FLASK_SESSION on, sessions hold what Flask-Session 0.8 stores:"
            " JSON types, bytes and datetime (tuples come back as lists, UUIDs as strings);"
            " Markup and other objects cannot be stored."
        ) from exc
