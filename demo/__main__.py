"""``python -m demo``: run the demo on Werkzeug's development server (``scripts/demo`` does)."""

from __future__ import annotations

import argparse
import sys

from flask_serverside import SessionError

from .app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description="Run the flask-serverside demo."
    )
    parser.add_argument(
        "--store",
        help="the session store: an installed store's name or a URL whose scheme names it"
        " (redis://127.0.0.1:6379/0, memcached://127.0.0.1:11211, file:///tmp/sessions);"
        " default: the filesystem store in the instance folder",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=5000, help="default: %(default)s")
    parser.add_argument(
        "--instance", help="the instance folder (secret key, default store); default: demo/instance"
    )
    args = parser.parse_args(argv)
    try:
        app = create_app(args.store, args.instance)
    except SessionError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    app.run(host=args.host, port=args.port, threaded=True, load_dotenv=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
