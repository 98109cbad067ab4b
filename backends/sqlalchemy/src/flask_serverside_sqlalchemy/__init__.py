"""flask-serverside-sqlalchemy: Flask server-side sessions in a SQL database, through
SQLAlchemy (SQLite, PostgreSQL, MySQL and MariaDB)."""

from __future__ import annotations

from .store import SQLAlchemyStore
from .store import define_table

__all__ = ["SQLAlchemyStore", "define_table"]

SQLAlchemyStore.__module__ = __name__
