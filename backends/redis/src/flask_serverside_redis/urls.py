"""Redis clients from URLs.

``redis://``, ``rediss://`` and ``unix://`` URLs are redis-py's own (``Redis.from_url``; its query
options apply). Two more forms name a Sentinel service and a Cluster::

    redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db]
    redis+cluster://[user:password@]host:port[,host:port...]

``rediss+sentinel`` and ``rediss+cluster`` use TLS. Their query may set ``socket_timeout``,
``socket_connect_timeout`` (seconds) and, for Sentinel, ``sentinel_password``. A port defaults to
6379 (26379 for a sentinel). Every client made here gets the socket timeouts of
:data:`DEFAULT_TIMEOUTS` unless the URL sets its own, so a Redis that is down or stuck costs a
request two seconds at most before the store reports it unavailable.
"""

from __future__ import annotations

import collections.abc as c
import typing as t
import urllib.parse

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError

#: A client the store works with.
Client: t.TypeAlias = "redis.Redis | RedisCluster"

#: Socket timeouts (seconds) of clients built from a URL, unless the URL sets its own.
DEFAULT_TIMEOUTS: c.Mapping[str, float] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}


def default_retry() -> Retry:
    """The retry policy of clients built from a URL: one quick retry of a command whose
    connection failed (a pooled connection the server closed, a restart), none of a timeout, so
    a Redis that hangs costs a request one socket timeout, not several."""
    return Retry(
        ExponentialBackoff(cap=0.1, base=0.01), 1, supported_errors=(redis.ConnectionError,)
    )


def connect_url(url: str) -> ClientHandle[Client]:
    """Parse ``url`` and return a handle of its client, which the store owns: a Cluster's is
    made on first use (so an application starts while the Cluster is down), and closing a
    Sentinel's also closes the clients of its sentinels.

    .. versionchanged:: 0.2
        Returns a :class:`~flask_serverside.ClientHandle`, not a connect function and a list
        of what to close.

    :raises ConfigurationError: when the URL is malformed.
    """
    scheme = url.partition("://")[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        try:
            client = redis.Redis.from_url(url, retry=default_retry(), **DEFAULT_TIMEOUTS)
        except ValueError as exc:
            raise ConfigurationError(f"Invalid Redis URL {_shown(url)!r}: {exc}") from exc
        return ClientHandle.built(client)
    base, _, topology = scheme.partition("+")
    if base not in ("redis", "rediss") or topology not in ("sentinel", "cluster"):
        raise ConfigurationError(
            f"Unknown Redis URL scheme {scheme!r}: use redis://, rediss://, unix://,"
            " redis+sentinel://host:port,.../service_name or redis+cluster://host:port,..."
        )
    parts = urllib.parse.urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    options = dict(urllib.parse.parse_qsl(parts.query))
    allowed = {*DEFAULT_TIMEOUTS, "sentinel_password"}
    if set(options) - allowed:
        raise ConfigurationError(
            f"Unknown options {sorted(set(options) - allowed)} in {_shown(url)!r};"
            f" known ones: {sorted(allowed)}."
        )
    try:
        timeouts = {
            name: float(options.get(name, value)) for name, value in DEFAULT_TIMEOUTS.items()
        }
    except ValueError:
        raise ConfigurationError(
            f"Timeouts in {_shown(url)!r} must be numbers of seconds."
        ) from None
    kwargs: dict[str, t.Any] = dict(
        timeouts,
        username=urllib.parse.unquote(username) or None,
        password=urllib.parse.unquote(password) or None,
        ssl=base == "rediss",
    )
    default_port = 26379 if topology == "sentinel" else 6379
    nodes = [_host_port(host, default_port, url) for host in hosts.split(",") if host]
    if not nodes:
        raise ConfigurationError(f"The Redis URL {_shown(url)!r} names no host.")
    if topology == "cluster":

        def cluster() -> Client:
            startup_nodes = [t.cast(t.Any, ClusterNode)(host, port) for host, port in nodes]
            return RedisCluster(startup_nodes=startup_nodes, **kwargs)

        return ClientHandle.built(connect=cluster)
    path = [part for part in parts.path.split("/") if part]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigurationError(
            f"The Sentinel URL {_shown(url)!r} must name the service:"
            " redis+sentinel://host:port,host:port/service_name[/db]"
        )
    sentinel_kwargs: dict[str, t.Any] = dict(timeouts)
    if "sentinel_password" in options:
        sentinel_kwargs["password"] = options["sentinel_password"]
    sentinel: t.Any = t.cast(t.Any, Sentinel)(nodes, sentinel_kwargs=sentinel_kwargs)
    db = int(path[1]) if len(path) == 2 else 0
    master: Client = sentinel.master_for(path[0], db=db, retry=default_retry(), **kwargs)

    def close(client: Client) -> None:
        for each in (client, *sentinel.sentinels):
            each.close()

    return ClientHandle.built(master, closer=close)


def _host_port(text: str, default: int, url: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not host:
        host, port = text, ""
    try:
        return host.strip("[]"), int(port) if port else default
    except ValueError:
        raise ConfigurationError(
            f"Bad port in {text!r} of the Redis URL {_shown(url)!r}."
        ) from None


def _shown(url: str) -> str:
    """``url`` as an error message may show it: without its password (or user name)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return f"{scheme}{sep}{netloc}{slash}{path}"
