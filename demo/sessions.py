"""What the demo shows about sessions, composed from flask-serverside's public API only:
``get_state(app).store`` (the store behind its fault boundary, addressed by store keys: keyed
hashes of the ids), ``.decode`` (a record to its data), ``.writer.user_id`` (the user a
session's data names) and ``.config``.

Session ids are bearer tokens: a page shows at most the first six characters of one, and names
another session (a device to log out) by a one-way handle, never by its id.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import typing as t
from pathlib import Path

from flask_serverside import Capability
from flask_serverside import CorruptRecord

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask_serverside import Record
    from flask_serverside import SessionState

#: Characters of an id a page may show.
SHOWN = 6


def short(sid: str) -> str:
    """An id as a page may show it: its first characters and an ellipsis."""
    return f"{sid[:SHOWN]}…"


def handle(sid: str) -> str:
    """A stable name for a session that does not reveal its id (a one-way hash)."""
    return hashlib.sha256(sid.encode()).hexdigest()[:16]


def secret_key(instance: Path) -> str:
    """Return the secret key kept in ``instance/secret_key``, creating it once (mode 0600),
    so signed session cookies stay valid across restarts."""
    path = instance / "secret_key"
    instance.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(secrets.token_hex(32))
    return path.read_text(encoding="ascii").strip()


def capabilities(state: SessionState) -> list[str]:
    """The names of the optional operations the store declares."""
    caps = state.store.capabilities
    return [cap.name.lower() for cap in Capability if cap.value and cap in caps and cap.name]


def describe(state: SessionState, key: str, record: Record) -> dict[str, t.Any]:
    """The record under store key ``key`` as the store holds it: key, format, size, decoded
    data."""
    sid = key
    try:
        data: dict[str, t.Any] | None = state.decode(key, record)
    except CorruptRecord:
        data = None
    return {
        "key": state.config.key_prefix + short(sid),
        "format": "JSON" if record.data[:1] == b"{" else "MessagePack",
        "size": len(record.data),
        "ttl": state.config.ttl,
        "sliding": state.config.refresh_each_request,
        "json": json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False),
    }


def devices(state: SessionState, user_id: str, current: str | None) -> list[dict[str, t.Any]]:
    """The live sessions of ``user_id``, newest login first, from the store's user index.

    Each candidate the index returns is loaded and its user checked, as
    :func:`flask_serverside.revoke_user_sessions` does.
    """
    found = []
    for sid, data in _sessions_of(state, user_id):
        since = data.get("since")
        found.append(
            {
                "handle": handle(sid),
                "key": state.config.key_prefix + short(sid),
                "device": data.get("device", "unknown device"),
                "since": since if isinstance(since, datetime.datetime) else None,
                "current": sid == current,
            }
        )
    epoch = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    found.sort(key=lambda device: device["since"] or epoch, reverse=True)
    return found


def find_device(state: SessionState, user_id: str, wanted: str) -> str | None:
    """Return the id of the session of ``user_id`` whose :func:`handle` is ``wanted``."""
    for sid, _data in _sessions_of(state, user_id):
        if secrets.compare_digest(handle(sid), wanted):
            return sid
    return None


def has_user_index(state: SessionState) -> bool:
    """Whether the store can list a user's sessions."""
    return Capability.USER_INDEX in state.store.capabilities


def _sessions_of(state: SessionState, user_id: str) -> c.Iterator[tuple[str, dict[str, t.Any]]]:
    store = t.cast(t.Any, state.store)
    for sid in list(store.user_sids(user_id)):
        record = store.load(sid)
        if record is None:
            continue
        try:
            data = state.decode(sid, record)
        except CorruptRecord:
            continue
        if state.writer.user_id(data) == user_id:
            yield sid, data


def device_name(user_agent: str) -> str:
    """A short "browser on system" label from a User-Agent header."""
    browsers = [
        ("HeadlessChrome", "Headless Chrome"),
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    systems = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    browser = next((name for mark, name in browsers if mark in user_agent), "a browser")
    system = next((name for mark, name in systems if mark in user_agent), None)
    return f"{browser} on {system}" if system else browser
