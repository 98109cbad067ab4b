"""PostgreSQL: a throwaway cluster per server, run as the ``postgres`` OS user under root.

``initdb`` and ``postgres`` refuse to run as root, so as root both run as the
``postgres`` user in a ``mkdtemp`` directory of mode 0711 owned by it. One
``initdb`` per session builds a template that every server copies.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import struct
import typing as t
from pathlib import Path

from ._process import ServerProcess
from ._process import copy_tree
from ._process import is_root
from ._process import require_binary
from ._process import run_checked
from ._process import template

if t.TYPE_CHECKING:
    import collections.abc as c

#: OS user that runs PostgreSQL when the tests run as root.
OS_USER = "postgres"


def _bindirs() -> list[str]:
    """Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<major>/bin."""
    found = glob.glob("/usr/lib/postgresql/*/bin")

    def major(path: str) -> int:
        name = Path(path).parent.name
        return int(name) if name.isdigit() else 0

    return sorted(found, key=major, reverse=True)


def _os_user() -> str | None:
    return OS_USER if is_root() else None


def _hand_over(path: Path) -> None:
    """Make *path* reachable by the server user: 0711, owned by it when root."""
    path.chmod(0o711)
    if is_root():
        shutil.chown(path, OS_USER, OS_USER)


def _startup_ok(host: str, port: int, user: str, dbname: str, timeout: float = 5.0) -> bool:
    """Open a protocol-3 session and read the replies up to ``ReadyForQuery``.

    :returns: true when the server is ready for a query, false on an error reply
        (such as "the database system is starting up").
    :raises OSError: on connection errors.
    """
    params = b"user\0" + user.encode() + b"\0database\0" + dbname.encode() + b"\0\0"
    body = struct.pack("!I", 3 << 16) + params
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack("!I", len(body) + 4) + body)
        with sock.makefile("rb") as stream:
            while True:
                header = stream.read(5)
                if len(header) < 5:
                    return False
                kind, length = header[:1], struct.unpack("!I", header[1:])[0]
                payload = stream.read(length - 4)
                if kind == b"E":
                    return False
                if kind == b"R" and payload[:4] != b"\0\0\0\0":
                    return False  # a password is asked for: not our trust setup
                if kind == b"Z":
                    sock.sendall(b"X\0\0\0\4")  # Terminate
                    return True


class PostgreSQLServer(ServerProcess):
    """A PostgreSQL server on a free loopback port with trust authentication.

    Its data directory survives :meth:`stop`/:meth:`start` and :meth:`kill`
    (crash recovery on the next start). Stopped with SIGINT (fast shutdown).

    :param extra_args: further ``postgres`` arguments, e.g. ``["-c", "max_connections=20"]``.
    """

    kind = "postgresql"
    stop_signal = signal.SIGINT

    def __init__(self, *, extra_args: c.Sequence[str] = ()) -> None:
        bindirs = _bindirs()
        #: Path of the ``postgres`` executable.
        self.binary: str = require_binary("postgres", *bindirs)
        #: Path of the ``initdb`` executable.
        self.initdb: str = require_binary("initdb", str(Path(self.binary).parent), *bindirs)
        #: Extra command-line arguments given at construction.
        self.extra_args: list[str] = list(extra_args)
        super().__init__()
        _hand_over(self.directory)
        #: Database superuser (no password).
        self.user: str = "postgres"
        #: Password: none, authentication is ``trust``.
        self.password: str | None = None
        #: Database to connect to.
        self.dbname: str = "postgres"
        #: The cluster's data directory.
        self.data_dir: Path = self.directory / "data"
        #: Directory of the Unix-domain socket (``host=`` for libpq).
        self.socket_dir: Path = self.directory

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres``"""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def dsn(self) -> str:
        """libpq keyword/value connection string over TCP."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"

    @property
    def socket_path(self) -> Path:
        """The Unix-domain socket file."""
        return self.socket_dir / f".s.PGSQL.{self.port}"

    def connect_kwargs(self) -> dict[str, t.Any]:
        """:returns: ``host``, ``port``, ``user`` and ``dbname`` for a client's ``connect``."""
        return {"host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname}

    def popen_user(self) -> str | None:
        return _os_user()

    def prepare(self) -> None:
        initdb = self.initdb

        def build(path: Path) -> None:
            _hand_over(path)
            run_checked(
                [initdb, "-D", str(path / "data"), "-U", self.user, "-A", "trust",
                 "-E", "UTF8", "--locale=C", "--no-sync"],
                what="initdb",
                user=_os_user(),
            )  # fmt: skip

        source = template(f"postgresql-{os.path.realpath(initdb)}", build)
        copy_tree(source / "data", self.data_dir)

    def argv(self) -> list[str]:
        return [
            self.binary,
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", str(self.socket_dir),
            "-c", f"listen_addresses={self.host}",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            *self.extra_args,
        ]  # fmt: skip

    def probe(self) -> bool:
        return _startup_ok(self.host, self.port, self.user, self.dbname)
