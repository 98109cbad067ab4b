"""The development environment (``scripts/bootstrap``) holds the workspace's real packages only:
the deliberately broken fixture plugins of the discovery tests are never installed there."""

from __future__ import annotations

import subprocess
import sys


def test_flask_session_stores_lists_no_fixture_plugin(tmp_path):
    (tmp_path / "app.py").write_text(
        "from flask import Flask\n"
        "from flask_serverside import Session\n"
        "app = Flask(__name__)\n"
        "app.config['SESSION_TYPE'] = 'memory'\n"
        "Session(app)\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "session", "stores"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line[:1].strip()]
    assert "memory" in listed
    assert not [name for name in listed if name.startswith("fixture")], result.stdout
    assert "BROKEN" not in result.stdout
