"""flask-serverside-memcached: Flask sessions in memcached, through pymemcache.

Select it with ``SESSION_TYPE = "memcached"`` and ``SESSION_MEMCACHED``, or with
``SESSION_TYPE = "memcached://host:port,host:port"``. See :class:`MemcachedStore`.
"""

from __future__ import annotations

from .store import MemcachedStore
from .store import build_client
from .store import expiry_time
from .store import memcached_key

__all__ = ["MemcachedStore", "build_client", "expiry_time", "memcached_key"]
