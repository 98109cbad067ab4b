"""The short cuts of the request path give exactly what the general code gives.

Each fast path (reading the session cookie, hashing ids into store keys, skipping the tagger
for plain values) is checked against the reference it replaces, on many generated inputs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

import pytest
from flask import Flask
from flask import Request

from flask_serverside import Session
from flask_serverside import get_state
from flask_serverside.interface import cookie_value
from flask_serverside.keys import StoreKeys

#: Pieces of Cookie headers, the awkward ones included: blanks, tabs, quotes, escapes,
#: repeated names, names that only start like the cookie's, non-ASCII text.
PIECES = [
    "session",
    "session ",
    "sess",
    "a",
    "=",
    ";",
    "; ",
    " ",
    "\t",
    '"',
    "\\",
    "x",
    "Yz_-0",
    "ab c",
    "é",
    "session=",
    "=session",
]


def test_the_session_cookie_is_read_as_werkzeug_reads_it():
    rng = random.Random(20)
    for _ in range(20_000):
        header = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
        request = Request({"HTTP_COOKIE": header})
        for name in ("session", "a", "my session"):
            assert cookie_value(request, name) == request.cookies.get(name), (header, name)


def test_a_request_without_a_cookie_header_has_no_session_cookie():
    assert cookie_value(Request({}), "session") is None
    assert cookie_value(Request({"HTTP_COOKIE": ""}), "session") is None


def test_opening_a_session_parses_no_other_cookie():
    """A request whose view never reads its session does not pay for Werkzeug's parse of
    every cookie (the dict behind ``request.cookies``) just to find the session's."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", SESSION_TYPE="memory")
    Session(app)
    sid = get_state(app).ids.generate()
    with app.test_request_context("/", headers={"Cookie": f"theme=dark; session={sid}"}) as ctx:
        session = ctx._session  # ctx.session would count as an access, and load it
        assert session.sid == sid
        assert not session.loaded
        assert "cookies" not in ctx.request.__dict__  # Werkzeug caches the parse there


@pytest.mark.parametrize("size", [0, 1, 16, 32, 63, 64, 65, 100, 130])
def test_store_keys_are_hmac_sha256_in_urlsafe_base64(size):
    rng = random.Random(size)
    key = bytes(rng.randrange(256) for _ in range(size))
    keys = StoreKeys(hashing=True, keys=[key])
    for _ in range(50):
        sid = base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")
        digest = hmac.new(key, sid.encode(), hashlib.sha256).digest()
        assert keys.key(sid) == base64.urlsafe_b64encode(digest)[:43].decode()


def test_unkeyed_store_keys_are_sha256():
    keys = StoreKeys(hashing=True, keys=[])
    sid = "B" * 43
    expected = base64.urlsafe_b64encode(hashlib.sha256(sid.encode()).digest())[:43].decode()
    assert keys.key(sid) == expected
