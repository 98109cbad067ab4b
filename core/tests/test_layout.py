"""The core's module layout: no import cycles, the CLI registered once, the kit's spy in one
place."""

from __future__ import annotations

import ast
import pathlib

import flask_serverside

PACKAGE = pathlib.Path(flask_serverside.__file__).parent


def _imports(path: pathlib.Path) -> set[str]:
    """The core modules ``path`` imports, at module level or inside functions; imports for
    type checking only (under ``if t.TYPE_CHECKING:``) do not count."""
    found: set[str] = set()

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                walk(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            inside_testing = path.parent.name == "testing"
            if node.level == 1 and inside_testing:
                return  # within the kit's own package
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(ast.parse(path.read_text()))
    return found


def test_the_core_has_no_import_cycle():
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path) & modules.keys() for name, path in modules.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name):
        assert name not in visiting, "import cycle: " + " -> ".join([*visiting, name])
        if name in done:
            return
        visiting.append(name)
        for imported in graph[name]:
            visit(imported)
        visiting.pop()
        done.add(name)

    for name in graph:
        visit(name)


def test_the_session_commands_come_from_the_flask_commands_entry_point(make_app, flask_cli):
    app = make_app()
    assert "session" not in app.cli.commands
    result = flask_cli(app, "--help")
    assert result.exit_code == 0 and "session" in result.output


def test_a_spy_replaces_the_store_everywhere(make_app):
    from flask import session

    from flask_serverside import get_state
    from flask_serverside.testing import spy_on_store

    app = make_app()

    @app.post("/set")
    def set_():
        session["k"] = "v"
        return "ok"

    spy = spy_on_store(app)
    assert get_state(app).store is spy
    client = app.test_client()
    client.post("/set")
    assert spy.writes == 1
    from flask_serverside import revoke_user_sessions

    revoke_user_sessions("nobody", app)
    assert spy.calls["user_sids"] == 1
