"""Expiry arithmetic: lifetimes in, whole seconds out.

Every record carries a time to live of ``PERMANENT_SESSION_LIFETIME``, whether its cookie is
permanent or lasts for the browser session: the store must forget a session the browser still
holds once it has been idle that long. Stores receive the time to live as whole seconds, at
least one; each converts it into what its backend wants (memcached's absolute times past 30
days, an expiry column).
"""

from __future__ import annotations

import datetime
import math


def ttl_seconds(lifetime: datetime.timedelta | int | float) -> int:
    """Return ``lifetime`` as whole seconds, rounded up, at least 1."""
    if isinstance(lifetime, datetime.timedelta):
        seconds = lifetime.total_seconds()
    else:
        seconds = float(lifetime)
    return max(1, math.ceil(seconds))
