"""Checking captured log records for secrets: whole session ids, user ids, session data.

A session id is a bearer token, so no log line may hold one whole (``sid[:6] + "…"`` is the
most a line may show), and neither may it hold a user id or what a session stores. Log records
are checked as a handler would write them: the formatted message, and the formatted traceback
with every chained exception (where a client library's message, such as SQLAlchemy's
``[parameters: ...]``, would show them)::

    def test_no_secret_in_logs(caplog):
        with caplog.at_level(logging.DEBUG):
            ...  # requests through a failing store
        assert_no_secrets(caplog.records, [sid, user_id, marker])

.. versionadded:: 0.2
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t

if t.TYPE_CHECKING:
    import collections.abc as c

#: Shorter values are not looked for: they could occur by chance (and would not identify much).
MIN_SECRET_LENGTH = 8


@dataclasses.dataclass(frozen=True)
class Leak:
    """A secret found in a log record."""

    #: The logger's name.
    logger: str
    #: Where in the record: ``"message"``, ``"traceback"`` or ``"stack"``.
    where: str
    #: The first characters of the secret (never all of it).
    secret: str
    #: The text around it, with the secret cut to its first characters.
    context: str

    def __str__(self) -> str:
        return f"{self.logger} ({self.where}) holds {self.secret}…: {self.context}"


def record_texts(record: logging.LogRecord) -> c.Iterator[tuple[str, str]]:
    """Yield ``(where, text)`` for what a handler would write of ``record``: its message, its
    traceback (chained exceptions included) and its stack."""
    formatter = logging.Formatter()
    yield "message", record.getMessage()
    if record.exc_info and record.exc_info[0] is not None:
        yield "traceback", formatter.formatException(record.exc_info)
    elif record.exc_text:  # a traceback formatted already, its exception gone
        yield "traceback", record.exc_text
    if record.stack_info:
        yield "stack", formatter.formatStack(record.stack_info)


def find_secrets(
    records: c.Iterable[logging.LogRecord],
    secrets: c.Iterable[str | bytes],
    *,
    min_length: int = MIN_SECRET_LENGTH,
) -> list[Leak]:
    """Return every place one of ``secrets`` occurs whole in ``records``.

    :param records: log records (pytest's ``caplog.records``).
    :param secrets: session ids, user ids, values sessions stored; bytes are looked for as
        text too. Values shorter than ``min_length`` are skipped.
    """
    wanted = set()
    for secret in secrets:
        text = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else str(secret)
        if len(text) >= min_length:
            wanted.add(text)
    leaks = []
    for record in records:
        for where, text in record_texts(record):
            for secret in wanted:
                at = text.find(secret)
                if at < 0:
                    continue
                context = text[max(0, at - 60) : at] + secret[:6] + "…"
                context += text[at + len(secret) : at + len(secret) + 60]
                leaks.append(Leak(record.name, where, secret[:6], context.replace("\n", " ")))
    return leaks


def assert_no_secrets(
    records: c.Iterable[logging.LogRecord],
    secrets: c.Iterable[str | bytes],
    *,
    min_length: int = MIN_SECRET_LENGTH,
) -> None:
    """Fail, listing each place, when one of ``secrets`` occurs whole in ``records``; see
    :func:`find_secrets`.

    :raises AssertionError: naming the logger and showing the text around each secret.
    """
    records = list(records)
    leaks = find_secrets(records, secrets, min_length=min_length)
    if leaks:
        lines = "\n".join(f"  {leak}" for leak in leaks[:20])
        raise AssertionError(f"{len(leaks)} secrets in {len(records)} log records:\n{lines}")
