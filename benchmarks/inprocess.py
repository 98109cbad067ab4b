"""Mode 1: requests through the WSGI interface of each contender's app, in this process.

For each store, every (scenario, sliding expiry, contender) cell gets its own application and
namespace. One *round* times one batch of requests of every cell, in a shuffled order; the
rounds repeat, so slow drift of the machine (frequency, other load) hits every contender alike.
The first round is a warm-up and is dropped. The garbage collector is off during a batch and
runs between rounds.
"""

from __future__ import annotations

import dataclasses
import gc
import random
import secrets
import statistics
import time
import typing as t

from werkzeug.test import EnvironBuilder

from . import apps
from .floors import FloorInterface

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask import Flask

    from .stores import StoreKit


#: The contenders that keep sessions in the store.
STORED = ("ours", "flask-session", "floor", *apps.VARIANTS)


@dataclasses.dataclass
class Cell:
    """One contender in one scenario with one expiry mode."""

    store: str
    scenario: str
    sliding: bool
    contender: str
    ns: str
    app: Flask
    call: c.Callable[[], None]
    #: Per-request µs of each timed round.
    samples: list[float] = dataclasses.field(default_factory=list)
    #: Per-request store-side counters.
    cost: dict[str, float] = dataclasses.field(default_factory=dict)
    #: The response's Set-Cookie (id replaced) and Vary headers.
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: t.Any = None) -> t.Any:
    return None


def wsgi_caller(app: Flask, path: str, cookie: str | None) -> c.Callable[[], None]:
    """A function that sends one GET request straight to ``app.wsgi_app``."""
    headers = [("Cookie", f"session={cookie}")] if cookie else []
    template = EnvironBuilder(path=path, headers=headers).get_environ()
    wsgi = app.wsgi_app

    def call() -> None:
        body = wsgi(dict(template), _start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    return call


def fetch(app: Flask, path: str, cookie: str | None) -> tuple[str, list[tuple[str, str]]]:
    """One request through the WSGI interface, returning the status and headers."""
    headers = [("Cookie", f"session={cookie}")] if cookie else []
    environ = EnvironBuilder(path=path, headers=headers).get_environ()
    seen: dict[str, t.Any] = {}

    def start_response(status: str, hdrs: list[tuple[str, str]], exc_info: t.Any = None) -> None:
        seen["status"] = status
        seen["headers"] = hdrs

    body = app.wsgi_app(environ, start_response)  # type: ignore[arg-type]
    b"".join(body)
    getattr(body, "close", lambda: None)()
    return seen["status"], seen["headers"]


def session_cookie(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        if name.lower() == "set-cookie" and value.startswith("session="):
            return value.split(";", 1)[0].split("=", 1)[1]
    return None


def describe_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Set-Cookie with its value replaced by its length, and Vary."""
    out: dict[str, str] = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            cookie, _, attributes = value.partition(";")
            key, _, val = cookie.partition("=")
            shown = f"{key}=<{len(val)} chars>" if val else f"{key}="
            # The expiry date changes every second; keep the attribute, not the date.
            parts = [p.strip() for p in attributes.split(";") if p.strip()]
            parts = [
                p.split("=")[0] + "=…" if p.lower().startswith("expires") else p for p in parts
            ]
            out["set-cookie"] = "; ".join([shown, *parts])
        elif name.lower() == "vary":
            out["vary"] = value
    out.setdefault("set-cookie", "-")
    out.setdefault("vary", "-")
    return out


def build_app(kit: StoreKit, contender: str, ns: str, sliding: bool) -> Flask:
    if contender == "bare":
        return apps.make_app(contender, {}, sliding=sliding, setup=apps.setup_bare)
    if contender == "cookie":
        return apps.make_app(contender, {}, sliding=sliding)
    if contender in ("ours", "flask-session") or contender in apps.VARIANTS:
        if contender == "ours" or contender in apps.VARIANTS:
            config = {**kit.ours_config(ns), **apps.VARIANTS.get(contender, {})}
            install = apps.setup_ours
        else:
            config, install = kit.flask_session_config(ns), apps.setup_flask_session
        before = config.pop("_before", None)

        def setup(app: Flask) -> None:
            if before is not None:
                before(app)
            install(app)

        return apps.make_app(contender, config, sliding=sliding, setup=setup)
    if contender == "floor":
        ops = kit.floor(ns)

        def setup(app: Flask) -> None:
            app.session_interface = FloorInterface(ops, f"{ns}:")

        return apps.make_app(contender, {}, sliding=sliding, setup=setup)
    raise ValueError(contender)


def build_cells(
    kit: StoreKit,
    contenders: c.Sequence[str],
    slidings: c.Sequence[bool],
    scenarios: c.Collection[str] | None = None,
) -> list[Cell]:
    """Build every cell's app; create the session that the scenarios with a cookie send.

    :param scenarios: the names of the scenarios to build (default: all).
    """
    cells = []
    for sliding in slidings:
        for scenario, path, with_cookie in apps.SCENARIOS:
            if scenarios is not None and scenario not in scenarios:
                continue
            for contender in contenders:
                ns = f"{contender}-{scenario}-{'s' if sliding else 'f'}".replace("-", "_")
                app = build_app(kit, contender, ns, sliding)
                cookie = None
                if with_cookie:
                    _, headers = fetch(app, "/login", None)
                    cookie = session_cookie(headers)
                    if cookie is None:
                        if contender != "bare":
                            raise RuntimeError(f"{contender} on {kit.name} set no session cookie")
                        # The bare app ignores it, but the request carries the same header.
                        cookie = secrets.token_urlsafe(32)
                kit.instrument(contender, app, ns)
                call = wsgi_caller(app, path, cookie)
                cells.append(Cell(kit.name, scenario, sliding, contender, ns, app, call))
                # One request to learn the headers, and to check that it works.
                status, headers = fetch(app, path, cookie)
                if not status.startswith("200"):
                    raise RuntimeError(f"{contender} {path} on {kit.name} answered {status}")
                cells[-1].headers = describe_headers(headers)
                if scenario == "login" and contender in STORED:
                    kit.clear(contender, app, ns)
    return cells


def time_rounds(
    kit: StoreKit,
    cells: c.Sequence[Cell],
    rounds: int,
    batch: int,
    seed: int = 0,
    progress: c.Callable[[str], None] = lambda _: None,
) -> None:
    """Time ``rounds`` + 1 rounds (the first is a warm-up) of ``batch`` requests per cell."""
    rng = random.Random(seed)
    order = list(cells)
    clock = time.perf_counter_ns
    for round_no in range(rounds + 1):
        rng.shuffle(order)
        gc.collect()
        for cell in order:
            call = cell.call
            gc.disable()
            try:
                start = clock()
                for _ in range(batch):
                    call()
                elapsed = clock() - start
            finally:
                gc.enable()
            if round_no:
                cell.samples.append(elapsed / batch / 1000)
            if cell.scenario == "login" and cell.contender in STORED:
                kit.clear(cell.contender, cell.app, cell.ns)
        progress(f"{kit.name}: round {round_no}/{rounds}")


def count_costs(kit: StoreKit, cells: c.Sequence[Cell], n: int) -> None:
    """Count what ``n`` requests of each cell cost the store, per request."""
    for cell in cells:
        cell.call()  # warm connections outside the count
        login = cell.scenario == "login" and cell.contender in STORED
        if login:
            kit.clear(cell.contender, cell.app, cell.ns)
        with kit.counting(n) as result:
            for _ in range(n):
                cell.call()
        cell.cost = result
        if login:
            kit.clear(cell.contender, cell.app, cell.ns)
