"""Serialization: ``dumps`` + ``loads`` of a typical session, ours against flask-serverside 0.1.

No store and no request: the serializer alone, in this process. Contenders, each in both formats:

- **ours**: :class:`flask_serverside.serialization.SessionSerializer` (exact types);
- **0.1**: the serializer of flask-serverside 0.1 (Flask's ``TaggedJSONSerializer`` tags, then
  msgspec), kept below as the baseline: it exists nowhere else any more;
- **flask-session**: Flask-Session 0.8's ``MsgSpecSerializer`` (plain msgspec, no tags: tuples
  come back as lists, a naive datetime as a string), when it is installed.

Sessions: a typical one (10 keys: the user id and Flask-Login's keys, a CSRF token, a cart, a
few settings and a flash list of two ``(category, message)`` tuples) and the same one once the
flashes were read (no tagged value left: ours then skips the untag walk). One round times
``number`` operations of every cell in a shuffled order; rounds repeat and the first is a
warm-up; the reported figures are medians over rounds, and ratios the median of per-round
ratios.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import timeit
import typing as t

import msgspec
from flask.json.tag import TaggedJSONSerializer

from flask_serverside.serialization import SessionSerializer

if t.TYPE_CHECKING:
    import collections.abc as c

#: rounds, operations per cell per round.
PRESETS = {"smoke": (3, 20), "quick": (15, 2000), "full": (40, 5000)}

TYPICAL: dict[str, t.Any] = {
    "_permanent": True,
    "_user_id": "42",
    "_fresh": True,
    "_id": "9f" * 64,  # Flask-Login's session identifier: a sha512 hex digest
    "csrf_token": "c0ffee" * 7,
    "locale": "en_GB",
    "theme": "dark",
    "cart": ["sku-1041", "sku-2203", "sku-0007"],
    "visits": 12,
    "_flashes": [("message", "Welcome back, Alice!"), ("info", "3 items are in your cart")],
}
SESSIONS = {
    "typical (flash list)": TYPICAL,
    "typical, flashes read": {k: v for k, v in TYPICAL.items() if k != "_flashes"},
}
FORMATS = ("msgpack", "json")


class Serializer01:
    """flask-serverside 0.1's ``SessionSerializer`` (dumps and loads), the baseline."""

    _PLAIN_TYPES = frozenset([str, int, float, bool, type(None)])
    _MSGPACK_START = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])

    def __init__(self, format: str) -> None:
        self.format = format
        self.tagger = TaggedJSONSerializer()
        self._msgpack_encoder = msgspec.msgpack.Encoder()
        self._json_encoder = msgspec.json.Encoder()

    def dumps(self, data: c.Mapping[str, t.Any]) -> bytes:
        if len(data) == 1:
            tagged = self.tagger.tag(dict(data))
        else:
            tag = self.tagger.tag
            tagged = {
                key: value if type(value) in self._PLAIN_TYPES else tag(value)
                for key, value in data.items()
            }
        if self.format == "msgpack":
            return self._msgpack_encoder.encode(tagged)
        return self._json_encoder.encode(tagged)

    def loads(self, raw: bytes) -> dict[str, t.Any]:
        first = raw[0]
        if first == 0x7B:
            value = json.loads(raw, object_hook=self.tagger.untag)
        elif first in self._MSGPACK_START:
            value = self._untag(msgspec.msgpack.decode(raw))
        else:
            raise ValueError("not a record")
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise ValueError("not a mapping")
        return value

    def _untag(self, value: t.Any) -> t.Any:
        if isinstance(value, dict):
            return self.tagger.untag({key: self._untag(item) for key, item in value.items()})
        if isinstance(value, list):
            return [self._untag(item) for item in value]
        return value


class _FlaskSession08:
    """Flask-Session 0.8's serializer behind our dumps/loads names."""

    def __init__(self, format: str) -> None:
        from flask import Flask
        from flask_session.base import MsgSpecSerializer

        self._serializer = MsgSpecSerializer(Flask("bench"), format)

    def dumps(self, data: c.Mapping[str, t.Any]) -> bytes:
        return t.cast(bytes, self._serializer.encoder.encode(dict(data)))

    def loads(self, raw: bytes) -> dict[str, t.Any]:
        return t.cast("dict[str, t.Any]", self._serializer.decode(raw))


def contenders(format: str) -> dict[str, t.Any]:
    found: dict[str, t.Any] = {"ours": SessionSerializer(format), "0.1": Serializer01(format)}
    try:
        found["flask-session"] = _FlaskSession08(format)
    except ImportError:
        pass
    return found


def run_serialization(preset: str) -> dict[str, t.Any]:
    """Time every (session, format, contender, operation) cell; return the raw samples."""
    rounds, number = PRESETS[preset]
    cells: list[dict[str, t.Any]] = []
    timers = []
    for session_name, data in SESSIONS.items():
        for fmt in FORMATS:
            for name, serializer in contenders(fmt).items():
                raw = serializer.dumps(data)
                for operation, call in (
                    ("dumps", lambda s=serializer, d=data: s.dumps(d)),
                    ("loads", lambda s=serializer, r=raw: s.loads(r)),
                    ("both", lambda s=serializer, d=data: s.loads(s.dumps(d))),
                ):
                    cell = {
                        "session": session_name,
                        "format": fmt,
                        "contender": name,
                        "operation": operation,
                        "bytes": len(raw),
                        "samples": [],
                    }
                    cells.append(cell)
                    timers.append((cell, timeit.Timer(call)))
    order = list(range(len(timers)))
    for round_number in range(rounds + 1):
        random.shuffle(order)
        for index in order:
            cell, timer = timers[index]
            seconds = timer.timeit(number)  # timeit turns the garbage collector off
            if round_number:  # round 0 is the warm-up
                cell["samples"].append(seconds / number * 1e6)
        gc.collect()
    return {"rounds": rounds, "number": number, "cells": cells}


def _index(results: dict[str, t.Any]) -> dict[tuple[str, str, str, str], dict[str, t.Any]]:
    return {
        (c["session"], c["format"], c["contender"], c["operation"]): c for c in results["cells"]
    }


def ratios(results: dict[str, t.Any]) -> dict[tuple[str, str], float]:
    """Per (session, format): ours ÷ 0.1 for dumps + loads, median of per-round ratios."""
    cells = _index(results)
    out = {}
    for session_name in SESSIONS:
        for fmt in FORMATS:
            ours = cells[(session_name, fmt, "ours", "both")]["samples"]
            base = cells[(session_name, fmt, "0.1", "both")]["samples"]
            out[(session_name, fmt)] = statistics.median(
                a / b for a, b in zip(ours, base, strict=True)
            )
    return out


def render_serialization(add: c.Callable[[str], None], results: dict[str, t.Any]) -> None:
    """The ``## Serialization`` section of RESULTS.md."""
    cells = _index(results)
    add("## Serialization\n")
    add(
        "`dumps` + `loads` of a typical session (10 keys: user id and Flask-Login's keys, CSRF "
        "token, cart, settings, a flash list of two `(category, message)` tuples), and of the "
        "same session once its flashes were read. µs per operation, medians of "
        f"{results['rounds']} interleaved rounds of {results['number']} operations; ratio = "
        "median of per-round ratios. Flask-Session 0.8 is plain msgspec: not exact (tuples "
        "come back as lists).\n"
    )
    add(
        "| session | format | ours dumps | ours loads | ours dumps+loads | 0.1 dumps+loads "
        "| ours ÷ 0.1 | Flask-Session dumps+loads | bytes ours / 0.1 |"
    )
    add("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    found = ratios(results)
    for session_name in SESSIONS:
        for fmt in FORMATS:

            def median(
                contender: str, operation: str, fmt: str = fmt, s: str = session_name
            ) -> str:
                cell = cells.get((s, fmt, contender, operation))
                return "-" if cell is None else f"{statistics.median(cell['samples']):.2f}"

            ours = cells[(session_name, fmt, "ours", "both")]
            base = cells[(session_name, fmt, "0.1", "both")]
            add(
                f"| {session_name} | {fmt} | {median('ours', 'dumps')} "
                f"| {median('ours', 'loads')} | {median('ours', 'both')} "
                f"| {median('0.1', 'both')} | {found[(session_name, fmt)]:.2f}× "
                f"| {median('flask-session', 'both')} | {ours['bytes']} / {base['bytes']} |"
            )
    add("")


def target_rows(results: dict[str, t.Any]) -> list[tuple[str, str, str, str]]:
    """Rows of the Targets table: no slower than 0.1."""
    rows = []
    for (session_name, fmt), ratio in ratios(results).items():
        rows.append(
            (
                f"serialization, {session_name}, {fmt}: dumps+loads no slower than 0.1",
                f"{ratio:.2f}×",
                "met" if ratio <= 1.0 else "**missed**",
                "" if ratio <= 1.0 else f"slower by {(ratio - 1) * 100:.1f}%",
            )
        )
    return rows


def main(preset: str) -> str:
    """Run the measurement alone and return its Markdown section."""
    results = run_serialization(preset)
    out: list[str] = []
    render_serialization(out.append, results)
    out.append("| target | measured | verdict | note |")
    out.append("| --- | --- | --- | --- |")
    out.extend(f"| {' | '.join(row)} |" for row in target_rows(results))
    return "\n".join(out) + "\n"
