"""Serve mongoeco's MongoDB wire protocol on one TCP port until SIGTERM or SIGINT.

This file is run as a script by the mongoeco virtualenv's Python 3.13 interpreter
(see :mod:`serverside_testservers.mongodb`); it does not import the plugin package
and must not be imported by it.

Usage: ``python _mongoeco_serve.py --host H --port P [--sqlite PATH]``. With
``--sqlite`` documents are kept in that SQLite file and survive a restart, like a
``mongod`` data directory; without it they live in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
import typing as t


async def _serve(host: str, port: int, sqlite: str | None) -> None:
    proxy_mod = importlib.import_module("mongoeco.wire.proxy")
    engines = importlib.import_module("mongoeco.engines")
    engine: t.Any = engines.SQLiteEngine(sqlite) if sqlite else engines.MemoryEngine()
    proxy = proxy_mod.AsyncMongoEcoProxyServer(engine=engine, host=host, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    address = await proxy.start()
    print(f"mongoeco listening on {address.uri}", flush=True)
    try:
        await stop.wait()
    finally:
        await proxy.close()
    print("mongoeco stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sqlite", default=None)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.sqlite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
