"""Flask-Session 0.8's files: the layout of cachelib's ``FileSystemCache``, which its
``filesystem`` type writes into ``SESSION_FILE_DIR``.

A session is the file ``SESSION_FILE_DIR/<hash>``, where ``<hash>`` is the hex digest of
``SESSION_KEY_PREFIX + sid`` (SHA-256 since cachelib 0.16, MD5 before; see
:func:`detect_hash`). Its bytes are the expiry (``struct`` ``"I"``: Unix time, native byte
order; ``0`` for never) followed by ``pickle.dump(dict(session))``. cachelib also keeps the
number of its files in the file of the key ``__wz_cache_count`` (a pickled ``int``, expiry
``0``), and names its temporary files ``*.__wz_cache``, which it never counts.

:class:`LegacyFiles` reads such files without unpickling (:func:`flask_serverside.
pickle_to_record`), refreshes their expiry in place, and, in the compatibility write mode,
writes them as cachelib does (:func:`flask_serverside.record_to_pickle`), keeping cachelib's
file count right, so Flask-Session workers sharing the directory read them as their own.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import struct
import typing as t

from flask_serverside import CorruptRecord
from flask_serverside import Record
from flask_serverside import dump_legacy_pickle
from flask_serverside import load_legacy_pickle
from flask_serverside import pickle_to_record
from flask_serverside import record_to_pickle

from . import _posix
from ._posix import OPEN_FLAGS
from ._posix import unlink

if t.TYPE_CHECKING:
    import collections.abc as c

#: cachelib's expiry header.
EXPIRY = struct.Struct("I")
#: The key of cachelib's count file.
COUNT_KEY = "__wz_cache_count"
#: The suffix of cachelib's temporary files, which it never takes for a cache entry.
TEMPORARY_SUFFIX = ".__wz_cache"
#: The hash functions cachelib names files by, by the length of their hex digests.
HASHES = {64: "sha256", 32: "md5"}
#: The largest file read, in bytes.
MAX_FILE_SIZE = 16 * 1024 * 1024 + EXPIRY.size
#: The first bytes of the version of a record read from such a file, so that it never equals
#: the version of a record in this store's own layout.
VERSION_PREFIX = b"cachelib:"

log = logging.getLogger("flask_serverside.filesystem")

_HEX_NAME = re.compile(r"[0-9a-f]{32}|[0-9a-f]{64}")


def file_name(key: str, method: str) -> str:
    """Return the name cachelib gives the file of ``key``."""
    return hashlib.new(method, key.encode("utf-8"), usedforsecurity=False).hexdigest()


def _entries(directory: str) -> c.Iterator[os.DirEntry[str]]:
    """The regular files of ``directory`` named as cachelib names its files."""
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if _HEX_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    yield entry
    except FileNotFoundError:
        return


def detect_hash(directory: str) -> str | None:
    """Return the hash function cachelib names the files of ``directory`` by, or ``None`` when
    it holds none of its files: its count file says it (cachelib writes one unless its
    threshold is 0), else the first file named like one."""
    for method in HASHES.values():
        if os.path.isfile(os.path.join(directory, file_name(COUNT_KEY, method))):
            return method
    for entry in _entries(directory):
        return HASHES[len(entry.name)]
    return None


class LegacyFiles:
    """The session files Flask-Session 0.8 keeps in ``directory``.

    :param directory: ``SESSION_FILE_DIR``.
    :param method: the hash function of the file names (see :func:`detect_hash`).
    :param mode: permission bits of the files written.
    :param fsync: flush each file to disk before it replaces the old one.
    """

    def __init__(self, directory: str, method: str, *, mode: int, fsync: bool) -> None:
        self.directory = directory
        self.method = method
        self.mode = mode
        self.fsync = fsync
        self._count_path = self.path(COUNT_KEY)

    def path(self, key: str) -> str:
        """Return the path of the file of ``key`` (``SESSION_KEY_PREFIX + sid``)."""
        return os.path.join(self.directory, file_name(key, self.method))

    # -- reading -----------------------------------------------------------------------------

    def read(self, path: str, now: float, ttl: int | None = None) -> Record | None:
        """Return the record the live file at ``path`` holds, refreshing its expiry to ``ttl``
        seconds from ``now`` when given; ``None`` when there is none, it has expired, or its
        pickle is refused (never run).

        :raises OSError: when the file cannot be read (or refreshed).
        """
        try:
            fd = os.open(path, (os.O_RDWR if ttl is not None else os.O_RDONLY) | OPEN_FLAGS)
        except FileNotFoundError:
            return None
        try:
            body = _live_body(fd, now)
            if body is None:
                return None
            try:
                data = pickle_to_record(body)
            except CorruptRecord as exc:
                log.warning("ignoring the Flask-Session file %s: %s", path, exc)
                return None
            if ttl is not None:
                os.pwrite(fd, EXPIRY.pack(int(now) + ttl), 0)
        finally:
            os.close(fd)
        return Record(data, version(body))

    def touch(self, path: str, now: float, ttl: int) -> bool:
        """Set the expiry of the live file at ``path`` to ``ttl`` seconds from ``now``, in
        place; ``False`` when there is none."""
        try:
            fd = os.open(path, os.O_RDWR | OPEN_FLAGS)
        except FileNotFoundError:
            return False
        try:
            head = os.pread(fd, EXPIRY.size, 0)
            if len(head) < EXPIRY.size:
                return False
            (expires,) = EXPIRY.unpack(head)
            if expires != 0 and expires < now:
                return False
            os.pwrite(fd, EXPIRY.pack(int(now) + ttl), 0)
        finally:
            os.close(fd)
        return True

    def current(self, path: str, now: float) -> bytes | None:
        """Return the version of the live file at ``path`` (see :func:`version`), or ``None``."""
        try:
            fd = os.open(path, os.O_RDONLY | OPEN_FLAGS)
        except FileNotFoundError:
            return None
        try:
            body = _live_body(fd, now)
        finally:
            os.close(fd)
        return None if body is None else version(body)

    # -- writing -----------------------------------------------------------------------------

    def write(self, path: str, data: bytes, expires: int) -> bytes:
        """Replace the file at ``path`` by one holding the core's record ``data``, pickled as
        Flask-Session pickles a session, expiring at ``expires``; count it when it is new.
        Return its version.

        :raises CorruptRecord: when ``data`` is not a record.
        :raises TypeError: when the session holds what a Flask-Session file cannot.
        """
        body = record_to_pickle(data)
        created = not os.path.lexists(path)
        self._replace(path, EXPIRY.pack(expires) + body)
        if created:
            self._count(+1)
        return version(body)

    def delete(self, path: str) -> bool:
        """Remove the file at ``path`` and uncount it; ``False`` when it was not there."""
        if not unlink(path):
            return False
        self._count(-1)
        return True

    def _replace(self, path: str, content: bytes) -> None:
        """Write ``content`` to a temporary file cachelib ignores, then rename it over
        ``path``, as cachelib does."""
        temporary = os.path.join(
            self.directory, f".{secrets.token_hex(8)}.serverside{TEMPORARY_SUFFIX}"
        )
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | OPEN_FLAGS, self.mode)
        try:
            try:
                os.fchmod(fd, self.mode)
                _posix.write_all(fd, content)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _count(self, delta: int) -> None:
        """Move cachelib's file count by ``delta``, when it keeps one (its threshold is not 0):
        its workers prune their oldest sessions when the count passes the threshold, so it
        must stay true. As cachelib's own update, this is not atomic across processes."""
        try:
            with open(self._count_path, "rb") as file:
                raw = file.read(MAX_FILE_SIZE)
        except FileNotFoundError:
            return
        try:
            count = load_legacy_pickle(raw[EXPIRY.size :]) if len(raw) > EXPIRY.size else 0
        except CorruptRecord:
            count = 0
        if count.__class__ is not int:
            count = 0
        self._replace(self._count_path, EXPIRY.pack(0) + dump_legacy_pickle(max(0, count + delta)))

    # -- the whole directory -----------------------------------------------------------------

    def scan(self, now: float) -> c.Iterator[tuple[str, int, os.stat_result]]:
        """Yield the path, expiry and ``lstat`` of every session file (not the count file)."""
        count_name = os.path.basename(self._count_path)
        for entry in _entries(self.directory):
            if entry.name == count_name or len(entry.name) != len(count_name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                with open(entry.path, "rb") as file:
                    head = file.read(EXPIRY.size)
            except FileNotFoundError:
                continue
            if len(head) == EXPIRY.size:
                yield entry.path, EXPIRY.unpack(head)[0], st

    def purge(self, now: float) -> int:
        """Delete expired session files that nothing replaced meanwhile; return how many."""
        removed = 0
        for path, expires, seen in self.scan(now):
            if expires == 0 or expires >= now:
                continue
            try:
                st = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if (st.st_ino, st.st_mtime_ns) == (seen.st_ino, seen.st_mtime_ns):
                removed += self.delete(path)
        return removed

    def count(self, now: float) -> int:
        """Count the live session files."""
        return sum(1 for _, expires, _ in self.scan(now) if expires == 0 or expires >= now)


def version(body: bytes) -> bytes:
    """The version of a record read from a file whose pickle is ``body``: its content's
    digest (the expiry header changes on every refresh, the content only on a save)."""
    return VERSION_PREFIX + hashlib.sha256(body).digest()[:16]


def _live_body(fd: int, now: float) -> bytes | None:
    """The pickle of the file open at ``fd`` (what follows its expiry), or ``None`` when the
    file is empty, too large, or has expired."""
    size = os.fstat(fd).st_size
    if not EXPIRY.size < size <= MAX_FILE_SIZE:
        return None
    raw = _posix.read_all(fd, size)
    (expires,) = EXPIRY.unpack_from(raw)
    if expires != 0 and expires < now:
        return None
    return raw[EXPIRY.size :]
