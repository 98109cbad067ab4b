"""``python -m benchmarks run [--quick|--smoke] [--stores ...] [--http] [--scale]``, and
``python -m benchmarks serialization [--quick|--full|--smoke]`` for that measurement alone."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
import typing as t
from pathlib import Path

from .inprocess import build_cells
from .inprocess import count_costs
from .inprocess import time_rounds
from .report import metrics
from .report import render
from .stores import KITS
from .stores import version

HERE = Path(__file__).resolve().parent

#: rounds, requests per batch, requests per counting pass.
PRESETS = {
    "smoke": (2, 5, 3),
    "quick": (30, 25, 50),
    "full": (100, 50, 200),
}


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    memory = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "flask": version("flask"),
        "werkzeug": version("werkzeug"),
        "flask-session": version("flask-session"),
        "nice": str(os.nice(0)),
        "load before": _load(),
    }


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _analysis() -> str:
    """The hand-written analysis (analysis.md), which the report ends with."""
    analysis = HERE / "analysis.md"
    return analysis.read_text() if analysis.exists() else ""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, t.Any]:
    rounds, batch, count = PRESETS[args.preset]
    rounds = args.rounds or rounds
    batch = args.batch or batch
    count = args.count or count
    slidings = [True, False]
    started = time.monotonic()
    results: dict[str, t.Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": args.command_line,
        "machine": machine(),
        "settings": {"rounds": rounds, "batch": batch, "count": count, "preset": args.preset},
        "stores": {},
    }
    for name in args.stores:
        kit = KITS[name]()
        entry: dict[str, t.Any] = {
            "flask_session_backend": kit.flask_session_backend,
            "floor": kit.floor_label,
            "counted_by": kit.counted_by,
            "primary": kit.primary,
        }
        results["stores"][name] = entry
        reason = kit.missing()
        if reason is not None:
            entry["skipped"] = reason
            log(f"{name}: skipped: {reason}")
            continue
        contenders = kit.contenders()
        without = kit.flask_session_missing()
        if without is not None:
            contenders.remove("flask-session")
            entry["flask_session_backend"] = f"not measured: {without}"
            log(f"{name}: no Flask-Session contender: {without}")
        log(f"{name}: starting")
        try:
            kit.start()
        except Exception as exc:  # a server that would not start: report it, go on
            entry["skipped"] = f"the server did not start: {exc}"
            log(f"{name}: skipped: {exc}")
            continue
        try:
            entry["versions"] = kit.describe()
            cells = build_cells(kit, contenders, slidings)
            time_rounds(kit, cells, rounds, batch, progress=log if args.verbose else lambda _: None)
            log(f"{name}: timed {len(cells)} cells; counting store-side costs")
            count_costs(kit, cells, count)
            entry["cells"] = [
                {
                    "scenario": cell.scenario,
                    "sliding": cell.sliding,
                    "contender": cell.contender,
                    "samples": cell.samples,
                    "cost": cell.cost,
                    "headers": cell.headers,
                }
                for cell in cells
            ]
            entry["metrics"] = {
                f"{scenario}/{'on' if sliding else 'off'}": row
                for (scenario, sliding), row in metrics(entry).items()
            }
        except Exception as exc:
            if args.preset == "smoke":
                raise
            entry.pop("cells", None)
            entry["skipped"] = f"the run failed: {type(exc).__name__}: {exc}"
            log(f"{name}: failed: {exc!r}")
        finally:
            kit.close()
    try:
        from .atrest import run_at_rest

        results["at_rest"] = run_at_rest()
    except Exception as exc:  # cryptography missing, say: report it, go on
        results["at_rest"] = {"note": f"not measured: {type(exc).__name__}: {exc}"}
    if args.http:
        from .http import run_http

        try:
            results["http"] = run_http(args, log)
        except Exception as exc:
            results["http"] = {"setup": f"failed: {type(exc).__name__}: {exc}", "rows": []}
    if args.cache:
        from .cache import run_cache

        try:
            results["cache"] = run_cache(args, rounds, batch, log)
        except Exception as exc:
            if args.preset == "smoke":
                raise
            results["cache"] = {"note": f"failed: {type(exc).__name__}: {exc}"}
    if args.scale:
        from .scale import run_scale

        try:
            results["scale"] = run_scale(args, log)
        except Exception as exc:
            results["scale"] = {"all": {"note": f"failed: {type(exc).__name__}: {exc}"}}
    from .serialization import run_serialization

    log("serialization: timing dumps + loads")
    results["serialization"] = run_serialization(args.preset)
    results["machine"]["load after"] = _load()
    faults = HERE / "faults.md"
    if args.output and faults.exists():
        results["faults"] = faults.read_text()
    if args.output:
        results["analysis"] = _analysis()
    results["duration"] = time.monotonic() - started
    return results


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["instructions"]:
        from . import instructions

        return instructions.main(given[1:])
    if given[:1] == ["render"]:
        # Write RESULTS.md again from a run's JSON, with the notes of analysis.md as they are now.
        render_parser = argparse.ArgumentParser(prog="python -m benchmarks render")
        render_parser.add_argument("json", help="the raw results a run wrote with --json")
        render_parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
        render_args = render_parser.parse_args(given[1:])
        results = json.loads(Path(render_args.json).read_text())
        results["analysis"] = _analysis()
        Path(render_args.output).write_text(render(results))
        log(f"wrote {render_args.output}")
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("run", help="run the benchmarks and write RESULTS.md")
    preset = p.add_mutually_exclusive_group()
    preset.add_argument(
        "--quick",
        dest="preset",
        action="store_const",
        const="quick",
        help="a few minutes (the default)",
    )
    preset.add_argument(
        "--full",
        dest="preset",
        action="store_const",
        const="full",
        help="more rounds and larger batches",
    )
    preset.add_argument(
        "--smoke",
        dest="preset",
        action="store_const",
        const="smoke",
        help="seconds: checks that the harness works, numbers mean nothing",
    )
    p.set_defaults(preset="quick")
    p.add_argument(
        "--stores",
        default=",".join(KITS),
        help=f"comma-separated, from {', '.join(KITS)} (default: all)",
    )
    p.add_argument("--rounds", type=int, help="timed rounds (overrides the preset)")
    p.add_argument("--batch", type=int, help="requests per cell per round")
    p.add_argument("--count", type=int, help="requests per cell in the counting pass")
    p.add_argument("--http", action="store_true", help="also run mode 2 (gunicorn + wrk)")
    p.add_argument(
        "--http-plans",
        help="comma-separated names of the mode 2 plans to run (default: all; see http.PLANS)",
    )
    p.add_argument(
        "--http-seconds", type=int, help="seconds of wrk per mode 2 cell (default 2, full 5)"
    )
    p.add_argument(
        "--http-rounds", type=int, help="interleaved rounds of mode 2 (default 3, full 5)"
    )
    p.add_argument(
        "--scale", action="store_true", help="also run the scale runs (1k/100k/1M sessions, purge)"
    )
    p.add_argument(
        "--cache",
        action="store_true",
        help="also measure the redis store's worker-local cache (SESSION_REDIS_CACHE); with"
        " --stores '' and nothing else, only its section of the report is replaced",
    )
    p.add_argument(
        "--output",
        default=str(HERE / "RESULTS.md"),
        help="the Markdown report (default benchmarks/RESULTS.md; '' for none)",
    )
    p.add_argument("--json", help="also write the raw results as JSON here")
    p.add_argument("-v", "--verbose", action="store_true")
    p_ser = sub.add_parser(
        "serialization", help="time dumps + loads of a typical session alone; print Markdown"
    )
    p_ser.add_argument("preset", nargs="?", default="quick", choices=["smoke", "quick", "full"])
    args = parser.parse_args(argv)
    if args.action == "serialization":
        from .serialization import main as serialization_main

        print(serialization_main(args.preset), end="")
        return 0
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    args.http_plans = [s.strip() for s in (args.http_plans or "").split(",") if s.strip()]
    unknown = [s for s in args.stores if s not in KITS]
    if unknown:
        parser.error(f"unknown stores {', '.join(unknown)}; known: {', '.join(KITS)}")
    # Where the files went is not part of the command the report records (a machine's paths).
    shown: list[str] = []
    skip = False
    for arg in given:
        if skip:
            skip = False
        elif arg in ("--json", "--output"):
            skip = True
        elif not arg.startswith(("--json=", "--output=")):
            shown.append(arg)
    args.command_line = "python -m benchmarks " + shlex.join(shown)
    results = run(args)
    if args.output and not args.stores and args.cache and not (args.http or args.scale):
        # Only the cache was measured: replace its section, keep the recorded run around it.
        from .cache import render as render_cache
        from .cache import update_section

        results["cache"]["run"] = {
            key: results[key] if key in results else results["machine"][key]
            for key in ("date", "command", "duration", "load before", "load after")
        }
        lines: list[str] = []
        render_cache(lines.append, results["cache"])
        path = Path(args.output)
        old = path.read_text() if path.exists() else ""
        path.write_text(update_section(old, "\n".join(lines).rstrip() + "\n"))
        log(f"updated the cache section of {args.output}")
    elif args.output:
        Path(args.output).write_text(render(results))
        log(f"wrote {args.output}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
