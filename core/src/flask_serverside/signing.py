"""Signed session ids (``SESSION_USE_SIGNER``).

Ids are random and long enough not to need a signature; signing is there for applications that
want one anyway. The signature is an HMAC-SHA256 from :mod:`itsdangerous` over the id, keyed by
``SECRET_KEY`` and, for verification only, by ``SECRET_KEY_FALLBACKS``, so keys can be rotated
without logging everyone out. Cookies signed by Flask-Session 0.8 (HMAC-SHA1, salt
``flask-session``) are accepted too, and signed again with the current signature by the next
response that saves or keeps the session.
In the compatibility write mode (``SESSION_COMPAT_FLASK_SESSION``) cookies are signed as
Flask-Session 0.8 signs them, so that its workers accept them; both signatures are accepted in
either mode.
"""

from __future__ import annotations

import hashlib
import typing as t

from itsdangerous import BadSignature
from itsdangerous import Signer

if t.TYPE_CHECKING:
    import collections.abc as c

#: The salt of our signatures, distinct from Flask's cookie session (``cookie-session``).
SALT = "flask-serverside"
#: The salt Flask-Session 0.8 signs with, accepted for verification only.
LEGACY_SALT = "flask-session"
#: How many characters a signature adds to an id, with its separator: ``.`` + base64 of 32 bytes.
SIGNATURE_LENGTH = 44


class SidSigner:
    """Signs session ids and checks signed cookie values.

    :param keys: signing keys, oldest first; the last one signs, all of them verify.
    :param legacy: sign as Flask-Session 0.8 does (HMAC-SHA1, its salt), for the compatibility
        write mode.

    .. versionchanged:: 0.2
        The ``legacy`` parameter.
    """

    def __init__(self, keys: c.Sequence[str | bytes], *, legacy: bool = False) -> None:
        if not keys or not all(keys):
            raise ValueError("signing needs a non-empty SECRET_KEY")
        key_list = [key.encode() if isinstance(key, str) else key for key in keys]
        self._signer = Signer(
            key_list, salt=SALT, key_derivation="hmac", digest_method=hashlib.sha256
        )
        self._legacy = Signer(key_list, salt=LEGACY_SALT, key_derivation="hmac")
        #: Whether :meth:`sign` signs as Flask-Session 0.8 does.
        self.legacy = legacy

    def sign(self, sid: str) -> str:
        """Return the cookie value for ``sid``."""
        signer = self._legacy if self.legacy else self._signer
        return signer.sign(sid).decode("ascii")

    def unsign(self, value: str) -> str | None:
        """Return the id inside a signed cookie value, or ``None`` when the signature is not
        one of ours (nor a Flask-Session 0.8 one) under any of the keys."""
        for signer in (self._signer, self._legacy):
            try:
                return signer.unsign(value).decode("ascii")
            except (BadSignature, UnicodeDecodeError):
                continue
        return None
