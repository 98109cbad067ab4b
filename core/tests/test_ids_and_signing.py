"""Session ids and their signatures."""

from __future__ import annotations

import hashlib

import pytest
from itsdangerous import Signer

from flask_serverside.sid import SessionIds
from flask_serverside.signing import SidSigner


@pytest.mark.parametrize("nbytes", [16, 32, 48, 192])
def test_generated_ids_are_valid_and_unique(nbytes):
    ids = SessionIds(nbytes)
    generated = {ids.generate() for _ in range(200)}
    assert len(generated) == 200
    assert all(ids.is_valid(sid) and len(sid) == ids.length for sid in generated)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "short",
        "a" * 42,
        "a" * 44,
        "a" * 42 + "=",
        "a" * 42 + ".",
        "../" + "a" * 40,
        "a" * 42 + "\u00e9",
        "a" * 41 + "\x00a",
        "a" * 42 + " ",
    ],
)
def test_malformed_ids_are_rejected(value):
    assert not SessionIds(32).is_valid(value)


@pytest.mark.parametrize("nbytes", [0, 8, 15, 193])
def test_id_length_bounds(nbytes):
    with pytest.raises(ValueError):
        SessionIds(nbytes)


def test_signed_ids_round_trip_and_reject_tampering():
    signer = SidSigner(["secret"])
    sid = SessionIds().generate()
    value = signer.sign(sid)
    assert value.startswith(sid + ".")
    assert signer.unsign(value) == sid
    signature_start = len(sid) + 1
    flipped = "A" if value[signature_start] != "A" else "B"  # a whole 6-bit character
    assert signer.unsign(value[:signature_start] + flipped + value[signature_start + 1 :]) is None
    assert signer.unsign(sid) is None
    assert SidSigner(["other secret"]).unsign(value) is None


def test_fallback_keys_verify_but_the_newest_signs():
    old = SidSigner(["old key"])
    rotated = SidSigner(["old key", "new key"])
    sid = SessionIds().generate()
    assert rotated.unsign(old.sign(sid)) == sid
    assert SidSigner(["new key"]).unsign(rotated.sign(sid)) == sid
    assert old.unsign(rotated.sign(sid)) is None


def test_signature_is_hmac_sha256():
    signature = SidSigner(["k"]).sign("x").split(".", 1)[1]
    assert len(signature) == 43  # 32 bytes, URL-safe base64 without padding
    assert hashlib.sha256().digest_size == 32


def test_flask_session_signed_cookies_are_accepted():
    # Flask-Session 0.8 signs with this exact signer (see its base.py _get_signer).
    legacy = Signer("secret", salt="flask-session", key_derivation="hmac")
    sid = SessionIds().generate()
    assert SidSigner(["secret"]).unsign(legacy.sign(sid).decode()) == sid


def test_signing_needs_a_key():
    with pytest.raises(ValueError):
        SidSigner([])
