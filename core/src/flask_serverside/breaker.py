"""The circuit breaker: after a store outage, fail fast instead of waiting on every request.

When a store call raises :class:`~flask_serverside.StoreUnavailable` (the backend is down or
timed out), the breaker opens for ``SESSION_BREAKER_WINDOW`` seconds: store calls then fail at
once, without reaching the store, so requests get the configured fault policy in microseconds
instead of each waiting for a timeout. When the window has passed, one call is let through as a
probe: if it succeeds the breaker closes, if it fails it opens for another window. Other store
errors (a refused write, a plugin bug) say nothing about reachability and leave it alone, and so
does :class:`~flask_serverside.NodeUnavailable` (one node of several is down: the sessions on
the others are still served, and the store fails that node's calls fast itself).

The breaker is per process and per application, and store-agnostic: it lives in the
:class:`~flask_serverside.SessionState` and wraps every call of the store
(:class:`~flask_serverside.loader.GuardedStore`). Its transitions are logged and sent as the
:data:`~flask_serverside.signals.breaker_opened` and
:data:`~flask_serverside.signals.breaker_closed` signals.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import typing as t

from .exceptions import StoreUnavailable

if t.TYPE_CHECKING:
    import collections.abc as c

log = logging.getLogger("flask_serverside")


class BreakerOpen(StoreUnavailable):
    """A store call was refused without reaching the store: the breaker is open after an
    outage.

    .. versionadded:: 0.2
    """

    def __init__(self, retry_after: int) -> None:
        #: Seconds until the next probe.
        self.retry_after = retry_after
        super().__init__(f"the session store failed recently; next try in {retry_after} s")


class CircuitBreaker:
    """Fails store calls fast for ``window`` seconds after an outage.

    :param window: seconds to stay open; ``0`` turns the breaker off.
    :param clock: monotonic seconds; tests pass a fake one.
    :param on_change: called with ``True`` when it opens, ``False`` when it closes.
    """

    def __init__(
        self,
        window: float,
        *,
        clock: c.Callable[[], float] = time.monotonic,
        on_change: c.Callable[[bool], None] | None = None,
    ) -> None:
        #: Seconds the breaker stays open.
        self.window = window
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._opened_at: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        """Whether the breaker refuses calls now (it is open and no probe is due)."""
        opened = self._opened_at
        return opened is not None and self._clock() - opened < self.window

    def retry_after(self) -> int:
        """Whole seconds until the next probe (at least 1), for ``Retry-After``."""
        opened = self._opened_at
        if opened is None:
            return max(1, math.ceil(self.window))
        return max(1, math.ceil(self.window - (self._clock() - opened)))

    def before_call(self) -> None:
        """Let a store call through, or refuse it.

        :raises BreakerOpen: while open, and while another call probes.
        """
        if self._opened_at is None:
            return
        with self._lock:
            opened = self._opened_at
            if opened is None:
                return
            if self._clock() - opened >= self.window and not self._probing:
                self._probing = True  # this call is the probe
                return
        raise BreakerOpen(self.retry_after())

    def succeeded(self) -> None:
        """Record a call that reached the store and was answered."""
        if self._opened_at is None:
            return
        with self._lock:
            was_open = self._opened_at is not None
            self._opened_at = None
            self._probing = False
        if was_open:
            log.warning("the session store answers again; the circuit breaker closed")
            if self._on_change is not None:
                self._on_change(False)

    def failed(self) -> None:
        """Record a call that found the store unavailable: open (again) for a window."""
        if self.window <= 0:
            return
        with self._lock:
            was_open = self._opened_at is not None
            self._opened_at = self._clock()
            self._probing = False
        if not was_open:
            log.error(
                "the session store is unavailable; failing fast for %g s before trying again",
                self.window,
            )
            if self._on_change is not None:
                self._on_change(True)
