"""A flask-serverside session store on the standard library's sqlite3.

::

    app.config["SESSION_TYPE"] = "sqlite3"
    app.config["SESSION_SQLITE3_PATH"] = "sessions.db"  # in the instance folder
    Session(app)
"""

from __future__ import annotations

from .store import SQLite3Store

__all__ = ["SQLite3Store"]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
