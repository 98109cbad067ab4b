"""The ``filesystem`` store: one file per session in a directory that every worker shares.

It needs no server, so it is flask-serverside's default store. Several processes (gunicorn
workers) may share one directory; its operations are safe between them.

Layout, for one ``SESSION_KEY_PREFIX`` (``h`` is the SHA-256 of prefix and id, ``u`` of the user
id; ``P`` of the prefix)::

    SESSION_FILE_DIR/P/sessions/h[:2]/h[2]/h           the record of one session
    SESSION_FILE_DIR/P/sessions/h[:2]/h[2]/h.tmp       a write in progress, or left by a crash
    SESSION_FILE_DIR/P/sessions/h[:2]/h[2]/.lock       taken by every writer of this bucket
    SESSION_FILE_DIR/P/users/u[:2]/u/h                   empty: session h was saved for user u

Paths are built from hex digests of a session id that matched the id alphabet, so no cookie can
name a path outside the directory; :meth:`FileSystemStore._locate` checks it once more. A record
file holds a header with a random version token, the session id, the user id and the data
(:mod:`._record`; no pickle). The system calls it builds on are in :mod:`._posix`.

Decisions:

* **Expiry is the file's modification time.** Refreshing it is one ``utime`` call, atomic and
  without rewriting the data: :meth:`~FileSystemStore.touch` is two system calls and
  :meth:`~FileSystemStore.load_and_touch` one more than a load (``futimens`` on the descriptor
  it read, so it refreshes exactly the record it returns). A new record gets its expiry before
  it is renamed into place. Purging and counting need a ``stat`` per file, no ``open``. The
  version token is therefore random bytes in the header, never a timestamp.
* **Atomic writes.** A record is written to ``h.tmp``, given its expiry, and then exchanged
  with ``h`` (Linux ``renameat2(RENAME_EXCHANGE)``, the old record then unlinked) or, where the
  filesystem cannot exchange, renamed over it. A reader opens the old file or the new one,
  never a part of one, and there is no moment without a record. A writer killed before the
  exchange leaves the old record intact; its ``h.tmp`` is overwritten by the next write of
  that session, or removed by :meth:`~FileSystemStore.purge_expired`. (The exchange exists for
  speed: ext4 flushes a file renamed over another, ``auto_da_alloc``, which doubles the cost
  of a write.)
* **Locking.** Every write (save, conditional save, delete, purge) holds an exclusive
  ``flock`` on its bucket's ``.lock`` file, which works across processes and is released by
  the kernel when a holder dies. Reads take no lock. There are 4,096 buckets (256 × 16, made
  when first needed): a million sessions make 250 files a directory, and writers of
  different sessions almost never wait for each other.
* **No fsync by default** (``SESSION_FILE_FSYNC``): a process that crashes never leaves a
  corrupt record, but a power loss may lose the last writes of a session, or leave a file that
  then reads as no session (the user logs in again). Set it for durability across power loss
  at the cost of two ``fsync`` calls per write.
* **Threshold.** Counting the records means walking the directory, so it happens once every
  ``SESSION_FILE_THRESHOLD // 10`` writes of a process, which keeps its cost per write
  constant. When there are too many records, expired ones are deleted first, then the live ones
  closest to expiry.

Loading, refreshing, saving and deleting a session cost a fixed number of system calls
whatever the number of sessions. POSIX only: it needs ``fcntl.flock``.

**Flask-Session's files.** Flask-Session 0.8 keeps a session in ``SESSION_FILE_DIR`` as a
cachelib file: an expiry, then a pickle of the session dict (:mod:`._cachelib`). When
``SESSION_FILE_DIR`` is Flask-Session's directory, the store finds those files too: a session
missing from its own layout is looked up there, read without unpickling (a pickle holding
anything but session values is refused, never run), refreshed in place, and replaced by a
record of this store's layout on its next save; deleting a session deletes both. With
``SESSION_COMPAT_FLASK_SESSION`` it is the other way round: every save writes Flask-Session's
file (and keeps cachelib's file count, which Flask-Session's pruning relies on), a record of
this store's layout is rewritten as one when it is read, and saves stay conditional between
this store's writers (the bucket lock; a Flask-Session worker that writes in the moment
between the check and the rename loses its write, as it would to another Flask-Session
worker). Sessions in Flask-Session's layout are counted, purged and found by "log out
everywhere", but not listed by id: cachelib names its files by a hash of the id.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import itertools
import logging
import os
import re
import stat
import sys
import time
import typing as t
import urllib.parse

from flask_serverside import Capability
from flask_serverside import ClientErrors
from flask_serverside import ConfigurationError
from flask_serverside import CorruptRecord
from flask_serverside import Record
from flask_serverside import StoreError

from . import _cachelib
from . import _posix
from . import _record
from ._posix import OPEN_FLAGS
from ._posix import listdir
from ._posix import subdirectories
from ._posix import unlink
from ._safety import Owners

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask_serverside import StoreSettings

log = logging.getLogger("flask_serverside.filesystem")

P = t.ParamSpec("P")
R = t.TypeVar("R")

_SID = re.compile(r"[A-Za-z0-9_-]{1,512}")
_NAME = re.compile(r"[0-9a-f]{64}")
_TOP = re.compile(r"[0-9a-f]{2}")
_LEAF = re.compile(r"[0-9a-f]")
#: The most records kept by default (``SESSION_FILE_THRESHOLD``): about 400 MB of files.
DEFAULT_THRESHOLD = 100_000
#: Seconds between two warnings about expiry refreshes that failed.
REFRESH_WARNING_INTERVAL = 60.0
#: Every failed system call is a failure of the store, never an outage: there is no server.
_errors = ClientErrors("The session file store", unavailable=(), failed=(OSError,))


def _os_errors(method: c.Callable[P, R]) -> c.Callable[P, R]:
    """Raise :class:`StoreError` from the :class:`OSError` of a store operation."""
    doing = method.__name__.replace("_", " ")

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _errors(doing):
            return method(*args, **kwargs)

    return wrapper


class FileSystemStore:
    """Sessions as files under ``directory``, shared by every process that opens it.

    :param directory: where records live; created (mode ``0o700`` by default) when missing.
    :param key_prefix: separates the sessions of applications sharing the directory.
    :param threshold: the most records kept; ``0`` for no limit.
    :param mode: permission bits of the files; directories get the same bits plus the
        matching search bits (``0o600`` gives ``0o700``).
    :param fsync: flush each record to disk before it replaces the old one.
    :param clock: the current Unix time; tests pass a fake one.
    :param compat: write Flask-Session 0.8's files (``SESSION_COMPAT_FLASK_SESSION``).
    :raises ConfigurationError: when the directory cannot be created or written.

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
        Reads Flask-Session's files in ``directory``; the ``compat`` parameter.
    """

    capabilities: t.ClassVar[Capability] = (
        Capability.TOUCH
        | Capability.LOAD_AND_TOUCH
        | Capability.CONDITIONAL_SAVE
        | Capability.PURGE
        | Capability.ENUMERATE
        | Capability.USER_INDEX
    )
    url_schemes = ("file",)
    #: Flask-Session's filesystem type pickles the session dict: in the compatibility write
    #: mode the core hands over its own records, which the store pickles.
    flask_session_encoding = "pickle"
    config_keys = (
        "SESSION_FILE_DIR",
        "SESSION_FILE_THRESHOLD",
        "SESSION_FILE_MODE",
        "SESSION_FILE_FSYNC",
    )

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        key_prefix: str = "session:",
        threshold: int = DEFAULT_THRESHOLD,
        mode: int = 0o600,
        fsync: bool = False,
        clock: c.Callable[[], float] = time.time,
        compat: bool = False,
    ) -> None:
        if sys.platform == "win32":  # pragma: no cover
            raise ConfigurationError(
                "The filesystem session store needs POSIX file locks; on Windows set"
                " SESSION_TYPE to 'memory' for development or to a server store."
            )
        #: The absolute directory.
        self.directory = os.path.abspath(os.fspath(directory))
        self.key_prefix = key_prefix
        self.threshold = threshold
        self.mode = mode
        self.dir_mode = mode | (mode & 0o444) >> 2
        self.fsync = fsync
        self._clock = clock
        namespace = hashlib.sha256(key_prefix.encode()).hexdigest()[:32]
        self._sessions = os.path.join(self.directory, namespace, "sessions")
        self._users = os.path.join(self.directory, namespace, "users")
        self._exchange = _posix.exchange
        self._check_every = max(1, threshold // 10)
        self._writes = itertools.count(1)
        self._owners = Owners(self.dir_mode)
        self._last_refresh_warning = -REFRESH_WARNING_INTERVAL
        try:
            self._owners.check_directory(self.directory, follow=True)
            os.makedirs(os.path.dirname(self.directory), exist_ok=True)
            self._makedirs(self._sessions)
            self._makedirs(self._users)
            self._check_tree()
        except OSError as exc:
            raise ConfigurationError(
                f"The session directory {self.directory!r} cannot be created ({exc}): set"
                " SESSION_FILE_DIR to a directory this process can write."
            ) from exc
        if not os.access(self._sessions, os.W_OK | os.X_OK):
            raise ConfigurationError(
                f"The session directory {self.directory!r} is not writable by this process:"
                " fix its owner or set SESSION_FILE_DIR to another directory."
            )
        #: Whether saves write Flask-Session's files.
        self.compat = compat
        method = _cachelib.detect_hash(self.directory)
        #: Flask-Session's files in the directory, when it holds some or ``compat`` is on.
        self.legacy = (
            _cachelib.LegacyFiles(self.directory, method or "sha256", mode=mode, fsync=fsync)
            if method is not None or compat
            else None
        )

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> FileSystemStore:
        """Build the store from ``SESSION_FILE_DIR`` (or a ``file:///abs/dir`` URL in
        ``SESSION_TYPE``), ``SESSION_FILE_THRESHOLD``, ``SESSION_FILE_MODE`` and
        ``SESSION_FILE_FSYNC``.

        :raises ConfigurationError: naming the key to fix.
        """
        mode = settings.config.get("SESSION_FILE_MODE", 0o600)
        if (
            isinstance(mode, bool)
            or not isinstance(mode, int)
            or not 0 <= mode <= 0o777
            or mode & 0o600 != 0o600
            or mode & 0o002
        ):
            raise ConfigurationError(
                "SESSION_FILE_MODE must be permission bits that let the owner read and write,"
                " and other users not write, such as 0o600 (the default: owner only), 0o640 or"
                f" 0o660 (a group shares them), not {mode!r}."
            )
        return cls(
            _directory(settings),
            key_prefix=settings.key_prefix,
            threshold=settings.integer("SESSION_FILE_THRESHOLD", DEFAULT_THRESHOLD, minimum=0),
            mode=mode,
            fsync=settings.flag("SESSION_FILE_FSYNC", False),
            compat=settings.compat_flask_session,
        )

    def _check_tree(self) -> None:
        """Refuse the session directory when another user owns, or may write, it or one of
        the store's directories in it (see :mod:`._safety`): a fixed number of ``stat``
        calls, at most 4,611, whatever the number of sessions.

        :raises ConfigurationError: saying how to fix it.
        """
        check = self._owners.check_directory
        check(self.directory, follow=True)
        namespace = os.path.dirname(self._sessions)
        for path in (namespace, self._sessions, self._users):
            check(path, follow=False)
        for top in _posix.subdirectories(self._sessions, _TOP):
            check(top, follow=False)
            for leaf in _posix.subdirectories(top, _LEAF):
                check(leaf, follow=False)
        for top in _posix.subdirectories(self._users, _TOP):
            check(top, follow=False)

    # -- paths -------------------------------------------------------------------------------

    def _locate(self, sid: str) -> tuple[str, str]:
        """Return the bucket directory and the record path of ``sid``.

        :raises StoreError: when ``sid`` is not a session id.
        """
        if not isinstance(sid, str) or _SID.fullmatch(sid) is None:
            raise StoreError("not a session id")
        return self._record_path(self._name(sid))

    def _legacy_path(self, sid: str) -> str:
        """The path of ``sid``'s Flask-Session file (``sid`` checked by :meth:`_locate`)."""
        return t.cast(_cachelib.LegacyFiles, self.legacy).path(self.key_prefix + sid)

    def _name(self, sid: str) -> str:
        return hashlib.sha256((self.key_prefix + sid).encode()).hexdigest()

    def _record_path(self, name: str) -> tuple[str, str]:
        bucket = f"{self._sessions}{os.sep}{name[:2]}{os.sep}{name[2]}"
        path = f"{bucket}{os.sep}{name}"
        if _NAME.fullmatch(name) is None or os.path.normpath(path) != path:
            raise StoreError(f"refusing a session path outside {self.directory!r}")
        return bucket, path

    def _marker_path(self, user_id: str, name: str) -> str:
        user = hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()
        return os.path.join(self._users, user[:2], user, name)

    def _makedirs(self, path: str) -> None:
        missing = []
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for directory in reversed(missing):
            try:
                os.mkdir(directory, self.dir_mode)
            except FileExistsError:
                continue
            os.chmod(directory, self.dir_mode)  # whatever the umask

    def _create(self, path: str, flags: int) -> int:
        """Open ``path`` with ``os.O_CREAT``, creating its directories when missing."""
        for attempt in range(3):
            try:
                return os.open(path, flags | os.O_CREAT | OPEN_FLAGS, self.mode)
            except FileNotFoundError:
                if attempt == 2:
                    raise
                self._makedirs(os.path.dirname(path))  # purge may remove empty user dirs
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure(self, path: str, flags: int) -> int:
        """Open the lock or index file ``path``, creating it when missing with exactly the
        store's mode (so that a group the mode admits can use it)."""
        try:
            return os.open(path, flags | OPEN_FLAGS)
        except FileNotFoundError:
            pass
        try:
            fd = self._create(path, flags | os.O_EXCL)
        except FileExistsError:
            return os.open(path, flags | OPEN_FLAGS)
        try:
            os.fchmod(fd, self.mode)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @contextlib.contextmanager
    def _locked(self, bucket: str) -> c.Iterator[None]:
        # Open for writing: NFS emulates flock with fcntl locks, which need it to be exclusive.
        fd = self._ensure(f"{bucket}{os.sep}.lock", os.O_RDWR)
        try:
            _posix.lock(fd)
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- reading -----------------------------------------------------------------------------

    def _open_live(self, path: str, now: float) -> tuple[int, os.stat_result] | None:
        try:
            fd = os.open(path, os.O_RDONLY | OPEN_FLAGS)
        except FileNotFoundError:
            return None
        st = os.fstat(fd)
        if st.st_mtime <= now:
            os.close(fd)
            return None
        if not self._owners.trusts(st):
            os.close(fd)
            log.warning(
                "ignoring the session file %s: it belongs to uid %d, not to this process's user",
                path,
                st.st_uid,
            )
            return None
        return fd, st

    def _read(self, sid: str, ttl: int | None) -> Record | None:
        """The live record of ``sid`` in either layout, the mode's own first; in the
        compatibility write mode, a record of this store's layout is rewritten as
        Flask-Session's."""
        bucket, path = self._locate(sid)
        now = self._clock()
        legacy = self.legacy
        if legacy is not None and self.compat:
            record = legacy.read(self._legacy_path(sid), now, ttl)
            if record is not None:
                return record
        found = self._read_own(sid, path, now, ttl)
        if found is None:
            if legacy is not None and not self.compat:
                return legacy.read(self._legacy_path(sid), now, ttl)
            return None
        record, expires = found
        if self.compat:
            return self._to_legacy(sid, bucket, path, record, expires)
        return record

    def _read_own(
        self, sid: str, path: str, now: float, ttl: int | None
    ) -> tuple[Record, float] | None:
        """The live record of ``sid`` in this store's layout, and its expiry."""
        opened = self._open_live(path, now)
        if opened is None:
            return None
        fd, st = opened
        expires = st.st_mtime
        try:
            buffer = _posix.read_all(fd, st.st_size)
            meta = _record.parse(buffer)
            if meta is None or meta.sid != sid:
                log.warning("ignoring the unreadable session file %s", path)
                return None
            if ttl is not None:
                if self._refresh(fd, now, ttl):
                    expires = now + ttl
        finally:
            os.close(fd)
        return Record(buffer[meta.end :], meta.token), expires

    def _to_legacy(
        self, sid: str, bucket: str, path: str, record: Record, expires: float
    ) -> Record:
        """Rewrite ``record``, just read from ``path``, as Flask-Session's file, unless it was
        saved again meanwhile; return the record as it now stands."""
        legacy = t.cast(_cachelib.LegacyFiles, self.legacy)
        with self._locked(bucket):
            current = self._meta(path, self._clock())
            if current is None or current.token != record.version:
                return record  # saved or deleted meanwhile: a save against it fails and merges
            try:
                token = legacy.write(self._legacy_path(sid), record.data, int(expires))
            except (TypeError, ValueError, CorruptRecord) as exc:
                # Kept in this store's layout and served as it is (a record the core cannot
                # decode is reported by the core, once).
                log.info("session %s… cannot be written as a Flask-Session file: %s", sid[:6], exc)
                return record
            unlink(path)
        return Record(record.data, token)

    def _refresh(self, fd: int, now: float, ttl: int) -> bool:
        """Refresh the expiry of the record open at ``fd``; return whether it was refreshed.
        A failure (a read-only disk, an immutable file) is logged, at most once per
        :data:`REFRESH_WARNING_INTERVAL`, and the record is served as it is: it expires when it
        was going to."""
        try:
            _posix.set_expiry(fd, now, ttl)
            return True
        except OSError as exc:
            clock = time.monotonic()
            if clock - self._last_refresh_warning >= REFRESH_WARNING_INTERVAL:
                self._last_refresh_warning = clock
                log.warning(
                    "could not refresh the expiry of a session (a read-only disk?); serving it"
                    " without: %s",
                    exc,
                )
            return False

    def _meta(self, path: str, now: float) -> _record.Meta | None:
        """Return the header of the live, well-formed record at ``path``, or ``None``."""
        opened = self._open_live(path, now)
        if opened is None:
            return None
        fd, st = opened
        try:
            meta = _record.parse(os.pread(fd, _record.HEAD_SIZE, 0))
            if meta is None and st.st_size > _record.HEAD_SIZE:  # a long user id
                meta = _record.parse(_posix.read_all(fd, st.st_size))
        finally:
            os.close(fd)
        if meta is None or self._name(meta.sid) != path[-64:]:
            return None
        return meta

    @_os_errors
    def load(self, sid: str) -> Record | None:
        """Return the live record of ``sid``: one ``open``, ``fstat``, ``read``, ``close``."""
        return self._read(sid, None)

    @_os_errors
    def load_and_touch(self, sid: str, ttl: int) -> Record | None:
        """Load, and set the expiry of the file read to ``ttl`` seconds from now."""
        return self._read(sid, ttl)

    @_os_errors
    def touch(self, sid: str, ttl: int) -> bool:
        """Set the expiry of a live record to ``ttl`` seconds from now; a ``stat`` and a
        ``utime`` (for Flask-Session's file, a rewrite of its expiry in place)."""
        _, path = self._locate(sid)
        now = self._clock()
        legacy = self.legacy
        if legacy is not None and self.compat and legacy.touch(self._legacy_path(sid), now, ttl):
            return True
        try:
            if os.stat(path, follow_symlinks=False).st_mtime <= now:
                return False
            _posix.set_expiry(path, now, ttl)
        except FileNotFoundError:
            if legacy is not None and not self.compat:
                return legacy.touch(self._legacy_path(sid), now, ttl)
            return False
        return True

    # -- writing -----------------------------------------------------------------------------

    def _write(self, path: str, sid: str, data: bytes, ttl: int, user_id: str | None) -> None:
        """Replace the record at ``path``; the caller holds its bucket's lock."""
        now = self._clock()
        payload = _record.encode(sid, user_id, data)
        temporary = path + ".tmp"
        fd = self._create(temporary, os.O_WRONLY | os.O_TRUNC)
        try:
            try:
                os.fchmod(fd, self.mode)  # whatever the umask, or a leftover's mode
                _posix.write_all(fd, payload)
                _posix.set_expiry(fd, now, ttl)  # before the record appears
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._install(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        if self.fsync:
            directory = os.open(os.path.dirname(path), os.O_RDONLY | OPEN_FLAGS)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        if user_id is not None:
            self._mark(user_id, path[-64:], sid)

    def _mark(self, user_id: str, name: str, sid: str) -> None:
        """Index record ``name`` (of ``sid``) under ``user_id``: an entry holding the id, so
        that a session in Flask-Session's layout, whose file name is a hash, is found too."""
        marker = self._marker_path(user_id, name)
        if os.path.lexists(marker):
            return
        try:
            fd = self._create(marker, os.O_WRONLY | os.O_EXCL)
        except FileExistsError:
            return
        try:
            os.fchmod(fd, self.mode)
            os.write(fd, sid.encode("ascii"))
        finally:
            os.close(fd)

    def _write_legacy(
        self, path: str, sid: str, data: bytes, ttl: int, user_id: str | None
    ) -> None:
        """Replace the record of ``sid`` by Flask-Session's file; the caller holds its bucket's
        lock."""
        legacy = t.cast(_cachelib.LegacyFiles, self.legacy)
        try:
            legacy.write(self._legacy_path(sid), data, int(self._clock()) + ttl)
        except (TypeError, ValueError, CorruptRecord) as exc:
            raise StoreError(
                f"the session cannot be written as a Flask-Session file: {exc}"
                " (SESSION_COMPAT_FLASK_SESSION is on)"
            ) from exc
        unlink(path)
        if user_id is not None:
            self._mark(user_id, path[-64:], sid)

    def _save_locked(self, path: str, sid: str, data: bytes, ttl: int, user_id: str | None) -> None:
        """Save in the mode's layout and drop the record of the other one; the caller holds
        the bucket's lock."""
        if self.compat:
            self._write_legacy(path, sid, data, ttl, user_id)
            return
        self._write(path, sid, data, ttl, user_id)
        if self.legacy is not None:
            self.legacy.delete(self._legacy_path(sid))

    def _version(self, sid: str, path: str, now: float) -> object:
        """The version of the live record of ``sid`` that a load would return, or ``None``."""
        legacy = self.legacy
        if legacy is not None and self.compat:
            token = legacy.current(self._legacy_path(sid), now)
            if token is not None:
                return token
        current = self._meta(path, now)
        if current is not None:
            return current.token
        if legacy is not None and not self.compat:
            return legacy.current(self._legacy_path(sid), now)
        return None

    def _install(self, temporary: str, path: str) -> None:
        """Put the record written at ``temporary`` in place of the one at ``path``, atomically.

        Where the filesystem can, the two are exchanged and the old one unlinked: ext4 flushes
        the new file's data when a rename replaces a file (``auto_da_alloc``), which doubles the
        cost of a write, and an exchange does not. Elsewhere, ``os.replace``.
        """
        if self._exchange is not None:
            try:
                self._exchange(temporary, path)
            except FileNotFoundError:
                pass  # no record to exchange with: a rename does not flush then
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                self._exchange = None  # this filesystem cannot exchange
            else:
                os.unlink(temporary)  # the old record, which readers may still hold open
                return
        os.replace(temporary, path)

    def _after_write(self) -> None:
        if self.threshold and next(self._writes) % self._check_every == 0:
            try:
                self._enforce_threshold()
            except OSError:
                log.warning("could not enforce SESSION_FILE_THRESHOLD", exc_info=True)

    @_os_errors
    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        """Replace the record of ``sid`` atomically, under the bucket lock."""
        bucket, path = self._locate(sid)
        with self._locked(bucket):
            self._save_locked(path, sid, data, ttl, user_id)
        self._after_write()

    @_os_errors
    def save_if(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> bool:
        """Save when the live record's version token is ``expected``'s (or there is no live
        record and ``expected`` is ``None``); the bucket lock makes check and write atomic."""
        bucket, path = self._locate(sid)
        with self._locked(bucket):
            wanted = None if expected is None else expected.version
            if self._version(sid, path, self._clock()) != wanted:
                return False
            self._save_locked(path, sid, data, ttl, user_id)
        self._after_write()
        return True

    @_os_errors
    def delete(self, sid: str) -> None:
        """Unlink the record of ``sid`` under the bucket lock (its user index entry goes at the
        next purge or user lookup)."""
        bucket, path = self._locate(sid)
        legacy = self.legacy
        legacy_path = None if legacy is None else self._legacy_path(sid)
        if not os.path.lexists(path) and (legacy_path is None or not os.path.lexists(legacy_path)):
            return
        with self._locked(bucket):
            unlink(path)
            if legacy is not None and legacy_path is not None:
                legacy.delete(legacy_path)

    # -- the whole directory -----------------------------------------------------------------

    def _buckets(self) -> c.Iterator[tuple[str, list[os.DirEntry[str]]]]:
        """Yield each bucket directory of this key prefix with its entries."""
        for top in subdirectories(self._sessions, _TOP):
            for leaf in subdirectories(top, _LEAF):
                yield leaf, listdir(leaf)

    def _records(self) -> c.Iterator[tuple[str, str, os.stat_result]]:
        """Yield the bucket, path and ``lstat`` of every record file."""
        for bucket, entries in self._buckets():
            for entry in entries:
                if _NAME.fullmatch(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        st = entry.stat(follow_symlinks=False)
                        if stat.S_ISREG(st.st_mode):
                            yield bucket, entry.path, st

    def _unlink_unchanged(self, bucket: str, path: str, seen: os.stat_result) -> bool:
        """Delete ``path`` if it is still the file ``seen``, under the bucket lock."""
        with self._locked(bucket):
            try:
                st = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if (st.st_ino, st.st_mtime_ns) != (seen.st_ino, seen.st_mtime_ns):
                return False  # replaced or refreshed meanwhile
            return unlink(path)

    @_os_errors
    def purge_expired(self) -> int:
        """Delete expired records, writes left by crashed writers and index entries of
        deleted sessions. It walks the directory: one ``stat`` per file, no ``open`` (but a
        read of the expiry of each of Flask-Session's files).

        :returns: how many records were deleted.
        """
        now = self._clock()
        removed = 0 if self.legacy is None else self.legacy.purge(now)
        for bucket, entries in self._buckets():
            leftovers = [entry.path for entry in entries if entry.name.endswith(".tmp")]
            if leftovers:
                with self._locked(bucket):  # no write is under way: these are left by crashes
                    for path in leftovers:
                        unlink(path)
        for bucket, path, st in self._records():
            if st.st_mtime <= now:
                removed += self._unlink_unchanged(bucket, path, st)
        for top in subdirectories(self._users, _TOP):
            for user in subdirectories(top, _NAME):
                for entry in listdir(user):
                    if _NAME.fullmatch(entry.name) is None:
                        continue
                    bucket, path = self._record_path(entry.name)
                    if not os.path.lexists(path) and self._legacy_sid(entry.path, now) is None:
                        with self._locked(bucket):
                            if not os.path.lexists(path):
                                unlink(entry.path)
                with contextlib.suppress(OSError):
                    os.rmdir(user)  # only when empty
        return removed

    def _enforce_threshold(self) -> None:
        """Delete the expired records; then, while more than :attr:`threshold` live records
        remain, evict the sessions of no user (anonymous visitors) closest to expiry first,
        and those of signed-in users only when there are not enough of those."""
        now = self._clock()
        live = []
        for bucket, path, st in self._records():
            if st.st_mtime <= now:
                self._unlink_unchanged(bucket, path, st)
            else:
                live.append((st.st_mtime, bucket, path, st))
        excess = len(live) - self.threshold
        if excess <= 0:
            return
        live.sort(key=lambda record: record[0])  # closest to expiry first
        anonymous: list[tuple[float, str, str, os.stat_result]] = []
        signed_in: list[tuple[float, str, str, os.stat_result]] = []
        for record in live:
            if len(anonymous) >= excess:
                break
            meta = self._meta(record[2], now)
            if meta is not None and meta.user_id is not None:
                signed_in.append(record)
            else:
                anonymous.append(record)
        evicted = users = 0
        for position, (_, bucket, path, st) in enumerate((anonymous + signed_in)[:excess]):
            if self._unlink_unchanged(bucket, path, st):
                evicted += 1
                users += position >= len(anonymous)
        if evicted:
            log.warning(
                "evicted %d live sessions (%d of signed-in users) to stay under"
                " SESSION_FILE_THRESHOLD = %d",
                evicted,
                users,
                self.threshold,
            )

    @_os_errors
    def count(self) -> int:
        """Count live records: one ``stat`` per file (and a read of the expiry of each of
        Flask-Session's files)."""
        now = self._clock()
        legacy = 0 if self.legacy is None else self.legacy.count(now)
        return legacy + sum(1 for _, _, st in self._records() if st.st_mtime > now)

    @_os_errors
    def iter_sids(self) -> c.Iterator[str]:
        """Return the ids of live records, read from their headers (not those of
        Flask-Session's files, which are named by a hash of the id)."""
        now = self._clock()
        metas = (self._meta(path, now) for _, path, st in self._records() if st.st_mtime > now)
        return iter([meta.sid for meta in metas if meta is not None])

    @_os_errors
    def user_sids(self, user_id: str) -> list[str]:
        """Return the ids of live sessions last saved for ``user_id``, exactly; index entries
        of sessions deleted, expired or now of another user are removed on the way."""
        now = self._clock()
        sids = []
        directory = os.path.dirname(self._marker_path(user_id, "0" * 64))
        for entry in listdir(directory):
            if _NAME.fullmatch(entry.name) is None:
                continue
            bucket, path = self._record_path(entry.name)
            meta = self._meta(path, now)
            if meta is not None and meta.user_id == user_id:
                sids.append(meta.sid)
                continue
            legacy_sid = None if meta is not None else self._legacy_sid(entry.path, now)
            if legacy_sid is not None:
                sids.append(legacy_sid)  # the core loads it and checks its user
                continue
            with self._locked(bucket):
                meta = self._meta(path, now)
                if meta is None or meta.user_id != user_id:
                    unlink(entry.path)
        return sids

    def _legacy_sid(self, marker: str, now: float) -> str | None:
        """The id a user index entry names, when that session lives in Flask-Session's
        layout."""
        if self.legacy is None:
            return None
        try:
            with open(marker, "rb") as file:
                sid = file.read(600).decode("ascii", "replace")
        except FileNotFoundError:
            return None
        if _SID.fullmatch(sid) is None or self._name(sid) != os.path.basename(marker):
            return None
        return sid if self.legacy.current(self._legacy_path(sid), now) is not None else None

    def close(self) -> None:
        """Nothing to release: no descriptor stays open between calls."""


def _directory(settings: StoreSettings) -> str:
    configured = settings.config.get("SESSION_FILE_DIR")
    if configured is not None and (
        not isinstance(configured, (str, os.PathLike)) or not os.fspath(configured)
    ):
        raise ConfigurationError(f"SESSION_FILE_DIR must be a directory path, not {configured!r}.")
    if settings.url is not None:
        parts = urllib.parse.urlsplit(settings.url)
        path = urllib.parse.unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/") or parts.query:
            raise ConfigurationError(
                f"SESSION_TYPE = {settings.url!r} is not a file URL of an absolute directory:"
                " write 'file:///var/lib/myapp/sessions' (three slashes), or set SESSION_TYPE ="
                " 'filesystem' and SESSION_FILE_DIR to the directory."
            )
        if configured is not None and os.path.abspath(configured) != os.path.normpath(path):
            raise ConfigurationError(
                f"SESSION_TYPE = {settings.url!r} and SESSION_FILE_DIR = {configured!r} name"
                " different directories: set only one of them."
            )
        return path
    if configured is not None:
        return os.fspath(configured)
    if settings.app is None:
        raise ConfigurationError(
            "SESSION_FILE_DIR is not set and there is no application whose instance folder"
            " could hold the sessions: set SESSION_FILE_DIR to a directory."
        )
    return os.path.join(settings.app.instance_path, "flask_session")
