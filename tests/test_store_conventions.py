"""Conventions every store package of the repository keeps: it imports the core from its package
root only, logs under ``flask_serverside.<store>``, and shows its public classes under its
package's name."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

#: Each store package, and the name of its store in logger names.
PACKAGES = {
    "flask_serverside_filesystem": "filesystem",
    "flask_serverside_memcached": "memcached",
    "flask_serverside_mongodb": "mongodb",
    "flask_serverside_redis": "redis",
    "flask_serverside_sqlalchemy": "sqlalchemy",
    "serverside_sqlite3_store": "sqlite3",
}


def _modules(package: str) -> list[tuple[pathlib.Path, ast.Module]]:
    directory = pathlib.Path(importlib.import_module(package).__file__).parent
    return [(path, ast.parse(path.read_text())) for path in sorted(directory.glob("*.py"))]


@pytest.mark.parametrize("package", PACKAGES)
def test_the_core_is_imported_from_its_package_root(package):
    deep = []
    for path, tree in _modules(package):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            deep += [f"{path.name}: {n}" for n in names if n.startswith("flask_serverside.")]
    assert deep == []


@pytest.mark.parametrize(("package", "store"), PACKAGES.items())
def test_loggers_are_named_after_the_store(package, store):
    names = [
        ast.literal_eval(node.args[0])
        for _, tree in _modules(package)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) == "logging.getLogger"
        and node.args
    ]
    assert set(names) <= {f"flask_serverside.{store}"}


@pytest.mark.parametrize("package", PACKAGES)
def test_public_classes_show_the_package_name(package):
    module = importlib.import_module(package)
    classes = [getattr(module, name) for name in module.__all__]
    classes = [cls for cls in classes if isinstance(cls, type)]
    assert classes
    assert {cls.__name__: cls.__module__ for cls in classes} == dict.fromkeys(
        (cls.__name__ for cls in classes), package
    )
