"""Real database servers for the flask-serverside test suite.

The fixtures live in :mod:`serverside_testservers.plugin`, a pytest plugin
registered through the ``pytest11`` entry point. The server classes can also be
used directly, e.g. from a benchmark script.
"""

from __future__ import annotations

from ._process import ServerProcess
from ._process import ServerStartError
from ._process import free_port
from ._process import port_is_free
from .dynamodb import DynamoDBServer
from .dynamodb import dynamodb_request
from .mariadb import MariaDBServer
from .memcached import MemcachedServer
from .memcached import memcached_command
from .mongodb import ExternalMongoDB
from .mongodb import MongoDBServer
from .mongodb import MongodServer
from .mongodb import MongoecoServer
from .mongodb import hello_ok
from .mongodb import mongodb_backend
from .postgresql import PostgreSQLServer
from .redis import RedisCluster
from .redis import RedisClusterNode
from .redis import RedisSentinel
from .redis import RedisServer
from .redis import RespError
from .redis import SentinelServer
from .redis import redis_command

__all__ = [
    "DynamoDBServer",
    "ExternalMongoDB",
    "MariaDBServer",
    "MemcachedServer",
    "MongoDBServer",
    "MongodServer",
    "MongoecoServer",
    "PostgreSQLServer",
    "RedisCluster",
    "RedisClusterNode",
    "RedisSentinel",
    "RedisServer",
    "RespError",
    "SentinelServer",
    "ServerProcess",
    "ServerStartError",
    "dynamodb_request",
    "free_port",
    "hello_ok",
    "memcached_command",
    "mongodb_backend",
    "port_is_free",
    "redis_command",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
