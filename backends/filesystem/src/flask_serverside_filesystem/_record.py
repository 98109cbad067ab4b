"""A record file: a fixed header (magic ``FSSN``, format 1, flags, id length, a random 16-byte
version token, user id length), then the session id, the user id and the data. No pickle."""

from __future__ import annotations

import secrets
import struct
import typing as t

#: magic, format, flags, session id length, version token, user id length
HEADER = struct.Struct("<4sBBH16sI")
MAGIC = b"FSSN"
FORMAT = 1
#: The flag of a record saved for a user.
HAS_USER = 1
#: Bytes read to find the header, id and user id of a record; a longer user id needs more.
HEAD_SIZE = 4096


class Meta(t.NamedTuple):
    """What a record says besides its data."""

    #: The version token, new on every write.
    token: bytes
    sid: str
    user_id: str | None
    #: Where the data starts.
    end: int


def encode(sid: str, user_id: str | None, data: bytes) -> bytes:
    """Return the bytes of a record of ``sid``, with a new version token."""
    user = b"" if user_id is None else user_id.encode("utf-8", "surrogatepass")
    flags = 0 if user_id is None else HAS_USER
    header = HEADER.pack(MAGIC, FORMAT, flags, len(sid), secrets.token_bytes(16), len(user))
    return b"".join((header, sid.encode(), user, data))


def parse(buffer: bytes) -> Meta | None:
    """Decode the header, session id and user id at the start of ``buffer``; ``None`` when
    they are not well formed or ``buffer`` stops before their end."""
    if len(buffer) < HEADER.size:
        return None
    magic, version, flags, sid_length, token, user_length = HEADER.unpack_from(buffer)
    if magic != MAGIC or version != FORMAT:
        return None
    start = HEADER.size + sid_length
    end = start + user_length
    if len(buffer) < end:
        return None
    try:
        sid = buffer[HEADER.size : start].decode("ascii")
        user = buffer[start:end].decode("utf-8", "surrogatepass") if flags & HAS_USER else None
    except UnicodeDecodeError:
        return None
    return Meta(token, sid, user, end)
