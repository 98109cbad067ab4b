"""Instructions per request, counted by valgrind's callgrind: a repeatable measure of the Python
(and C) work a contender does per request, whatever else the machine is doing.

``python -m benchmarks instructions [--stores memory,redis] [--scenarios write,read] [-n 200]``

The benchmark re-runs itself under ``valgrind --tool=callgrind`` (the servers it starts run
natively: callgrind does not follow child processes). For every cell (store, scenario, sliding
expiry, contender) it warms up, zeroes callgrind's counters (``callgrind_control -z``), sends
``n`` requests, and dumps the counters (``callgrind_control -d``); the dump's total, less the
cost of an empty measurement (the two ``callgrind_control`` calls themselves), divided by ``n``,
is that cell's instructions per request. Time spent waiting for a store's reply is not counted:
only the work of this process is. Two runs of the same code agree within about 1%, where µs on
a shared two-core machine move by 10% or more.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import typing as t

from . import apps
from .inprocess import build_cells
from .stores import KITS

#: Requests per cell by default.
DEFAULT_N = 200


def _mark(option: str) -> None:
    subprocess.run(
        ["callgrind_control", option, str(os.getpid())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )


def _inner(spec: dict[str, t.Any]) -> None:
    """Run under callgrind: measure every cell, in the order written to ``spec["order"]``."""
    n = spec["n"]
    order: list[list[t.Any]] = []
    for name in spec["stores"]:
        kit = KITS[name]()
        if kit.missing() is not None:
            continue
        kit.start()
        try:
            contenders = [c for c in spec["contenders"] if c in kit.contenders()]
            if kit.flask_session_missing() is not None and "flask-session" in contenders:
                contenders.remove("flask-session")
            cells = build_cells(kit, contenders, spec["slidings"], spec["scenarios"])
            # The cost of measuring nothing: what the two marks add to every cell.
            _mark("-z")
            _mark("-d")
            order.append([name, "-", True, "(empty)"])
            for cell in cells:
                login = cell.scenario == "login" and cell.contender in ("ours", "flask-session")
                for _ in range(20):
                    cell.call()
                    if login:
                        kit.clear(cell.contender, cell.app, cell.ns)
                _mark("-z")
                for _ in range(n):
                    cell.call()
                _mark("-d")
                order.append([name, cell.scenario, cell.sliding, cell.contender])
                if login:
                    kit.clear(cell.contender, cell.app, cell.ns)
        finally:
            kit.close()
    with open(spec["order"], "w") as f:
        json.dump(order, f)


def _total(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no summary in {path}")


def measure(
    stores: list[str],
    scenarios: list[str],
    contenders: list[str],
    slidings: list[bool],
    n: int = DEFAULT_N,
) -> list[dict[str, t.Any]]:
    """Instructions per request of each cell; see the module docstring."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    scratch = tempfile.mkdtemp(prefix="bench-callgrind-")
    try:
        spec = {
            "stores": stores,
            "scenarios": scenarios,
            "contenders": contenders,
            "slidings": slidings,
            "n": n,
            "order": os.path.join(scratch, "order.json"),
        }
        env = dict(os.environ, PYTHONHASHSEED="0")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={scratch}/cg.out",
                "--dump-instr=no",
                "--compress-strings=no",
                sys.executable,
                "-m",
                "benchmarks",
                "instructions",
                "--inner",
                json.dumps(spec),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with open(spec["order"]) as f:
            order = json.load(f)
        dumps = sorted(glob.glob(f"{scratch}/cg.out.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        if len(dumps) != len(order):
            raise RuntimeError(f"{len(dumps)} callgrind dumps for {len(order)} cells")
        rows: list[dict[str, t.Any]] = []
        empty = 0
        for (store, scenario, sliding, contender), path in zip(order, dumps, strict=True):
            total = _total(path)
            if contender == "(empty)":
                empty = total
                continue
            rows.append(
                {
                    "store": store,
                    "scenario": scenario,
                    "sliding": sliding,
                    "contender": contender,
                    "instructions": max(0, total - empty) / n,
                }
            )
        return rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def render(rows: list[dict[str, t.Any]]) -> str:
    """A Markdown table: thousands of instructions per request, and over the bare app."""
    bare = {
        (r["store"], r["scenario"], r["sliding"]): r["instructions"]
        for r in rows
        if r["contender"] == "bare"
    }
    out = [
        "| store | scenario | sliding | contender | k instructions / request | over bare |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    for r in rows:
        base = bare.get((r["store"], r["scenario"], r["sliding"]))
        over = "-" if base is None else f"{(r['instructions'] - base) / 1000:.1f}"
        out.append(
            f"| {r['store']} | {r['scenario']} | {'on' if r['sliding'] else 'off'} "
            f"| {r['contender']} | {r['instructions'] / 1000:.1f} | {over} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks instructions")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    parser.add_argument("--stores", default="memory,redis")
    parser.add_argument("--scenarios", default="write,read,untouched")
    parser.add_argument("--contenders", default=",".join(apps.CONTENDERS))
    parser.add_argument("--sliding", choices=("on", "off", "both"), default="on")
    parser.add_argument("-n", type=int, default=DEFAULT_N, help="requests per cell")
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.inner:
        _inner(json.loads(args.inner))
        return 0
    slidings = {"on": [True], "off": [False], "both": [True, False]}[args.sliding]
    rows = measure(
        [s for s in args.stores.split(",") if s],
        [s for s in args.scenarios.split(",") if s],
        [c for c in args.contenders.split(",") if c],
        slidings,
        args.n,
    )
    print(render(rows), end="")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0
