"""Cost of one Lua script call: redis-py's ``Script`` (``register_script``) against the store's
own ``_record.Script`` (a bare ``EVALSHA`` that loads the script on ``NOSCRIPT``), in one
process, on one throwaway ``redis-server``, in the same run.

Run from the repository root (needs serverside-testservers)::

    python backends/redis/benchmarks/bench_scripts.py [--calls 20000] [--rounds 40]

Both contenders run the store's refresh script (``EXPIRE`` that returns the record's header) on
one key; the rounds alternate between them, each going first in turn, so that drift of the
machine hits both alike. It prints the median and mean microseconds per call, and the median of
the rounds' ratios.
"""

from __future__ import annotations

import argparse
import collections.abc as c
import statistics
import time
import typing as t

import redis

from flask_serverside_redis._record import TOUCH
from flask_serverside_redis._record import Script
from serverside_testservers.redis import RedisServer


def measure(calls: int, rounds: int) -> dict[str, list[float]]:
    server = RedisServer()
    server.start()
    try:
        client = redis.Redis(server.host, server.port)
        client.set("bench:key", b"\xc1\x01" + b"\0" * 100)
        contenders: dict[str, c.Callable[..., t.Any]] = {
            "redis-py Script": client.register_script(TOUCH),
            "hand-written EVALSHA": Script(client, TOUCH),
        }
        per_round = calls // rounds
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for round_ in range(rounds + 1):  # the first round warms up (and loads the script)
            order = list(contenders.items())
            for name, script in order if round_ % 2 else reversed(order):
                started = time.perf_counter()
                for _ in range(per_round):
                    script(keys=["bench:key"], args=[3600])
                if round_:
                    times[name].append((time.perf_counter() - started) / per_round * 1e6)
        client.close()
        return times
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per contender")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    times = measure(args.calls, args.rounds)
    print(f"## {args.calls} EVALSHA calls per contender, {args.rounds} alternating rounds")
    print("| contender | median µs/call | mean µs/call |")
    print("| --- | ---: | ---: |")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} | {statistics.mean(values):.1f} |")
    ours, theirs = times.values()
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    print(f"\nScript / hand-written, median of the rounds' ratios: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
