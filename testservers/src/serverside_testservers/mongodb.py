"""MongoDB: a real ``mongod``, an existing server, or the mongoeco wire-protocol stand-in.

Which one :func:`mongodb_backend` picks, first match wins:

1. ``mongod`` on ``PATH``: a throwaway ``mongod`` per server (:class:`MongodServer`);
2. ``SERVERSIDE_MONGODB_URL`` set: that existing server (:class:`ExternalMongoDB`),
   which the tests cannot stop, kill or restart, and which is never started twice;
3. otherwise mongoeco (PyPI ``mongoeco[wire]``), a MongoDB wire-protocol server,
   run as its own process from the Python 3.13 virtualenv that
   ``scripts/install-servers`` creates (:class:`MongoecoServer`). Its documents
   are kept in SQLite in the server's directory and survive a restart.

Readiness sends ``hello`` as an ``OP_MSG`` over a plain socket, so no client
library is needed. Known limits of mongoeco: no ``buildinfo`` (so pymongo's
``server_info()`` fails), and it removes expired TTL documents at once where
``mongod`` may lag a minute.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import typing as t
import urllib.parse
from pathlib import Path

import pytest

from ._process import HOST
from ._process import ServerProcess
from ._process import missing
from ._process import require_binary

#: Environment variable naming an existing MongoDB server to use instead.
URL_ENV = "SERVERSIDE_MONGODB_URL"

#: The script the mongoeco interpreter runs.
MONGOECO_LAUNCHER = Path(__file__).with_name("_mongoeco_serve.py")

Backend = t.Literal["mongod", "external", "mongoeco"]

_OP_MSG = 2013


def mongoeco_venv() -> Path:
    """:returns: ``${XDG_CACHE_HOME:-~/.cache}/flask-serverside/mongoeco``."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache, "flask-serverside", "mongoeco")


def _mongoeco_python() -> Path | None:
    venv = mongoeco_venv()
    python = venv / "bin" / "python"
    if not python.exists() or not any(venv.glob("lib/python*/site-packages/mongoeco/wire")):
        return None
    return python


def mongodb_backend() -> Backend:
    """:returns: which kind of MongoDB server the fixtures provide (see the module doc)."""
    if shutil.which("mongod"):
        return "mongod"
    if os.environ.get(URL_ENV):
        return "external"
    return "mongoeco"


def _bson_hello() -> bytes:
    elements = (
        b"\x10hello\x00" + struct.pack("<i", 1)
        + b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
    )  # fmt: skip
    return struct.pack("<i", len(elements) + 5) + elements + b"\x00"


def hello_ok(host: str, port: int, timeout: float = 5.0) -> bool:
    """Send ``{hello: 1}`` as an ``OP_MSG`` and check the reply says ``ok: 1.0``.

    :raises OSError: on connection errors.
    """
    body = struct.pack("<I", 0) + b"\x00" + _bson_hello()
    message = struct.pack("<iiii", 16 + len(body), 1, 0, _OP_MSG) + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(message)
        with sock.makefile("rb") as stream:
            header = stream.read(16)
            if len(header) < 16:
                return False
            length, _, _, opcode = struct.unpack("<iiii", header)
            reply = stream.read(length - 16)
    return opcode == _OP_MSG and b"\x01ok\x00" + struct.pack("<d", 1.0) in reply


class MongoDBServer(ServerProcess):
    """Base of the MongoDB servers this plugin runs itself."""

    kind = "mongodb"
    #: ``"mongod"`` or ``"mongoeco"``.
    backend: t.ClassVar[Backend]
    #: Whether :meth:`stop`, :meth:`kill` and :meth:`start` are available (always here).
    supports_restart: t.ClassVar[bool] = True

    @property
    def url(self) -> str:
        """``mongodb://127.0.0.1:PORT/?directConnection=true``"""
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def probe(self) -> bool:
        return hello_ok(self.host, self.port)


class MongodServer(MongoDBServer):
    """A real ``mongod`` with its own data directory (kept across restarts)."""

    backend = "mongod"

    def __init__(self) -> None:
        #: Path of the ``mongod`` executable.
        self.binary: str = require_binary("mongod")
        super().__init__()
        #: The ``--dbpath`` directory.
        self.data_dir: Path = self.directory / "data"

    def prepare(self) -> None:
        self.data_dir.mkdir()

    def argv(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind_ip", self.host,
            "--dbpath", str(self.data_dir),
            "--unixSocketPrefix", str(self.directory),
            "--quiet",
        ]  # fmt: skip


class MongoecoServer(MongoDBServer):
    """mongoeco's wire-protocol server, in its own process, documents in SQLite."""

    backend = "mongoeco"

    def __init__(self) -> None:
        python = _mongoeco_python()
        if python is None:
            missing(
                f"mongod is not on PATH, {URL_ENV} is unset, and the MongoDB stand-in "
                f"mongoeco[wire] is not installed in {mongoeco_venv()}"
            )
        #: The mongoeco virtualenv's Python interpreter.
        self.python: Path = python
        super().__init__()
        #: The SQLite file holding the documents.
        self.data_file: Path = self.directory / "mongoeco.sqlite"

    def argv(self) -> list[str]:
        return [
            str(self.python),
            str(MONGOECO_LAUNCHER),
            "--host", self.host,
            "--port", str(self.port),
            "--sqlite", str(self.data_file),
        ]  # fmt: skip


class ExternalMongoDB:
    """An existing MongoDB server named by ``SERVERSIDE_MONGODB_URL``.

    The tests do not own it: :meth:`stop`, :meth:`kill`, :meth:`freeze`, :meth:`start` and
    :attr:`pid` skip the calling test.
    """

    backend: t.ClassVar[Backend] = "external"
    supports_restart: t.ClassVar[bool] = False

    def __init__(self, url: str) -> None:
        #: The URL as given.
        self.url: str = url
        first = urllib.parse.urlsplit(url).netloc.rsplit("@", 1)[-1].split(",", 1)[0]
        address = urllib.parse.urlsplit(f"//{first}")
        #: Host of the first server in the URL.
        self.host: str = address.hostname or HOST
        #: Port of the first server in the URL.
        self.port: int = address.port or 27017

    def __repr__(self) -> str:
        return f"<ExternalMongoDB {self.url}>"

    def _unavailable(self, what: str) -> t.NoReturn:
        pytest.skip(f"{what} is not available: {URL_ENV} names a server the tests do not own")

    @property
    def pid(self) -> int:
        """Not available: skips the test."""
        self._unavailable("the server's PID")

    def is_running(self) -> bool:
        """:returns: whether the server answers ``hello``."""
        try:
            return hello_ok(self.host, self.port)
        except OSError:
            return False

    def start(self, timeout: float = 0) -> None:
        """Not available: skips the test."""
        self._unavailable("starting the server")

    def stop(self, timeout: float = 0) -> None:
        """Not available: skips the test."""
        self._unavailable("stopping the server")

    def kill(self) -> None:
        """Not available: skips the test."""
        self._unavailable("killing the server")

    def freeze(self) -> None:
        """Not available: skips the test."""
        self._unavailable("freezing the server")

    def thaw(self) -> None:
        """Nothing to do: the server is not ours."""

    def request_stop(self) -> None:
        """Nothing to do: the server is not ours."""

    def close(self) -> None:
        """Nothing to do: the server is not ours."""


AnyMongoDB: t.TypeAlias = "MongoDBServer | ExternalMongoDB"


def new_mongodb_server() -> MongoDBServer:
    """Create (not start) a MongoDB server this session owns.

    Skips (fails under ``CI=true``) when neither ``mongod`` nor mongoeco is there;
    skips when ``SERVERSIDE_MONGODB_URL`` is set and no ``mongod`` is on PATH,
    since the tests then cannot start servers of their own.
    """
    backend = mongodb_backend()
    if backend == "mongod":
        return MongodServer()
    if backend == "external":
        pytest.skip(f"{URL_ENV} is set: this test needs a MongoDB server it can start and stop")
    return MongoecoServer()


def shared_mongodb_server() -> AnyMongoDB:
    """Create (not start) the session's shared MongoDB server, following the order above."""
    url = os.environ.get(URL_ENV)
    if mongodb_backend() == "external" and url:
        return ExternalMongoDB(url)
    return new_mongodb_server()
