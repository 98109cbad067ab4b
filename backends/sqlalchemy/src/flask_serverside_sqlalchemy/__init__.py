"""flask-serverside-sqlalchemy: Flask server-side sessions in a SQL database, through
SQLAlchemy (SQLite, PostgreSQL, MySQL and MariaDB)."""

from __future__ import annotations

from ._table import define_table
from .store import SQLAlchemyStore

__all__ = ["SQLAlchemyStore", "define_table"]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
