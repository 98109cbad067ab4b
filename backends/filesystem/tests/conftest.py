from __future__ import annotations

import time

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
