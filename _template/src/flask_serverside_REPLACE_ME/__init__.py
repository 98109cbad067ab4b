"""A REPLACE_ME session store for flask-serverside: ``SESSION_TYPE = "REPLACE_ME"``."""

from __future__ import annotations

from .store import ReplaceMeStore

__all__ = ["ReplaceMeStore"]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
