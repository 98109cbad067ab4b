"""Signals for watching the session store, Flask's way (blinker).

Every signal is sent with the application as sender, and never carries a session id, a user id
or session data. Count them to feed a metrics system (the user guide shows the same)::

    from collections import Counter
    from flask_serverside import signals

    counts = Counter()

    @signals.store_failed.connect_via(app)
    def count_fault(app, operation, error, **extra):
        counts["store_failed", operation] += 1

    @signals.write_conflicted.connect_via(app)
    def count_conflict(app, attempts, saved, **extra):
        counts["write_conflicted"] += 1
        counts["write_retries"] += attempts - 1

    @signals.record_corrupt.connect_via(app)
    def count_corrupt(app, error, **extra):
        counts["record_corrupt"] += 1

    @signals.breaker_opened.connect_via(app)
    def count_opened(app, window, **extra):
        counts["breaker_opened"] += 1

    @signals.breaker_closed.connect_via(app)
    def count_closed(app, **extra):
        counts["breaker_closed"] += 1

=========================  ====================================================================
signal                     sent when, with
=========================  ====================================================================
:data:`store_failed`       a store call failed (``operation``: the method name, ``error``: the
                           :class:`~flask_serverside.StoreError`); a call refused by the open
                           breaker is not sent again
:data:`write_conflicted`   a conditional save lost to another writer at least once
                           (``attempts``: saves tried, ``saved``: whether it landed in the end)
:data:`record_corrupt`     a stored record could not be decoded and was dropped (``error``: the
                           :class:`~flask_serverside.CorruptRecord`)
:data:`breaker_opened`     the circuit breaker opened after an outage (``window``: seconds)
:data:`breaker_closed`     the store answered a probe; the breaker closed
=========================  ====================================================================

Log lines are sent as before, at their usual levels; the signals are for counting.

.. versionadded:: 0.2
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A store call failed.
store_failed = _signals.signal("flask-serverside.store-failed")
#: A conditional save lost to another writer at least once.
write_conflicted = _signals.signal("flask-serverside.write-conflicted")
#: A stored record could not be decoded.
record_corrupt = _signals.signal("flask-serverside.record-corrupt")
#: The circuit breaker opened.
breaker_opened = _signals.signal("flask-serverside.breaker-opened")
#: The circuit breaker closed.
breaker_closed = _signals.signal("flask-serverside.breaker-closed")
