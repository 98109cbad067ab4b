"""The ``flask session`` command group, and Flask-Session's ``flask session_cleanup``.

=========================  ==============================================  ===================
command                    does                                            store needs
=========================  ==============================================  ===================
``stores``                 list installed stores (store names and URL      (nothing)
                           schemes apart), and what start-up would refuse
``check``                  connect once: the store, its capabilities and   (nothing)
                           the time of one round trip
``count``                  count live sessions                             ``ENUMERATE``
``list``                   print live session ids (shortened; ``--full``)  ``ENUMERATE``
``purge``                  delete expired records                          ``PURGE``
``show SID``               print one session as JSON (``--raw``: the       (nothing)
                           record's bytes)
``delete SID``             delete one session                              (nothing)
``delete-user USER_ID``    delete every session of one user                ``USER_INDEX``
``rewrite``                rewrite every session as records are written    ``ENUMERATE``
                           now (with ``SESSION_COMPAT_FLASK_SESSION``:
                           as Flask-Session 0.8 reads them)
=========================  ==============================================  ===================

``flask session_cleanup``, the command Flask-Session documents for cron, is ``flask session
purge`` under that name. Both groups are registered through the ``flask.commands`` entry point.

``SID`` is the id that ``flask session list --full`` prints. The session cookie's value is
accepted too (for signed ids, its signature is checked with the application's keys), and so is
the store key (``SESSION_KEY_PREFIX`` and the id); the command says which it took.

A store that fails (down, timing out) makes any command print one line saying what failed and
exit with status 1, never a traceback.

.. versionchanged:: 0.2
    ``check``, ``session_cleanup``, ``list --full``, ``show --raw``, ``rewrite``; ids from
    cookies and store keys; ``delete`` of a missing session fails; store faults are one line.
"""

from __future__ import annotations

import base64
import collections.abc as c
import contextlib
import datetime
import json
import re
import time
import typing as t
import uuid

import click
from flask.cli import AppGroup
from flask.cli import with_appcontext

from .capabilities import capability_names
from .clients import MAX_MESSAGE
from .exceptions import ConfigurationError
from .exceptions import CorruptRecord
from .exceptions import SessionError
from .registry import installed_stores
from .state import get_state
from .store import Capability

if t.TYPE_CHECKING:
    from .registry import StoreInfo
    from .state import SessionState
    from .store import Enumerable
    from .store import Purgeable
    from .store import Record

#: The form of a store key with SESSION_HASH_IDS: an HMAC-SHA256 in URL-safe base64.
_HASHED_KEY = re.compile(r"[A-Za-z0-9_-]{43}")

session_cli = AppGroup("session", help="Inspect and maintain server-side sessions.")

# Session ids may start with "-": take such an argument as the id, not as an unknown option.
_TAKES_DASHED_IDS = {"ignore_unknown_options": True}


def _state() -> SessionState:
    try:
        return get_state()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


def _short(sid: str) -> str:
    """An id as logs show it: enough to tell ids apart, not enough to use one."""
    return f"{sid[:6]}…"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def _store_faults(state: SessionState, doing: str) -> c.Iterator[None]:
    """Turn a store's failure into one line and exit status 1, never a traceback."""
    try:
        yield
    except ConfigurationError as exc:  # not a fault: the store cannot do this at all
        raise click.ClickException(str(exc)) from None
    except SessionError as exc:
        message = _first_line(exc)
        cause = exc.__cause__
        if cause is not None and str(cause) and _first_line(cause) not in message:
            message += f" ({type(cause).__name__}: {_first_line(cause)})"
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "…"
        raise click.ClickException(
            f"could not {doing}: the {state.store_name!r} session store failed: {message}"
        ) from None


def _require(state: SessionState, capability: Capability, doing: str) -> None:
    if capability not in state.store.capabilities:
        name = (capability.name or "").lower()
        raise click.ClickException(
            f"the {state.store_name!r} session store cannot {doing} (it lacks the {name}"
            " capability)"
        )


def _candidates(state: SessionState, value: str) -> list[tuple[str, str]]:
    """The store keys ``value`` may stand for, each with what it was taken as: a session id
    (the id itself or the session cookie's value, signed or not: its keys, current and older),
    or a store key (with or without the key prefix, as `flask session list` prints them).

    :raises click.ClickException: when ``value`` is none of those, explaining what to pass.
    """
    ids, signer, prefix = state.ids, state.signer(), state.config.key_prefix
    sid = None
    if signer is not None:
        unsigned = signer.unsign(value)
        if unsigned is not None and ids.is_valid(unsigned):
            sid = unsigned
            click.echo(f"checked the cookie's signature: session {_short(sid)}", err=True)
    if sid is None and ids.is_valid(value):
        sid = value
    found: dict[str, str] = {}
    if sid is not None:
        keys = state.keys()
        for key in (keys.key(sid), *keys.older_keys(sid)):
            found.setdefault(key, "session id")
    bare = value[len(prefix) :] if prefix and value.startswith(prefix) else value
    if _HASHED_KEY.fullmatch(bare) if state.config.hash_ids else ids.is_valid(bare):
        found[bare] = "store key"
    if found:
        return list(found.items())
    expected = (
        f"a session id ({ids.length} characters of [A-Za-z0-9_-]), the session cookie's value,"
        " or a store key as `flask session list --full` prints it"
    )
    signed_looking = ids.is_valid(value.rpartition(".")[0])
    if signed_looking and signer is None:
        reason = (
            "it looks like a signed cookie value, but this application does not sign session"
            " ids (SESSION_USE_SIGNER is off): the id is the part before the '.'"
        )
    elif signed_looking:
        reason = (
            "its signature does not match this application's SECRET_KEY (nor SECRET_KEY_FALLBACKS)"
        )
    elif value.endswith("…"):
        reason = "it is shortened, as `flask session list` prints keys without --full"
    elif ids.is_valid(value.rpartition(":")[2]):
        reason = f"it is a store key, but not with this application's key prefix {prefix!r}"
    else:
        reason = f"it is not {ids.length} characters of [A-Za-z0-9_-]"
    raise click.ClickException(f"that is not a session id: {reason}. Pass {expected}.")


def _find(state: SessionState, value: str) -> tuple[str, Record | None]:
    """Load the record ``value`` names (see :func:`_candidates`); say on stderr what it was
    taken as. Returns the store key tried first and ``None`` when there is no such record."""
    candidates = _candidates(state, value)
    for key, taken_as in candidates:
        record = state.store.load(key)
        if record is not None:
            click.echo(f"took it as a {taken_as}: store key {_short(key)}", err=True)
            return key, record
    return candidates[0][0], None


def _jsonable(value: object) -> object:
    """Return ``value`` (as the serializer decodes it) in JSON's types: bytes as base64,
    tuples as lists, datetimes in ISO 8601, UUIDs and markup as strings."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        return str(value)  # Markup is a str subclass: its text
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return repr(value)


@session_cli.command("stores", with_appcontext=False)
def stores_command() -> None:
    """List the installed session stores, and the names start-up would refuse."""
    infos = installed_stores()
    rows = [
        (info, f"{info.distribution} {info.version}" if info.distribution else "(in code)")
        for info in infos
    ]
    name_width = max((len(info.name) for info in infos), default=0) + 2
    where_width = max((len(where) for _, where in rows), default=0) + 2
    indent = " " * name_width
    for info, where in rows:
        click.echo(f"{info.name:<{name_width}}{where:<{where_width}}{info.target}")
        if info.aliases:
            click.echo(f"{indent}also named: {', '.join(info.aliases)}")
        if info.url_schemes:
            schemes = ", ".join(f"{scheme}://" for scheme in info.url_schemes)
            click.echo(f"{indent}URL schemes: {schemes}")
        for line in _problems(info):
            click.echo(f"{indent}BROKEN: {line}")
        if len(info.errors) < len(info.names):
            click.echo(f"{indent}capabilities: {', '.join(info.capabilities) or 'none'}")
    broken = sum(1 for info in infos if info.errors)
    if broken:
        click.echo(
            f"{broken} of {len(infos)} stores have names that Session(app) refuses: each BROKEN"
            " line is the error it raises."
        )


def _problems(info: StoreInfo) -> list[str]:
    """The start-up error of each of the store's names, once per reason."""
    by_reason: dict[str, list[str]] = {}
    for name, error in info.errors.items():
        by_reason.setdefault(error.reason, []).append(name)
    lines = []
    for names in by_reason.values():
        line = str(info.errors[names[0]])
        if len(names) > 1:
            line += f" (the same for: {', '.join(names[1:])})"
        lines.append(line)
    return lines


#: Loads ``check`` times after the first (which includes connecting).
CHECK_LOADS = 5


@session_cli.command("check")
def check_command() -> None:
    """Reach the store: print it, its capabilities and the time of a round trip (loads of a
    random id), or one line saying what failed (exit status 1).

    Start-up never connects (an application may start before its store); run this at deploy
    time to find a wrong host, port or password at once.
    """
    state = _state()
    store = state.store
    wrapped = getattr(store, "wrapped", store)
    kind = f"{type(wrapped).__module__}.{type(wrapped).__qualname__}"
    sid = state.ids.generate()
    timings = []
    with _store_faults(state, "reach the session store"):
        for _ in range(1 + CHECK_LOADS):
            started = time.perf_counter()
            record = store.load(sid)
            timings.append((time.perf_counter() - started) * 1000)
            if record is not None:
                raise click.ClickException(
                    f"the {state.store_name!r} session store returned a record for a new random"
                    " id: it does not keep records apart by id"
                )
    first, rest = timings[0], sorted(timings[1:])
    click.echo(f"store: {state.store_name} ({kind})")
    click.echo(f"capabilities: {', '.join(capability_names(store.capabilities)) or 'none'}")
    click.echo(
        f"round trip: {first:.1f} ms for the first load (connecting included), then"
        f" {rest[len(rest) // 2]:.1f} ms (median of {len(rest)}); a load of a random id"
    )
    click.echo("ok")


@session_cli.command("count")
def count_command() -> None:
    """Print how many live sessions the store holds."""
    state = _state()
    _require(state, Capability.ENUMERATE, "count sessions")
    with _store_faults(state, "count sessions"):
        click.echo(t.cast("Enumerable", state.store).count())


@session_cli.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Print at most N ids.")
@click.option(
    "--full",
    is_flag=True,
    help="Print whole keys (without SESSION_HASH_IDS they are the ids, bearer tokens).",
)
def list_command(limit: int | None, full: bool) -> None:
    """Print the store keys of live sessions, shortened unless --full."""
    state = _state()
    _require(state, Capability.ENUMERATE, "list sessions")
    with _store_faults(state, "list sessions"):
        sids = t.cast("Enumerable", state.store).iter_sids()
        for number, sid in enumerate(sids, start=1):
            click.echo(sid if full else _short(sid))
            if limit is not None and number >= limit:
                break


def _purge() -> None:
    state = _state()
    if Capability.PURGE not in state.store.capabilities:
        click.echo(f"the {state.store_name!r} store expires sessions itself; nothing to purge")
        return
    with _store_faults(state, "purge expired sessions"):
        removed = t.cast("Purgeable", state.store).purge_expired()
    click.echo(f"purged {removed} expired sessions")


@session_cli.command("purge")
def purge_command() -> None:
    """Delete expired session records (for stores without native expiry)."""
    _purge()


@click.command("session_cleanup")
@with_appcontext
def session_cleanup_command() -> None:
    """Delete expired session records: Flask-Session's cron command, the same as
    `flask session purge`."""
    _purge()


@session_cli.command("show", context_settings=_TAKES_DASHED_IDS)
@click.argument("sid")
@click.option("--raw", is_flag=True, help="Write the record's bytes as stored, undecoded.")
def show_command(sid: str, raw: bool) -> None:
    """Print one session's data as JSON (bytes in base64)."""
    state = _state()
    with _store_faults(state, "load the session"):
        key, record = _find(state, sid)
    if record is None:
        raise click.ClickException("no such session (or it has expired)")
    if raw:
        click.echo(record.data, nl=False)  # bytes go to the binary stream, unchanged
        return
    try:
        data = state.decode(key, record)
    except CorruptRecord as exc:
        raise click.ClickException(
            f"the record is corrupt: {exc} (--raw writes its bytes as stored)"
        ) from None
    click.echo(json.dumps(_jsonable(data), indent=2, sort_keys=True, ensure_ascii=False))


@session_cli.command("delete", context_settings=_TAKES_DASHED_IDS)
@click.argument("sid")
def delete_command(sid: str) -> None:
    """Delete one session."""
    state = _state()
    with _store_faults(state, "delete the session"):
        key, record = _find(state, sid)
        if record is None:
            raise click.ClickException("no such session (or it has expired): nothing deleted")
        state.store.delete(key)
    click.echo(f"deleted session {_short(key)}")


@session_cli.command("delete-user", context_settings=_TAKES_DASHED_IDS)
@click.argument("user_id")
def delete_user_command(user_id: str) -> None:
    """Delete every session of one user ("log out everywhere")."""
    state = _state()
    with _store_faults(state, "delete the user's sessions"):
        deleted = state.revoke_user(user_id)
    click.echo(f"deleted {deleted} sessions of that user")


@session_cli.command("rewrite")
def rewrite_command() -> None:
    """Rewrite every live session as records are written now: with
    SESSION_COMPAT_FLASK_SESSION on, in Flask-Session 0.8's layout and encoding, so that a
    rollback to Flask-Session finds every session readable. Each rewritten session gets a whole
    PERMANENT_SESSION_LIFETIME to live. A record stays under its store key: one under a hashed
    key (SESSION_HASH_IDS, while the mode was off) reaches its id, where Flask-Session looks,
    only with its user's next request."""
    state = _state()
    _require(state, Capability.ENUMERATE, "list the sessions to rewrite")
    with _store_faults(state, "rewrite sessions"):
        keys = list(t.cast("Enumerable", state.store).iter_sids())
        rewritten = sum(state.writer.rewrite(key) for key in keys)
    target = "Flask-Session 0.8's" if state.config.compat_flask_session else "flask-serverside's"
    click.echo(
        f"checked {len(keys)} sessions, re-encoded {rewritten}: every session that can be is"
        f" now in {target} layout and encoding"
    )
