"""The fault boundary around a store: what the core counts as a store fault.

Only :class:`~flask_serverside.StoreError` (and its subclasses) and
:class:`~flask_serverside.WriteConflict` become the ``SESSION_ON_STORE_ERROR`` policy (a 503).
Everything else is the application's error and propagates as Flask's own errors do (a 500,
re-raised under ``TESTING`` / ``PROPAGATE_EXCEPTIONS``): an unserializable value, a bad cookie
setting. A store is expected to translate its client's exceptions itself
(:class:`~flask_serverside.ClientErrors`); :class:`GuardedStore` wraps anything else a store
raises into a :class:`~flask_serverside.StoreError`, once, where the store is loaded, and runs
every call through the application's :class:`~flask_serverside.breaker.CircuitBreaker`.
"""

from __future__ import annotations

import functools
import typing as t

from .breaker import BreakerOpen
from .capabilities import protocol_methods
from .exceptions import NodeUnavailable
from .exceptions import StoreError
from .exceptions import StoreUnavailable

if t.TYPE_CHECKING:
    import collections.abc as c

    from .breaker import CircuitBreaker
    from .store import Capability
    from .store import SessionStore

#: Called with the protocol method's name and the error, for every failed store call.
FailureHook = t.Callable[[str, StoreError], None]


class GuardedStore:
    """A store whose protocol methods raise nothing but
    :class:`~flask_serverside.StoreError` (and its subclasses), behind a circuit breaker.

    Anything else the store raises is a bug of the store, but it happened talking to the
    store, so it is wrapped into a :class:`~flask_serverside.StoreError` chained to the
    original. Every other attribute is the store's own, and ``isinstance`` sees the store's
    class, as with any transparent proxy; setting an attribute sets it on the store, except
    :attr:`capabilities` and the protocol methods.

    :param store: the store the plugin built.
    :param name: its name, for messages.
    :param breaker: fails calls fast after an outage; ``None`` for none.
    :param on_failure: called with the method name and the error of every failed call
        (not for calls the open breaker refused).

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        store: SessionStore,
        name: str,
        *,
        breaker: CircuitBreaker | None = None,
        on_failure: FailureHook | None = None,
    ) -> None:
        methods = protocol_methods(store.capabilities)
        self.__dict__["_own"] = frozenset(["wrapped", "capabilities", *methods])
        #: The store the plugin built.
        self.wrapped = store
        #: Its capabilities.
        self.capabilities: Capability = store.capabilities
        for method in methods:
            guarded = _guard(getattr(store, method), name, method, breaker, on_failure)
            setattr(self, method, guarded)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self.wrapped, name)

    def __setattr__(self, name: str, value: t.Any) -> None:
        if name in self._own:
            object.__setattr__(self, name, value)
        else:
            setattr(self.wrapped, name, value)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self.wrapped)

    def __repr__(self) -> str:
        return f"<GuardedStore {self.wrapped!r}>"


def _guard(
    method: c.Callable[..., t.Any],
    store: str,
    name: str,
    breaker: CircuitBreaker | None,
    on_failure: FailureHook | None,
) -> c.Callable[..., t.Any]:
    @functools.wraps(method)
    def guarded(*args: t.Any, **kwargs: t.Any) -> t.Any:
        if breaker is not None:
            breaker.before_call()
        try:
            result = method(*args, **kwargs)
        except StoreError as exc:
            error = exc
        except Exception as exc:
            error = StoreError(
                f"the {store!r} session store raised {type(exc).__name__} in {name}()"
                " instead of a StoreError"
            )
            error.__cause__ = exc
        else:
            if breaker is not None:
                breaker.succeeded()
            return result
        if breaker is not None:
            if isinstance(error, StoreUnavailable) and not isinstance(
                error, (BreakerOpen, NodeUnavailable)
            ):
                breaker.failed()
            else:  # the store answered, with an error, or only one of its nodes is down
                breaker.succeeded()
        if on_failure is not None:
            on_failure(name, error)
        raise error

    return guarded
