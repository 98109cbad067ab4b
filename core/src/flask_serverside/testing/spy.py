"""A spy between an application's sessions and its store, counting the calls."""

from __future__ import annotations

import collections
import typing as t

from ..guard import GuardedStore
from ..state import get_state

if t.TYPE_CHECKING:
    from flask import Flask

    from ..store import SessionStore


class StoreSpy:
    """Wraps a store and counts the calls made to it, by method name."""

    def __init__(self, store: SessionStore) -> None:
        self.wrapped = store
        self.capabilities = store.capabilities
        #: Calls made, by method name.
        self.calls: collections.Counter[str] = collections.Counter()
        #: The session ids passed to the store, in order.
        self.sids: list[str] = []

    def reset(self) -> None:
        self.calls.clear()
        self.sids.clear()

    @property
    def writes(self) -> int:
        """Calls that write data: ``save``, ``save_if`` and ``save_if_or_load``."""
        return self.calls["save"] + self.calls["save_if"] + self.calls["save_if_or_load"]

    def __getattr__(self, name: str) -> t.Any:
        method = getattr(self.wrapped, name)
        if not callable(method):
            return method

        def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
            self.calls[name] += 1
            if args and isinstance(args[0], str):
                self.sids.append(args[0])
            return method(*args, **kwargs)

        return call


def spy_on_store(app: Flask, *, behind_guard: bool = False) -> StoreSpy:
    """Put a :class:`StoreSpy` between ``app``'s sessions and its store, and return it: the
    application's :class:`~flask_serverside.SessionState` is the one place that holds it.

    :param behind_guard: put the spy between the fault boundary (with its circuit breaker)
        and the store, so that it counts only the calls that reached the store: none while
        the breaker is open.

    .. versionchanged:: 0.2
        ``behind_guard``.
    """
    state = get_state(app)
    if not behind_guard:
        spy = StoreSpy(state.store)
        state.store = t.cast("SessionStore", spy)
        return spy
    guarded = state.store
    if not isinstance(guarded, GuardedStore):
        raise TypeError("the application's store is not behind its guard (another spy?)")
    spy = StoreSpy(guarded.wrapped)
    state.store = state.guard(t.cast("SessionStore", spy))
    return spy
