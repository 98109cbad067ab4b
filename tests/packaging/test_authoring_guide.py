"""The author's guide shows the example's real files: ``scripts/sync-docs`` copies them into
``docs/authoring.md``, and this checks that it has been run since they last changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_guide_includes_the_current_files() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync-docs"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_guide_includes_every_file_of_the_example_package() -> None:
    guide = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    example = ROOT / "plugins_example"
    files = [example / "pyproject.toml", *sorted(example.glob("src/*/*.py"))]
    files += sorted(example.glob("tests/*.py"))
    for path in files:
        assert f"<!-- include: {path.relative_to(ROOT).as_posix()} -->" in guide
