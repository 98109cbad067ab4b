"""flask-serverside-memcached: Flask sessions in memcached, through pymemcache.

Select it with ``SESSION_TYPE = "memcached"`` and ``SESSION_MEMCACHED`` (a list of
``"host:port"``, a pymemcache client, or Flask-Session's ``memcache.Client([...])``, whose
servers the store uses through pymemcache), or with
``SESSION_TYPE = "memcached://host:port,host:port"``. See :mod:`flask_serverside_memcached.store`.
"""

from __future__ import annotations

from ._client import build_client
from .store import MemcachedStore
from .store import expiry_time
from .store import memcached_key

__all__ = [
    "MemcachedStore",
    "build_client",
    "expiry_time",
    "memcached_key",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
