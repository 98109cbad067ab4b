"""Sphinx configuration of the flask-serverside documentation.

Build it with ``.venv/bin/sphinx-build -W -b html docs docs/_build/html`` (the test suite does,
warnings as errors: tests/docs/test_docs_build.py). Pages are reStructuredText or Markdown
(MyST); the author's guide (``authoring.md``) and the stores' READMEs are included as they are
in the repository.
"""

from __future__ import annotations

import importlib.metadata
import re
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from sphinx.application import Sphinx

project = "flask-serverside"
copyright = "flask-serverside developers"
release = importlib.metadata.version("flask-serverside")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# Markdown: anchors for "#the-protocol"-style links in the guide and the READMEs.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "signature"
autoclass_content = "both"

html_theme = "furo"
html_title = f"flask-serverside {release}"
html_static_path = ["_static"]
html_show_sourcelink = False

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# A Markdown link whose target is a path of the repository: [text](../../core).
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]\n]+)\]\((?P<target>[^)\s]+)\)")


def _unlink_repository_paths(text: str, base: Path) -> str:
    """Turn links to repository paths outside ``docs/`` into their text.

    The Markdown files the site includes (the stores' READMEs, the author's guide) are written
    for reading in the repository, where ``[flask-serverside](../../core)`` is a link. In the
    site such a path is not a page: its text stays, the link goes. Links to pages of the site,
    anchors and URLs are left alone.
    """

    def replace(match: re.Match[str]) -> str:
        target = match["target"]
        if "://" in target or target.startswith(("#", "mailto:")):
            return match[0]
        path = (base / target.split("#", 1)[0]).resolve()
        if path == DOCS or DOCS in path.parents:
            return match[0]
        return match["text"]

    return _LINK.sub(replace, text)


def _on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    path = Path(app.env.doc2path(docname))
    if path.suffix == ".md":
        source[0] = _unlink_repository_paths(source[0], path.parent)


def _on_include_read(
    app: Sphinx, relative_path: Path, parent_docname: str, content: list[str]
) -> None:
    path = (Path(app.srcdir) / relative_path).resolve()  # relative to the source directory
    if path.suffix == ".md":
        content[0] = _unlink_repository_paths(content[0], path.parent)


def setup(app: Sphinx) -> None:
    app.connect("source-read", _on_source_read)
    app.connect("include-read", _on_include_read)
