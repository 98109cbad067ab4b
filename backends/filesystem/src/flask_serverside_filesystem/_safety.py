"""Who may own the session directory and its files: the rule ssh applies to ``~/.ssh``.

A user who can write in the session directory can plant a record (a session signed in as
anyone) or a directory of their own where records will go. So the directory, and the store's
subdirectories in it, must belong to this process's user (or to root) and must not be writable
by other users; group write is accepted only when ``SESSION_FILE_MODE`` shares the files with
a group (``0o660``), and then a group member may own them too. A record file owned by anyone
else is never loaded.
"""

from __future__ import annotations

import os
import stat

from flask_serverside import ConfigurationError


class Owners:
    """The owners whose directories and files the store trusts.

    :param dir_mode: the mode the store gives its directories; its group write bit means
        the files are shared with a group.
    """

    def __init__(self, dir_mode: int) -> None:
        self.uid = os.geteuid()
        #: Whether the configured mode lets the group write (workers under several users).
        self.shared = bool(dir_mode & stat.S_IWGRP)
        self.groups = frozenset([os.getegid(), *os.getgroups()])
        #: Write bits a directory may have: the owner's, and the group's when shared.
        self.allowed_write = stat.S_IWUSR | (stat.S_IWGRP if self.shared else 0)

    def trusts(self, st: os.stat_result) -> bool:
        """Whether a file with this ``stat`` belongs to a trusted owner."""
        if st.st_uid in (self.uid, 0):
            return True
        return self.shared and st.st_gid in self.groups

    def check_directory(self, path: str, *, follow: bool) -> None:
        """Refuse ``path`` unless it is a directory of a trusted owner that no one else can
        write; a missing path is fine (the store creates it).

        :param follow: follow a symbolic link (``SESSION_FILE_DIR`` itself may be one; the
            store's subdirectories may not).
        :raises ConfigurationError: saying what is wrong and how to fix it.
        """
        try:
            st = os.stat(path, follow_symlinks=follow)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise ConfigurationError(
                f"{path!r} in the session directory is {kind}: the store never follows links"
                " there. Remove it, or set SESSION_FILE_DIR to a directory of its own."
            )
        user = _user_name(self.uid)
        if not self.trusts(st):
            raise ConfigurationError(
                f"The session directory {path!r} belongs to {_user_name(st.st_uid)!r}, not to"
                f" {user!r} who runs this application: its owner could plant sessions there"
                f" (signed in as anyone) or read them. Run: chown -R {user} {path!r}, or set"
                " SESSION_FILE_DIR to a directory of its own."
            )
        loose = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) & ~self.allowed_write
        if loose:
            who = "other users" if loose & stat.S_IWOTH else "its group"
            share = "" if self.shared else " (SESSION_FILE_MODE = 0o660 shares it with a group)"
            raise ConfigurationError(
                f"The session directory {path!r} is writable by {who} (mode"
                f" {stat.S_IMODE(st.st_mode):#o}): they could plant sessions there, signed in"
                f" as anyone. Run: chmod go-w {path!r}{share}, or set SESSION_FILE_DIR to a"
                " directory of its own."
            )


def _user_name(uid: int) -> str:
    import pwd  # POSIX only, as the store is

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
