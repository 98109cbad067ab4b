"""Serve moto's AWS API (DynamoDB for the tests) on one TCP port until SIGTERM or SIGINT.

Run as a script by the test interpreter (see :mod:`serverside_testservers.dynamodb`); it does
not import the plugin package. It runs moto's own WSGI application, as ``moto_server`` does,
with one difference: requests are handled one at a time. DynamoDB makes each write atomic
(a conditional ``UpdateItem`` checks and writes as one step); moto's threaded server evaluates
a condition and writes the item without a lock, so two concurrent conditional writes can both
pass. Serializing requests restores DynamoDB's guarantee; connections are still served by
threads, so an idle keep-alive connection blocks nobody.

Usage: ``python _moto_serve.py --host H --port P``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import typing as t

from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.serving import run_simple

if t.TYPE_CHECKING:
    import collections.abc as c


def serialized(app: t.Any) -> t.Any:
    """Wrap a WSGI application so that it handles one request at a time."""
    lock = threading.Lock()

    def handle(environ: dict[str, t.Any], start_response: t.Any) -> c.Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))

    return handle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    app = serialized(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
