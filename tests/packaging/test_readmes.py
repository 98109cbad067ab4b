"""Each package's README links the project, every relative link in the docs leads somewhere,
and each distribution has the project's LICENSE (``test_packaging.py`` checks that its sdist
and wheel carry it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    ROOT / "core",
    *sorted(path.parent for path in ROOT.glob("backends/*/pyproject.toml")),
    ROOT / "plugins_example",
    ROOT / "testservers",
]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "docs" / "authoring.md"]
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def _relative_links(doc: Path) -> list[Path]:
    links = []
    for match in LINK.finditer(doc.read_text(encoding="utf-8")):
        target = match["target"].split("#")[0]
        if target and "://" not in target and not target.startswith("mailto:"):
            links.append((doc.parent / target).resolve())
    return links


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_package_readme_links_the_project(package: Path) -> None:
    assert ROOT / "README.md" in _relative_links(package / "README.md")


@pytest.mark.parametrize(
    "doc",
    [*DOCS, *(package / "README.md" for package in PACKAGES)],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_every_relative_link_leads_to_a_file(doc: Path) -> None:
    broken = [str(link) for link in _relative_links(doc) if not link.exists()]
    assert broken == []


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_distribution_has_the_projects_license(package: Path) -> None:
    assert (package / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
