"""Without Chromium the browser test is skipped, and under ``CI=true`` it fails, as the store
tests do for a missing server binary."""

from __future__ import annotations

import typing as t

import pytest

if t.TYPE_CHECKING:
    import collections.abc as c
    from pathlib import Path


def test_a_missing_browser_skips_outside_ci(
    browser_lookup: c.Callable[[], tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium here
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="'chromium' browser was not found"):
        browser_lookup()


def test_a_missing_browser_fails_in_ci(
    browser_lookup: c.Callable[[], tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="scripts/install-servers"):
        browser_lookup()


def test_a_missing_driver_is_named(
    browser_lookup: c.Callable[[], tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    (tmp_path / "chromium").write_text("#!/bin/sh\n")
    (tmp_path / "chromium").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium-driver"):
        browser_lookup()
