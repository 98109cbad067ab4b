"""A REPLACE_ME session store for flask-serverside: ``SESSION_TYPE = "REPLACE_ME"``."""

from __future__ import annotations

from .store import ReplaceMeStore

__all__ = ["ReplaceMeStore"]
