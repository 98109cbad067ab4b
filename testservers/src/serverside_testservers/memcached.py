"""memcached: independent servers on free loopback ports.

Readiness and :meth:`MemcachedServer.version` use the text protocol over a plain
socket, so no memcached client library is needed.
"""

from __future__ import annotations

import socket
import typing as t
from pathlib import Path

from ._process import ServerProcess
from ._process import is_root
from ._process import require_binary

if t.TYPE_CHECKING:
    import collections.abc as c


def memcached_command(host: str, port: int, request: bytes, *, timeout: float = 5.0) -> bytes:
    """Send one text-protocol request and return its reply.

    The reply is read up to the first line that ends a memcached reply (``END``,
    ``STORED``, ``VERSION ...``, an error, ...), which covers the commands a
    check needs; a ``get`` with values is read up to its ``END``.

    :param request: the request with its ``\\r\\n`` line ends.
    :raises OSError: on connection errors.
    """
    final = (
        b"END",
        b"STORED",
        b"NOT_STORED",
        b"EXISTS",
        b"NOT_FOUND",
        b"DELETED",
        b"OK",
        b"TOUCHED",
        b"ERROR",
        b"CLIENT_ERROR",
        b"SERVER_ERROR",
        b"VERSION",
    )
    reply = b""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        with sock.makefile("rb") as stream:
            while True:
                line = stream.readline()
                if not line:
                    raise ConnectionError("memcached closed the connection")
                reply += line
                if line.rstrip(b"\r\n").split(b" ", 1)[0] in final:
                    return reply


class MemcachedServer(ServerProcess):
    """A ``memcached`` on a free loopback port (TCP only, 64 MB, one thread).

    memcached keeps nothing across :meth:`stop`/:meth:`start`.

    :param extra_args: further ``memcached`` command-line arguments.
    """

    kind = "memcached"

    def __init__(
        self,
        *,
        extra_args: c.Sequence[str] = (),
        port: int | None = None,
        directory: Path | None = None,
    ) -> None:
        #: Path of the ``memcached`` executable.
        self.binary: str = require_binary("memcached")
        #: Extra command-line arguments given at construction.
        self.extra_args: list[str] = list(extra_args)
        super().__init__(port=port, directory=directory)

    @property
    def url(self) -> str:
        """``memcached://127.0.0.1:PORT``"""
        return f"memcached://{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, as memcached clients take it."""
        return self.host, self.port

    def argv(self) -> list[str]:
        user = ["-u", "nobody"] if is_root() else []
        return [
            self.binary,
            *user,
            "-l", self.host,
            "-p", str(self.port),
            "-U", "0",
            "-m", "64",
            "-t", "1",
            *self.extra_args,
        ]  # fmt: skip

    def probe(self) -> bool:
        return self.version() != ""

    def version(self) -> str:
        """:returns: the server's answer to ``version``, e.g. ``"1.6.18"``."""
        reply = memcached_command(self.host, self.port, b"version\r\n")
        if not reply.startswith(b"VERSION "):
            return ""
        return reply[len(b"VERSION ") :].strip().decode()
