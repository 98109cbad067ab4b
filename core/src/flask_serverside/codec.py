"""Sealing records: optional authenticated encryption of session data at rest.

With ``SESSION_ENCRYPTION_KEY`` set, every record is encrypted with AES-256-GCM (from the
``cryptography`` package: ``pip install "flask-serverside[encryption]"``) before it reaches the
store, and checked and decrypted when it is read. A sealed record is::

    0xC2  key id (4 bytes)  nonce (12 bytes)  ciphertext and tag (16 bytes)

The key id is the start of the key's SHA-256, so a record names the key that sealed it. The
record's store key is authenticated with it (associated data), so a record copied under another
session's key, or changed in any byte, fails to open: it is a corrupt record (a fresh session and
a warning), never data the application trusts. ``0xC2`` never starts a MessagePack map, JSON text
or pickle.

Rotation: ``SESSION_ENCRYPTION_KEY`` may be a list; the first key seals, every key opens. Add
the new key first, keep the old one until every record sealed with it has been rewritten or has
expired (``PERMANENT_SESSION_LIFETIME``), then drop it. A key is 32 random bytes, given as bytes
or as URL-safe base64 text (``python -c "import secrets; print(secrets.token_urlsafe(32))"``).

Plain records (written before encryption was turned on) are refused, since a reader of the
store could plant one; ``SESSION_ENCRYPTION_MIGRATION = True`` accepts them for the time it
takes to switch, and they are sealed at their next write.

The conditional save and the merge work unchanged: stores keep versions outside the sealed
bytes, or compare the sealed bytes themselves.

.. versionadded:: 0.2
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import typing as t

from .exceptions import ConfigurationError
from .exceptions import CorruptRecord

if t.TYPE_CHECKING:
    import collections.abc as c

#: The first byte of a sealed record.
MAGIC = 0xC2
#: Bytes before the ciphertext: magic, key id, nonce.
HEADER_SIZE = 1 + 4 + 12
#: What the associated data starts with, before the store key.
_CONTEXT = b"flask-serverside record v1\x00"


def parse_key(value: str | bytes) -> bytes:
    """Return a 32-byte key from raw bytes or URL-safe base64 text.

    :raises ConfigurationError: when it is not 32 bytes.
    """
    raw: bytes
    if isinstance(value, str):
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raw = b""
    else:
        raw = value
    if len(raw) != 32:
        raise ConfigurationError(
            "SESSION_ENCRYPTION_KEY must be 32 random bytes, as bytes or URL-safe base64 text"
            ' (make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"),'
            " or a list of such keys, the first one encrypting."
        )
    return raw


class RecordCodec:
    """Seals and opens record bytes; with no keys, it passes them through unchanged.

    :param keys: 32-byte keys, the first one sealing; empty for no encryption.
    :param accept_plain: open records that are not sealed (while switching encryption on).
    :raises ConfigurationError: when keys are given but ``cryptography`` is not installed.
    """

    def __init__(self, keys: c.Sequence[bytes] = (), *, accept_plain: bool = False) -> None:
        #: Whether records are encrypted.
        self.encrypting = bool(keys)
        self.accept_plain = accept_plain
        self._ciphers: dict[bytes, t.Any] = {}
        self._seal_id = b""
        self._invalid: type[Exception] = Exception
        if not keys:
            return
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:
            raise ConfigurationError(
                "SESSION_ENCRYPTION_KEY needs the cryptography package: pip install"
                " 'flask-serverside[encryption]'"
            ) from None
        self._invalid = InvalidTag
        for number, key in enumerate(keys):
            key_id = hashlib.sha256(key).digest()[:4]
            self._ciphers.setdefault(key_id, AESGCM(key))
            if number == 0:
                self._seal_id = key_id

    def seal(self, store_key: str, plain: bytes) -> bytes:
        """Return the bytes to store for ``plain`` under ``store_key``."""
        if not self.encrypting:
            return plain
        nonce = os.urandom(12)
        header = bytes([MAGIC]) + self._seal_id + nonce
        cipher = self._ciphers[self._seal_id]
        return header + t.cast(bytes, cipher.encrypt(nonce, plain, _context(store_key)))

    def open(self, store_key: str, data: bytes) -> bytes:
        """Return the plain bytes of a record read under ``store_key``.

        :raises CorruptRecord: when the record is not sealed by one of the keys for this store
            key, or was changed (and is not a plain record that may be accepted).
        """
        if not self.encrypting:
            return data
        if not data or data[0] != MAGIC:
            if self.accept_plain:
                return data
            raise CorruptRecord("the record is not encrypted, and encryption is on")
        if len(data) < HEADER_SIZE + 16:
            raise CorruptRecord("the encrypted record is truncated")
        cipher = self._ciphers.get(data[1:5])
        if cipher is None:
            raise CorruptRecord("the record was encrypted with a key that is not configured")
        try:
            return t.cast(
                bytes, cipher.decrypt(data[5:HEADER_SIZE], data[HEADER_SIZE:], _context(store_key))
            )
        except self._invalid:
            raise CorruptRecord(
                "the record fails authentication: changed, or moved from another session"
            ) from None


def _context(store_key: str) -> bytes:
    return _CONTEXT + store_key.encode("ascii", "replace")
