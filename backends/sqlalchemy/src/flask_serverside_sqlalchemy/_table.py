"""The sessions table: its definition, and how to bring an older one (Flask-Session's) up to
date: :func:`upgrade_statements` are what the store runs itself when it may create the table
(``SESSION_SQLALCHEMY_CREATE_TABLE``), and what :func:`upgrade_message` asks for otherwise."""

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


def upgrade_statements(
    table: sa.Table, missing: list[sa.Column[t.Any]], indexes: list[sa.Index], dialect: t.Any
) -> list[str]:
    """Return the ``ALTER TABLE ... ADD COLUMN`` and ``CREATE INDEX`` statements that bring an
    existing ``table`` (such as Flask-Session's) up to date, in ``dialect``'s SQL."""
    quote = dialect.identifier_preparer
    name = quote.format_table(table)
    statements = [
        f"ALTER TABLE {name} ADD COLUMN {quote.format_column(col)}"
        f" {col.type.compile(dialect=dialect)}"
        for col in missing
    ]
    statements += [
        str(sa.schema.CreateIndex(index).compile(dialect=dialect)).strip() for index in indexes
    ]
    return statements


def upgrade_message(
    table: sa.Table, missing: list[sa.Column[t.Any]], indexes: list[sa.Index], dialect: t.Any
) -> str:
    """Say how to bring an existing table (such as Flask-Session's) up to date."""
    statements = " ".join(
        statement + ";" for statement in upgrade_statements(table, missing, indexes, dialect)
    )
    names = ", ".join(col.name for col in missing) or "none"
    return (
        f"The session table {table.fullname!r} lacks columns ({names}) or indexes of this"
        " store (a table made by Flask-Session needs two more columns and two indexes). Add"
        f" them, keeping the sessions it holds: {statements} Or set"
        " SESSION_SQLALCHEMY_CREATE_TABLE = True (the store then adds them itself), or set"
        " SESSION_SQLALCHEMY_TABLE to a new table name."
    )
