"""The sessions table: its definition, and how to bring an older one (Flask-Session's) up to
date."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from sqlalchemy.dialects import mysql


def define_table(
    metadata: sa.MetaData,
    name: str = "sessions",
    *,
    schema: str | None = None,
    sequence: str | None = None,
) -> sa.Table:
    """Define the sessions table in ``metadata``, so migrations (Alembic, Flask-Migrate) can
    create it: ``define_table(db.metadata)``.

    ``session_id`` is unique and case-sensitive (binary collation on MySQL); ``expiry`` (naive
    UTC) and ``user_id`` are indexed; ``data`` holds up to 4 GB on MySQL (``LONGBLOB``).

    :param name: ``SESSION_SQLALCHEMY_TABLE``.
    :param schema: ``SESSION_SQLALCHEMY_SCHEMA``.
    :param sequence: ``SESSION_SQLALCHEMY_SEQUENCE``: a sequence for ``id`` on databases that
        need one.
    """
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    id_default = [sa.Sequence(sequence, schema=schema)] if sequence else []
    return sa.Table(
        name,
        metadata,
        sa.Column("id", id_type, *id_default, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(512), nullable=False, unique=True),
        sa.Column(
            "data",
            sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "expiry",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
            index=True,
        ),
        sa.Column("version", sa.BigInteger),
        sa.Column("user_id", sa.String(255), index=True),
        schema=schema,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def upgrade_message(
    table: sa.Table, missing: list[sa.Column[t.Any]], indexes: list[sa.Index], dialect: t.Any
) -> str:
    """Say how to bring an existing table (such as Flask-Session's) up to date."""
    name = table.fullname
    statements = [
        f"ALTER TABLE {name} ADD COLUMN {col.name} {col.type.compile(dialect=dialect)};"
        for col in missing
    ]
    statements += [
        str(sa.schema.CreateIndex(index).compile(dialect=dialect)).strip() + ";"
        for index in indexes
    ]
    names = ", ".join(col.name for col in missing)
    return (
        f"The session table {name!r} lacks the columns {names} (a table made by Flask-Session"
        " needs two more). Add them, keeping the sessions it holds: "
        + " ".join(statements)
        + " Or set SESSION_SQLALCHEMY_TABLE to a new table name."
    )
