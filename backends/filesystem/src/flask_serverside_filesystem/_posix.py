"""The system calls the store builds on: an atomic exchange of two files, whole-file locks,
expiry as a modification time, and directory listings that tolerate a concurrent purge.

POSIX only (``fcntl.flock``); the exchange is Linux's ``renameat2(RENAME_EXCHANGE)``.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import typing as t

if sys.platform != "win32":
    import fcntl

if t.TYPE_CHECKING:
    import collections.abc as c

#: Flags of every ``open``: never inherited by a child process, never through a symbolic link.
OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _load_exchange() -> c.Callable[[str, str], None] | None:
    """Return Linux's ``renameat2(RENAME_EXCHANGE)``, or ``None`` where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # pragma: no cover - glibc before 2.28
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int

    def exchange(first: str, second: str) -> None:
        first_b, second_b = os.fsencode(first), os.fsencode(second)
        if function(_AT_FDCWD, first_b, _AT_FDCWD, second_b, _RENAME_EXCHANGE) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), first, None, second)

    return exchange


#: Exchange two paths atomically (both must exist), or ``None`` where the system cannot.
exchange = _load_exchange()


def lock(fd: int) -> None:
    """Take an exclusive ``flock`` on ``fd``, waiting for it; closing ``fd`` releases it, and
    so does the kernel when the holder dies."""
    fcntl.flock(fd, fcntl.LOCK_EX)


def set_expiry(target: int | str, now: float, ttl: float) -> None:
    """Make the file ``target`` (a descriptor or a path, not followed if a link) expire ``ttl``
    seconds after ``now``: its modification time is its expiry."""
    if isinstance(target, int):
        os.utime(target, (now, now + ttl))
    else:
        os.utime(target, (now, now + ttl), follow_symlinks=False)


def read_all(fd: int, size: int) -> bytes:
    """Read up to ``size`` bytes of ``fd``, fewer if the file is shorter."""
    chunks = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, however many calls it takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def listdir(path: str) -> list[os.DirEntry[str]]:
    """The entries of ``path``; none when it is gone."""
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def subdirectories(path: str, pattern: re.Pattern[str]) -> list[str]:
    """The paths of the subdirectories of ``path`` whose names match ``pattern``."""
    return [
        entry.path
        for entry in listdir(path)
        if pattern.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)
    ]


def unlink(path: str) -> bool:
    """Remove ``path``; ``False`` when it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
