"""SQLAlchemy's errors in the core's terms, with no session id, user id or session data in
them.

SQLAlchemy's messages quote the statement's parameters (``[parameters: ...]``) and the
drivers' messages quote values (PostgreSQL's ``DETAIL:  Key (session_id)=(...)``, MySQL's
``Duplicate entry '...'``). A store error chains the SQLAlchemy exception, whose text ends up
in tracebacks in the logs, so :func:`scrub` rewrites that exception in place before it is
chained: parameters hidden, the driver's message cut to its first line with the statement's
values blanked, and the driver's own exception taken off the chain (it stays reachable as
``.orig``).
"""

from __future__ import annotations

import re
import typing as t

import sqlalchemy as sa

from flask_serverside import ClientErrors
from flask_serverside import StoreError

if t.TYPE_CHECKING:
    import collections.abc as c

#: Error codes after which the transaction was rolled back and may be tried again: MySQL's
#: lock wait timeout and deadlock, PostgreSQL's serialization failure and deadlock, SQLite's
#: busy and locked (a lock upgrade SQLite refuses at once rather than wait for).
RETRYABLE = {1205, 1213, "40001", "40P01", "sqlite:5", "sqlite:6"}
#: Parameter values shorter than this are not blanked in messages (they are no secret, and
#: blanking ``"1"`` would mangle error codes).
_SHORTEST_SECRET = 4
_MYSQL_DUPLICATE = re.compile(r"Duplicate entry '.*' for key", re.DOTALL)
_PROTECTED = "…"


def scrub(exc: sa.exc.StatementError) -> None:
    """Take every parameter value out of ``exc``'s text, in place."""
    exc.hide_parameters = True
    text = str(exc.args[0]) if exc.args else ""
    text = text.split("\n", 1)[0]  # PostgreSQL's DETAIL, HINT and CONTEXT lines quote values
    text = _MYSQL_DUPLICATE.sub(f"Duplicate entry '{_PROTECTED}' for key", text)
    for value in _values(exc.params):
        text = text.replace(value, _PROTECTED)
    exc.args = (text,)
    exc.__cause__ = None
    exc.__suppress_context__ = True


def _values(params: object) -> c.Iterator[str]:
    """The text of every parameter value worth hiding."""
    if isinstance(params, dict):
        params = params.values()
    elif not isinstance(params, (list, tuple)):
        return
    for value in params:
        if isinstance(value, (dict, list, tuple)):
            yield from _values(value)
        elif isinstance(value, (bytes, bytearray)):
            yield from _text(bytes(value).decode("utf-8", "replace"))
            yield from _text(repr(bytes(value))[2:-1])
        elif value is not None:
            yield from _text(str(value))


def _text(value: str) -> c.Iterator[str]:
    if len(value) >= _SHORTEST_SECRET:
        yield value


def describe(exc: BaseException) -> str:
    """The message of a store error: the (scrubbed) SQLAlchemy message, cut."""
    text = str(exc.args[0]) if isinstance(exc, sa.exc.StatementError) and exc.args else str(exc)
    return f"{type(exc).__name__}: {text[:300]}"


errors = ClientErrors(
    "The session database",
    unavailable=(
        sa.exc.OperationalError,
        sa.exc.InterfaceError,
        sa.exc.DisconnectionError,
        sa.exc.TimeoutError,
    ),
    failed=(sa.exc.SQLAlchemyError,),
    describe=describe,
)


def code(exc: sa.exc.DBAPIError) -> object:
    """The server's error code: MySQL's number, PostgreSQL's SQLSTATE, or SQLite's."""
    orig = exc.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if sqlite_code is not None:
        return f"sqlite:{sqlite_code & 0xFF}"
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate:
        return sqlstate
    args = getattr(orig, "args", ())
    return args[0] if args else None


def duplicate(exc: StoreError) -> bool:
    """Whether ``exc`` is a duplicate key (or another integrity violation)."""
    return isinstance(exc.__cause__, sa.exc.IntegrityError)
