from __future__ import annotations

import collections.abc as c
import os
import time
import types
import typing as t

import pytest


class FakeClock:
    """Unix time that the tests move by hand; it starts at the real time, so that the
    modification times the store sets stay plausible."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


#: Functions of ``os`` and ``os.path`` that compute paths without touching the filesystem.
PURE = {"join", "dirname", "basename", "normpath", "abspath", "fspath", "split", "commonpath"}


class OsSpy:
    """Stands in for the ``os`` module of the store and records each filesystem call: its
    function name and the paths it was given."""

    def __init__(self, module: types.ModuleType, calls: list[tuple[str, list[str]]]) -> None:
        self._module = module
        self.calls = calls

    def __getattr__(self, name: str) -> t.Any:
        value = getattr(self._module, name)
        if isinstance(value, types.ModuleType):
            return OsSpy(value, self.calls)
        if not callable(value) or isinstance(value, type) or name in PURE:
            return value

        def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
            paths = [os.fspath(a) for a in args if isinstance(a, (str, os.PathLike))]
            self.calls.append((name, paths))
            return value(*args, **kwargs)

        return call


@pytest.fixture
def spy_on_os(monkeypatch) -> c.Callable[[], list[tuple[str, list[str]]]]:
    """Call it to start recording the filesystem calls of the store's modules."""
    import flask_serverside_filesystem._posix as posix_module
    import flask_serverside_filesystem.store as store_module

    def start() -> list[tuple[str, list[str]]]:
        calls: list[tuple[str, list[str]]] = []
        for module in (store_module, posix_module):
            monkeypatch.setattr(module, "os", OsSpy(os, calls))
        return calls

    return start
