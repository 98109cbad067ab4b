"""MariaDB (or MySQL's ``mysqld`` under the MariaDB names): a throwaway server per test need.

The data directory is made by ``mariadb-install-db`` once per session (a template
that every server copies). The database ``serverside`` is created by an init
file at every start.
"""

from __future__ import annotations

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

#: The database every server has.
DATABASE = "serverside"

# A small redo log: the data directory is copied per server (default 96 MB).
_LOG_FILE_SIZE = "--innodb-log-file-size=16M"


def _handshake_ok(host: str, port: int, timeout: float = 5.0) -> bool:
    """:returns: whether the server greets with a protocol-10 handshake packet."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        header = sock.recv(5)
    if len(header) < 5:
        return False
    return header[4] == 10 and struct.unpack("<I", header[:3] + b"\0")[0] > 1


class MariaDBServer(ServerProcess):
    """A MariaDB server on a free loopback port; ``root`` has no password.

    Its data directory survives :meth:`stop`/:meth:`start` and :meth:`kill`
    (InnoDB crash recovery on the next start). Shutdown is fast
    (``--innodb-fast-shutdown=2``), commits are flushed to the OS at once and to
    disk once a second, which survives a process crash.

    :param extra_args: further ``mariadbd`` arguments.
    """

    kind = "mariadb"

    def __init__(self, *, extra_args: c.Sequence[str] = ()) -> None:
        #: Path of the ``mariadbd`` executable.
        self.binary: str = require_binary("mariadbd", "/usr/sbin")
        #: Path of the ``mariadb-install-db`` executable.
        self.install_db: str = require_binary("mariadb-install-db")
        #: Extra command-line arguments given at construction.
        self.extra_args: list[str] = list(extra_args)
        super().__init__()
        #: Database user (no password).
        self.user: str = "root"
        #: Password: empty.
        self.password: str = ""
        #: The database created at start.
        self.dbname: str = DATABASE
        #: The data directory.
        self.data_dir: Path = self.directory / "data"
        #: The Unix-domain socket file.
        self.socket_path: Path = self.directory / "mariadb.sock"

    @property
    def url(self) -> str:
        """``mysql://root@127.0.0.1:PORT/serverside``"""
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect_kwargs(self) -> dict[str, t.Any]:
        """:returns: ``host``, ``port``, ``user``, ``password`` and ``database`` (PyMySQL names)."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.dbname,
        }

    def _user_args(self) -> list[str]:
        return ["--user=root"] if is_root() else []

    def prepare(self) -> None:
        install_db, user_args = self.install_db, self._user_args()

        def build(path: Path) -> None:
            run_checked(
                [install_db, "--no-defaults", f"--datadir={path / 'data'}", *user_args,
                 "--auth-root-authentication-method=normal", "--skip-test-db",
                 _LOG_FILE_SIZE],
                what="mariadb-install-db",
            )  # fmt: skip

        copy_tree(template("mariadb", build) / "data", self.data_dir)
        (self.directory / "init.sql").write_text(f"CREATE DATABASE IF NOT EXISTS {DATABASE};\n")

    def argv(self) -> list[str]:
        return [
            self.binary,
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.directory / 'mariadbd.pid'}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            *self._user_args(),
            "--skip-log-bin",
            "--skip-name-resolve",
            "--max-connect-errors=1000000",
            "--innodb-fast-shutdown=2",
            "--innodb-flush-log-at-trx-commit=2",
            _LOG_FILE_SIZE,
            f"--init-file={self.directory / 'init.sql'}",
            *self.extra_args,
        ]

    def probe(self) -> bool:
        return _handshake_ok(self.host, self.port)
