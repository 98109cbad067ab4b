"""Redis, Redis Sentinel and Redis Cluster store for flask-serverside sessions.

::

    app.config["SESSION_TYPE"] = "redis"
    app.config["SESSION_REDIS"] = redis.Redis.from_url("redis://localhost:6379/0")
    app.config["SESSION_REDIS_CACHE"] = True  # optional: reads of unchanged sessions cost nothing
    flask_serverside.Session(app)
"""

from __future__ import annotations

from ._cache import SessionCache
from ._record import Version
from .store import RedisStore
from .urls import connect_url

__all__ = ["RedisStore", "SessionCache", "Version", "connect_url"]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
