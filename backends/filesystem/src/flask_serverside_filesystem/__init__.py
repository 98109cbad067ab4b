"""A filesystem session store for flask-serverside: ``SESSION_TYPE = "filesystem"``."""

from __future__ import annotations

from .store import FileSystemStore

__all__ = ["FileSystemStore"]
