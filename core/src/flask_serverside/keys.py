"""Store keys: what a session is stored under.

A session id is a bearer token: whoever holds it is logged in as its user. If stores kept
records under the ids themselves (as Flask-Session, Django, express-session and Spring Session
do), anyone who reads a Redis dump, a database backup, a replica or the session directory would
hold every user's token. So, by default (``SESSION_HASH_IDS = True``), a record is stored under a
keyed hash of its id instead, HMAC-SHA256 in URL-safe base64 (43 characters of the id alphabet):
the cookie carries the id, the store only the hash, and the hash cannot be turned back into an
id. The key is ``SESSION_ID_HASH_KEY`` when set, else one derived from ``SECRET_KEY``; without
either, the hash is unkeyed SHA-256, which still cannot be reversed (ids are 128 bits or more of
randomness) but is not what OWASP advises for tokens at rest, so start-up says so (INFO).

Rotation and migration (``SESSION_HASH_IDS_MIGRATION``, on by default): an id the store does
not know under its current key is looked up under the keys of ``SESSION_ID_HASH_KEY_FALLBACKS``
(or ``SECRET_KEY_FALLBACKS``) and under the raw id (records written before hashing: this
project's 0.1, or Flask-Session's), and a record found there is moved to its current key by the
first request that uses the session. The cost is one extra lookup per older key, only for ids
the store does not know under the current key; turn it off once every older record has expired
(``PERMANENT_SESSION_LIFETIME`` after the switch).

Flask-Session's compatibility write mode (``SESSION_COMPAT_FLASK_SESSION``) writes under the
raw ids, since Flask-Session finds records by id; with ``SESSION_HASH_IDS`` and migration on, it
looks records up under their hashes too (written while the mode was off) and moves them to
their ids, the other way round.

.. versionadded:: 0.2
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import typing as t

if t.TYPE_CHECKING:
    import collections.abc as c

#: What keys derived from ``SECRET_KEY`` are derived with, so they differ from every other use
#: of the secret key.
DERIVATION_SALT = b"flask-serverside store key"


def _as_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def derive_key(secret: str | bytes) -> bytes:
    """Return the hashing key derived from an application secret key."""
    return hmac.digest(_as_bytes(secret), DERIVATION_SALT, "sha256")


#: Maps standard base64 to the URL-safe alphabet.
_URLSAFE = bytes.maketrans(b"+/", b"-_")
#: SHA-256's block size: HMAC pads (or hashes) its key to this.
_BLOCK = 64


class _Hasher:
    """HMAC-SHA256 with one key (or plain SHA-256 without one), in URL-safe base64.

    The hash states after the padded key's inner and outer blocks are computed once, so a
    call costs two copies, two updates and two digests of :mod:`hashlib` (RFC 2104, the
    same result as :func:`hmac.new`), and no Python object of :mod:`hmac`.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes | None) -> None:
        self._outer: t.Any = None
        if key is None:
            self._inner = hashlib.sha256()
            return
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def __call__(self, sid: str) -> str:
        inner = self._inner.copy()
        inner.update(sid.encode("ascii"))
        digest = inner.digest()
        if self._outer is not None:
            outer = self._outer.copy()
            outer.update(digest)
            digest = outer.digest()
        return binascii.b2a_base64(digest, newline=False)[:43].translate(_URLSAFE).decode("ascii")


class StoreKeys:
    """Maps session ids to the keys their records are stored under.

    :param hashing: store under keyed hashes (``True``) or under the ids (``False``).
    :param keys: the hashing keys, current first, then older ones for lookups only; empty for
        an unkeyed hash.
    :param migration: also look records up under older keys and raw ids.
    :param compat: the compatibility write mode: records are written under the raw ids, and
        looked up under their hashes too when ``hashing`` and ``migration`` are on.

    .. versionchanged:: 0.2
        The ``compat`` parameter.
    """

    def __init__(
        self,
        *,
        hashing: bool,
        keys: c.Sequence[bytes] = (),
        migration: bool = True,
        compat: bool = False,
    ) -> None:
        #: Whether keys are hashes of the ids.
        self.hashing = hashing and not compat
        #: Whether older keys and raw ids are looked up too.
        self.migration = migration
        #: Whether records are written under raw ids for Flask-Session, hashes looked up.
        self.compat = compat and hashing
        hashers = [_Hasher(key) for key in keys] or [_Hasher(None)]
        self._current = hashers[0]
        self._older = hashers[1:]

    def key(self, sid: str) -> str:
        """Return the key the record of ``sid`` is written under."""
        return self._current(sid) if self.hashing else sid

    def older_keys(self, sid: str) -> list[str]:
        """Return the keys a record of ``sid`` may still be found under, oldest scheme last:
        its hashes under older keys, then the raw id (in the compatibility write mode: its
        hashes under every key). Empty without hashing or migration."""
        if self.compat and self.migration:
            return [self._current(sid), *(hasher(sid) for hasher in self._older)]
        if not self.hashing or not self.migration:
            return []
        return [*(hasher(sid) for hasher in self._older), sid]
