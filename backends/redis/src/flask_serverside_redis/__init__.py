"""Redis, Redis Sentinel and Redis Cluster store for flask-serverside sessions.

::

    app.config["SESSION_TYPE"] = "redis"
    app.config["SESSION_REDIS"] = redis.Redis.from_url("redis://localhost:6379/0")
    flask_serverside.Session(app)
"""

from __future__ import annotations

from .store import RedisStore
from .store import Version
from .urls import connect_url

__all__ = ["RedisStore", "Version", "connect_url"]

for _cls in (RedisStore, Version):
    _cls.__module__ = __name__
del _cls
