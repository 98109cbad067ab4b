"""Session ids: generated with :mod:`secrets`, validated before any store sees them.

An id is ``secrets.token_urlsafe(n)``: ``n`` random bytes (``SESSION_ID_LENGTH``, 32 by
default) in URL-safe base64 without padding. A cookie value is accepted only when it has exactly
that alphabet and length, so no malformed, oversized or hostile value ever reaches a store, a
file path or a log line.
"""

from __future__ import annotations

import re
import secrets

#: The fewest random bytes an id may carry (128 bits).
MIN_ID_BYTES = 16
#: The most random bytes an id may carry.
MAX_ID_BYTES = 192

_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


def encoded_length(nbytes: int) -> int:
    """Return the length of ``secrets.token_urlsafe(nbytes)``."""
    return (4 * nbytes + 2) // 3


class SessionIds:
    """Generates and validates the session ids of one application.

    :param nbytes: random bytes per id, from :data:`MIN_ID_BYTES` to :data:`MAX_ID_BYTES`.
    """

    def __init__(self, nbytes: int = 32) -> None:
        if not MIN_ID_BYTES <= nbytes <= MAX_ID_BYTES:
            raise ValueError(f"an id carries {MIN_ID_BYTES} to {MAX_ID_BYTES} bytes, not {nbytes}")
        #: Random bytes per id.
        self.nbytes = nbytes
        #: Characters per id.
        self.length = encoded_length(nbytes)

    def generate(self) -> str:
        """Return a new random id."""
        return secrets.token_urlsafe(self.nbytes)

    def is_valid(self, value: str) -> bool:
        """Return whether ``value`` has the exact form of an id this instance generates."""
        return len(value) == self.length and _ALPHABET.fullmatch(value) is not None
