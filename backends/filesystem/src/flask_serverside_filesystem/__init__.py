"""A filesystem session store for flask-serverside: ``SESSION_TYPE = "filesystem"``."""

from __future__ import annotations

from .store import FileSystemStore

__all__ = ["FileSystemStore"]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
