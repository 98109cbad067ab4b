"""The documentation site builds with warnings as errors, and covers what it must: every core
configuration key, every store, every ``flask session`` command, the images it shows."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flask_serverside.cli import session_cli
from flask_serverside.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    if importlib.util.find_spec("sphinx") is None:
        reason = "Sphinx is not installed: run scripts/bootstrap (the docs dependency group)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    html = tmp_path / "html"
    for page in ["index", "quickstart", "configuration", "migrating", "cli", "demo", "authoring",
                 "testing", "api", "changes", "stores/index"]:  # fmt: skip
        assert (html / f"{page}.html").is_file(), page
    api = (html / "api.html").read_text(encoding="utf-8")
    # autodoc found the docstrings, not just the names.
    assert "Delete every session of" in api
    assert "Return the record saved under" in api


def test_every_key_of_the_core_is_documented() -> None:
    page = (DOCS / "configuration.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. py:data:: (\w+)$", page, flags=re.MULTILINE))
    assert documented == set(DEFAULTS)


def test_every_store_has_a_page_that_includes_its_readme() -> None:
    index = (DOCS / "stores" / "index.rst").read_text(encoding="utf-8")
    stores = sorted(path.parent.name for path in ROOT.glob("backends/*/pyproject.toml"))
    assert stores
    for store in stores:
        page = DOCS / "stores" / f"{store}.md"
        assert page.is_file(), f"docs/stores/{store}.md is missing"
        assert f"../../backends/{store}/README.md" in page.read_text(encoding="utf-8")
        assert re.search(rf"^   {store}$", index, flags=re.MULTILINE), f"{store} not in the toctree"


def test_every_command_is_documented() -> None:
    page = (DOCS / "cli.rst").read_text(encoding="utf-8")
    for name in session_cli.commands:
        assert re.search(rf"``{re.escape(name)}( [^`]*)?``", page), name


@pytest.mark.parametrize("document", ["README.md", "docs/index.rst", "docs/demo.rst"])
def test_the_images_shown_exist(document: str) -> None:
    path = ROOT / document
    text = path.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    images += re.findall(r"^\.\. image:: (\S+)$", text, flags=re.MULTILINE)
    assert images, f"{document} shows no image"
    for image in images:
        assert (path.parent / image).is_file(), image
