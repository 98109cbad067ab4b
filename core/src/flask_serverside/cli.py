"""The ``flask session`` command group.

=========================  ==============================================  ===================
command                    does                                            store needs
=========================  ==============================================  ===================
``stores``                 list installed stores, their distribution,      (nothing)
                           version and capabilities
``count``                  count live sessions                             ``ENUMERATE``
``list``                   print live session ids                          ``ENUMERATE``
``purge``                  delete expired records                          ``PURGE``
``show SID``               print one session, decoded, as JSON             (nothing)
``delete SID``             delete one session                              (nothing)
``delete-user USER_ID``    delete every session of one user                ``USER_INDEX``
=========================  ==============================================  ===================
"""

from __future__ import annotations

import json
import typing as t

import click
from flask.cli import AppGroup

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

session_cli = AppGroup("session", help="Inspect and maintain server-side sessions.")

# Session ids may start with "-": take such an argument as the id, not as an unknown option.
_TAKES_DASHED_IDS = {"ignore_unknown_options": True}


def _state() -> SessionState:
    try:
        return get_state()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


def _check_sid(state: SessionState, sid: str) -> None:
    """Refuse an argument that is not a well-formed id before any store sees it."""
    if not state.ids.is_valid(sid):
        raise click.ClickException("that is not a well-formed session id")


def _require(state: SessionState, capability: Capability, doing: str) -> None:
    if capability not in state.store.capabilities:
        name = (capability.name or "").lower()
        raise click.ClickException(
            f"the {state.store_name!r} session store cannot {doing} (it lacks the {name}"
            " capability)"
        )


@session_cli.command("stores", with_appcontext=False)
def stores_command() -> None:
    """List the installed session stores."""
    groups: dict[tuple[str, str | None], list[StoreInfo]] = {}
    for info in installed_stores():
        groups.setdefault((info.target, info.distribution), []).append(info)
    for infos in sorted(groups.values(), key=lambda group: _primary(group).name):
        main = _primary(infos)
        where = f"{main.distribution} {main.version}" if main.distribution else "registered in code"
        click.echo(f"{main.name:<14} {where:<36} {main.target}")
        aliases = sorted(info.name for info in infos if info is not main)
        if aliases:
            click.echo(f"{'':<14} also named: {', '.join(aliases)}")
        if main.error:
            click.echo(f"{'':<14} BROKEN: {main.error}")
        else:
            click.echo(f"{'':<14} capabilities: {', '.join(main.capabilities) or 'none'}")


def _primary(infos: list[StoreInfo]) -> StoreInfo:
    """The name a store goes by: the one its distribution is named after, else the first."""
    for info in infos:
        if info.distribution and info.distribution.endswith(f"-{info.name}"):
            return info
    return min(infos, key=lambda info: info.name)


@session_cli.command("count")
def count_command() -> None:
    """Print how many live sessions the store holds."""
    state = _state()
    _require(state, Capability.ENUMERATE, "count sessions")
    click.echo(t.cast("Enumerable", state.store).count())


@session_cli.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Print at most N ids.")
def list_command(limit: int | None) -> None:
    """Print the ids of live sessions."""
    state = _state()
    _require(state, Capability.ENUMERATE, "list sessions")
    for number, sid in enumerate(t.cast("Enumerable", state.store).iter_sids(), start=1):
        click.echo(sid)
        if limit is not None and number >= limit:
            break


@session_cli.command("purge")
def purge_command() -> None:
    """Delete expired session records (for stores without native expiry)."""
    state = _state()
    if Capability.PURGE not in state.store.capabilities:
        click.echo(f"the {state.store_name!r} store expires sessions itself; nothing to purge")
        return
    removed = t.cast("Purgeable", state.store).purge_expired()
    click.echo(f"purged {removed} expired sessions")


@session_cli.command("show", context_settings=_TAKES_DASHED_IDS)
@click.argument("sid")
def show_command(sid: str) -> None:
    """Print one session's data as JSON."""
    state = _state()
    _check_sid(state, sid)
    record = state.store.load(sid)
    if record is None:
        raise click.ClickException("no such session (or it has expired)")
    try:
        data = state.serializer.loads(record.data)
    except CorruptRecord as exc:
        raise click.ClickException(f"the record is corrupt: {exc}") from None
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=repr))


@session_cli.command("delete", context_settings=_TAKES_DASHED_IDS)
@click.argument("sid")
def delete_command(sid: str) -> None:
    """Delete one session."""
    state = _state()
    _check_sid(state, sid)
    state.store.delete(sid)
    click.echo("deleted")


@session_cli.command("delete-user", context_settings=_TAKES_DASHED_IDS)
@click.argument("user_id")
def delete_user_command(user_id: str) -> None:
    """Delete every session of one user ("log out everywhere")."""
    state = _state()
    try:
        deleted = state.revoke_user(user_id)
    except (ConfigurationError, SessionError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"deleted {deleted} sessions of user {user_id}")
