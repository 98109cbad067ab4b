"""Ratios, targets and the Markdown of ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import statistics
import typing as t

from .apps import CONTENDERS
from .apps import SCENARIOS
from .serialization import render_serialization
from .serialization import target_rows

if t.TYPE_CHECKING:
    import collections.abc as c

Results = dict[str, t.Any]

SCENARIO_TEXT = {
    "write": "write (session changes)",
    "read": "read-only",
    "none": "no session",
    "login": "login (creates it)",
    "untouched": "untouched (cookie sent, session never read)",
}


def _cells(store: Results) -> dict[tuple[str, bool, str], Results]:
    return {(c["scenario"], c["sliding"], c["contender"]): c for c in store["cells"]}


def paired_ratio(a: c.Sequence[float], b: c.Sequence[float]) -> float:
    """The median over rounds of a/b: drift within a round cancels out."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def share(a: c.Sequence[float], bare: c.Sequence[float]) -> float:
    """The median over rounds of what a request costs over the bare app."""
    return statistics.median(x - y for x, y in zip(a, bare, strict=True))


def metrics(store: Results) -> dict[tuple[str, bool], dict[str, float]]:
    """Per (scenario, sliding): medians, session shares and ratios."""
    cells = _cells(store)
    out: dict[tuple[str, bool], dict[str, float]] = {}
    for scenario, _, _ in SCENARIOS:
        for sliding in (True, False):
            row: dict[str, float] = {}
            bare = cells.get((scenario, sliding, "bare"))
            for contender in CONTENDERS:
                cell = cells.get((scenario, sliding, contender))
                if cell is None:
                    continue
                row[f"us:{contender}"] = statistics.median(cell["samples"])
                if bare is not None:
                    row[f"share:{contender}"] = share(cell["samples"], bare["samples"])
            ours = cells.get((scenario, sliding, "ours"))
            for peer in ("flask-session", "floor", "cookie", "bare"):
                other = cells.get((scenario, sliding, peer))
                if ours is not None and other is not None:
                    row[f"ratio:{peer}"] = paired_ratio(ours["samples"], other["samples"])
                    if row.get(f"share:{peer}", 0) > 0:
                        row[f"share_ratio:{peer}"] = row["share:ours"] / row[f"share:{peer}"]
            if row:
                out[(scenario, sliding)] = row
    return out


def _cost(store: Results, scenario: str, sliding: bool, contender: str) -> Results | None:
    cell = _cells(store).get((scenario, sliding, contender))
    return None if cell is None else t.cast("Results", cell["cost"])


def targets(results: Results) -> list[tuple[str, str, str, str]]:
    """(target, measured, verdict, note) for each target of the issue."""
    rows: list[tuple[str, str, str, str]] = []
    stores = results["stores"]

    def measured(name: str) -> Results | None:
        store = stores.get(name)
        return t.cast("Results", store) if store and store.get("cells") else None

    redis = measured("redis")
    if redis is None:
        rows.append(
            (
                "redis read-only: 1 round trip, session cost ≤ 0.7× Flask-Session",
                "-",
                "not measured",
                _why(stores, "redis"),
            )
        )
    else:
        m = metrics(redis)
        for sliding in (True, False):
            cost = _cost(redis, "read", sliding, "ours") or {}
            trips = cost.get("commands", 0)
            rows.append(
                (
                    f"redis read-only, sliding {_onoff(sliding)}: 1 round trip",
                    f"{trips:g} ({_commands(cost)})",
                    _verdict(trips <= 1.0),
                    "" if trips <= 1 else "more than one command per read-only request",
                )
            )
            ratio = m[("read", sliding)].get("share_ratio:flask-session")
            if ratio is not None:
                rows.append(
                    (
                        f"redis read-only, sliding {_onoff(sliding)}: session cost"
                        " ≤ 0.7× Flask-Session",
                        f"{ratio:.2f}× ({_us(m, 'read', sliding, 'ours')} vs "
                        f"{_us(m, 'read', sliding, 'flask-session')} over bare)",
                        _verdict(ratio <= 0.7),
                        "" if ratio <= 0.7 else f"missed by {(ratio / 0.7 - 1) * 100:.1f}%",
                    )
                )
    for name, store in stores.items():
        if not store.get("cells") or name == "redis" or store["primary"] == "syscalls":
            continue
        for sliding in (True, False):
            cost = _cost(store, "read", sliding, "ours") or {}
            trips = cost.get(store["primary"], 0)
            rows.append(
                (
                    f"{name} read-only, sliding {_onoff(sliding)}: 1 round trip",
                    f"{trips:g} ({_commands(cost)})",
                    _verdict(trips <= 1.0),
                    "" if trips <= 1 else f"{trips:g} round trips",
                )
            )
    for name, store in stores.items():
        if not store.get("cells"):
            continue
        m = metrics(store)
        for sliding in (True, False):
            ratio = m.get(("write", sliding), {}).get("ratio:floor")
            if ratio is None:
                continue
            rows.append(
                (
                    f"{name} write, sliding {_onoff(sliding)}: ≤ 1.05× the raw-client floor",
                    f"{ratio:.2f}×",
                    _verdict(ratio <= 1.05),
                    "" if ratio <= 1.05 else f"missed by {(ratio / 1.05 - 1) * 100:.1f}%",
                )
            )
    sql = measured("sqlalchemy")
    if sql is None:
        rows.append(
            (
                "SQL read-only ≥ 5× faster than Flask-Session's sqlalchemy",
                "-",
                "not measured",
                _why(stores, "sqlalchemy"),
            )
        )
    else:
        m = metrics(sql)
        for sliding in (True, False):
            ratio = m[("read", sliding)].get("ratio:flask-session")
            if ratio is not None:
                speedup = 1 / ratio
                rows.append(
                    (
                        f"SQL read-only, sliding {_onoff(sliding)}: ≥ 5× faster than Flask-Session",
                        f"{speedup:.1f}× faster",
                        _verdict(speedup >= 5),
                        "" if speedup >= 5 else f"missed: {speedup:.1f}× instead of 5×",
                    )
                )
    files = measured("filesystem")
    if files is None:
        rows.append(
            (
                "filesystem writes ≥ 1.5× faster than Flask-Session's",
                "-",
                "not measured",
                _why(stores, "filesystem"),
            )
        )
    else:
        m = metrics(files)
        for sliding in (True, False):
            ratio = m[("write", sliding)].get("ratio:flask-session")
            if ratio is not None:
                speedup = 1 / ratio
                rows.append(
                    (
                        f"filesystem write, sliding {_onoff(sliding)}: ≥ 1.5× faster than"
                        " Flask-Session",
                        f"{speedup:.2f}× faster",
                        _verdict(speedup >= 1.5),
                        "" if speedup >= 1.5 else f"missed: {speedup:.2f}× instead of 1.5×",
                    )
                )
    cache = results.get("cache")
    if cache is not None:
        from .cache import targets as cache_targets

        rows.extend(cache_targets(cache))
    rows += _wave2_targets(results)
    scale = results.get("scale")
    if not scale:
        rows.append(
            (
                "cost flat (within 10%) from 1k to 1M sessions",
                "-",
                "not measured",
                "scale runs are off in --quick; run with --scale",
            )
        )
    else:
        for name, runs in scale.items():
            if not runs.get("points"):
                continue
            points = runs["points"]
            first, last = points[0], points[-1]
            for kind, key in (("read", "us"), ("write", "write_us")):
                growth = last[key] / first[key] - 1
                rows.append(
                    (
                        f"{name} {kind}: cost flat within 10% from {first['n']:,} to"
                        f" {last['n']:,} sessions",
                        f"{growth * 100:+.1f}% ({first[key]:.0f} → {last[key]:.0f} µs)",
                        _verdict(growth <= 0.10),
                        "cheaper at the larger size: machine noise, not a scaling effect"
                        if growth < -0.10
                        else "",
                    )
                )
    if results.get("serialization"):
        rows.extend(target_rows(results["serialization"]))
    return rows


def _missed_by(ratio: float, limit: float, *, at_most: bool = True) -> str:
    if at_most:
        return "" if ratio <= limit else f"missed by {(ratio / limit - 1) * 100:.1f}%"
    return "" if ratio >= limit else f"missed: {ratio:.2f}× instead of {limit:g}×"


def _http_row(results: Results, plan: str, store: str, scenario: str, who: str) -> Results | None:
    for row in (results.get("http") or {}).get("rows", []):
        if (row.get("plan"), row["store"], row["scenario"], row["contender"]) == (
            plan,
            store,
            scenario,
            who,
        ):
            return t.cast("Results", row)
    return None


def _wave2_targets(results: Results) -> list[tuple[str, str, str, str]]:
    """The targets of the performance issue of wave 2 (writes, SQL tails, untouched requests,
    more workers, the cost of keeping sessions safe at rest)."""
    rows: list[tuple[str, str, str, str]] = []
    stores = results["stores"]
    for name, store in stores.items():
        if not store.get("cells"):
            continue
        m = metrics(store)
        for sliding in (True, False):
            cost = _cost(store, "untouched", sliding, "ours")
            if cost is None:
                continue
            trips = cost.get(store["primary"], 0)
            rows.append(
                (
                    f"{name} untouched (cookie, view never reads the session), sliding"
                    f" {_onoff(sliding)}: 0 store round trips",
                    f"{trips:g} ({_commands(cost)})",
                    _verdict(trips == 0),
                    "",
                )
            )
            ratio = m.get(("untouched", sliding), {}).get("ratio:bare")
            if ratio is not None:
                rows.append(
                    (
                        f"{name} untouched, sliding {_onoff(sliding)}: ≤ 1.05× a bare request",
                        f"{ratio:.3f}×",
                        _verdict(ratio <= 1.05),
                        _missed_by(ratio, 1.05),
                    )
                )
    redis = stores.get("redis")
    if redis and redis.get("cells"):
        m = metrics(redis)
        for sliding in (True, False):
            ratio = m.get(("write", sliding), {}).get("ratio:floor")
            if ratio is not None:
                rows.append(
                    (
                        f"redis write, sliding {_onoff(sliding)}: ≤ 1.10× the raw GET+SET floor"
                        " (in-process)",
                        f"{ratio:.2f}×",
                        _verdict(ratio <= 1.10),
                        _missed_by(ratio, 1.10),
                    )
                )
    for name in ("redis", "memcached"):
        ours = _http_row(results, "2-workers", name, "write", "ours")
        fs = _http_row(results, "2-workers", name, "write", "flask-session")
        if ours is None or fs is None:
            continue
        ratio = ours["rps"] / fs["rps"]
        for limit in (1.0, 1.1):
            rows.append(
                (
                    f"{name} /write over HTTP (2 workers): ≥ {limit:g}× Flask-Session's requests/s",
                    f"{ratio:.2f}× ({ours['rps']:.0f} vs {fs['rps']:.0f})",
                    _verdict(ratio >= limit),
                    _missed_by(ratio, limit, at_most=False),
                )
            )
    ours = _http_row(results, "2-workers", "sqlalchemy", "write", "ours")
    fs = _http_row(results, "2-workers", "sqlalchemy", "write", "flask-session")
    if ours is not None and fs is not None:
        rows.append(
            (
                "PostgreSQL /write p99 over HTTP (2 workers): ≤ Flask-Session's",
                f"{ours['p99']:.1f} ms vs {fs['p99']:.1f} ms",
                _verdict(ours["p99"] <= fs["p99"]),
                _missed_by(ours["p99"] / fs["p99"], 1.0),
            )
        )
    ours = _http_row(results, "2-workers", "sqlalchemy", "read", "ours")
    fs = _http_row(results, "2-workers", "sqlalchemy", "read", "flask-session")
    if ours is not None and fs is not None:
        ratio = ours["rps"] / fs["rps"]
        rows.append(
            (
                "PostgreSQL read-only, sliding on, over HTTP (2 workers): ≥ 5× Flask-Session's"
                " requests/s",
                f"{ratio:.1f}× ({ours['rps']:.0f} vs {fs['rps']:.0f})",
                _verdict(ratio >= 5),
                _missed_by(ratio, 5, at_most=False),
            )
        )
    for row in (results.get("http") or {}).get("rows", []):
        if row.get("scenario") == "contend" and row["contender"] == "ours":
            rows.append(
                (
                    f"{row['store']} contention (4 workers × 4 threads, one session): no"
                    " failed request",
                    f"{row['errors']} of {row['requests']} failed; {row['rps']:.0f} req/s,"
                    f" p99 {row['p99']:.1f} ms",
                    _verdict(row["errors"] == 0),
                    "",
                )
            )
    at_rest = results.get("at_rest") or {}
    if at_rest.get("hmac_us") is not None:
        rows.append(
            (
                "store-key HMAC per request < 2 µs",
                f"{at_rest['hmac_us']:.2f} µs",
                _verdict(at_rest["hmac_us"] < 2),
                _missed_by(at_rest["hmac_us"], 2),
            )
        )
    return rows


def _why(stores: Results, name: str) -> str:
    store = stores.get(name)
    if store is None:
        return "not in this run"
    return str(store.get("skipped", ""))


def _onoff(sliding: bool) -> str:
    return "on" if sliding else "off"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _us(m: dict[tuple[str, bool], dict[str, float]], scenario: str, sliding: bool, who: str) -> str:
    value = m.get((scenario, sliding), {}).get(f"share:{who}")
    return "-" if value is None else f"{value:.0f} µs"


def _commands(cost: c.Mapping[str, float]) -> str:
    names = [
        f"{k.split(':', 1)[1]} {v:g}"
        for k, v in cost.items()
        if k.startswith(("cmd:", "call:", "sys:", "sql:"))
    ]
    return ", ".join(names) or "none"


def _fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def render(results: Results) -> str:
    """The whole RESULTS.md."""
    out: list[str] = []
    add = out.append
    machine = results["machine"]
    settings = results["settings"]
    add("# Benchmark results\n")
    add(
        "Written by `python -m benchmarks run`; see [README.md](README.md) for the method. "
        "Every number below comes from one run, in which the contenders were interleaved round "
        "by round.\n"
    )
    add(f"- **date**: {results['date']}")
    add(f"- **command**: `{results['command']}`")
    add(
        f"- **machine**: {machine['cpu']}, {machine['cores']} cores, {machine['memory']}, "
        f"{machine['os']}"
    )
    add(
        f"- **load average** (1, 5, 15 min) before: {machine.get('load before', '?')}, after:"
        f" {machine.get('load after', '?')}; niceness {machine.get('nice', '?')}"
    )
    add(
        f"- **python**: {machine['python']}; Flask {machine['flask']}, Werkzeug "
        f"{machine['werkzeug']}, Flask-Session {machine['flask-session']}"
    )
    add(
        f"- **mode 1 (in-process WSGI)**: {settings['rounds']} rounds × {settings['batch']} "
        f"requests per cell after one warm-up round; store-side costs counted over "
        f"{settings['count']} requests per cell"
    )
    add(f"- **duration**: {results['duration']:.0f} s\n")

    add("## Targets\n")
    add("| target | measured | verdict | note |")
    add("| --- | --- | --- | --- |")
    for target, value, verdict, note in targets(results):
        add(f"| {target} | {value} | {verdict} | {note} |")
    add("")
    if results.get("analysis"):
        add("Why each target is met or missed: [Analysis](#analysis), at the end.\n")

    add("## Stores\n")
    for name, store in results["stores"].items():
        if not store.get("cells"):
            add(f"- **{name}**: not measured: {store.get('skipped', '?')}")
    add("")
    for name, store in results["stores"].items():
        if store.get("cells"):
            _render_store(add, name, store)

    _render_at_rest(add, results)
    http = results.get("http")
    if http:
        _render_http(add, http)
    scale = results.get("scale")
    if scale:
        _render_scale(add, scale)
    if results.get("serialization"):
        render_serialization(add, results["serialization"])
    faults = results.get("faults")
    if faults:
        add("## Store faults\n")
        add(faults.rstrip() + "\n")
    cache = results.get("cache")
    if cache:
        from .cache import render as render_cache

        render_cache(add, cache)
    analysis = results.get("analysis", "")
    if analysis:
        add("## Analysis\n")
        lines = analysis.splitlines()
        if lines and lines[0].startswith("# "):
            lines = lines[1:]
        # One level down: the analysis's own sections sit under this heading.
        add("\n".join("#" + line if line.startswith("## ") else line for line in lines).strip())
    return "\n".join(out).rstrip() + "\n"


def _render_store(add: c.Callable[[str], None], name: str, store: Results) -> None:
    m = metrics(store)
    add(f"### {name}\n")
    versions = ", ".join(f"{k} {v}" for k, v in store["versions"].items())
    add(f"- versions: {versions}")
    add(f"- Flask-Session contender: {store['flask_session_backend']}")
    add(f"- floor: {store['floor']}")
    add(f"- store-side cost counted by: {store['counted_by']}\n")
    add(
        "µs per request (median over rounds); *session* = the median of (contender − bare) per "
        "round; ratios are medians of per-round ratios of whole requests.\n"
    )
    add(
        "| scenario | sliding | ours | Flask-Session | floor | cookie | bare | ours session | "
        "F-S session | ours/F-S | ours/floor | session ours/F-S |"
    )
    add("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (scenario, sliding), row in m.items():
        add(
            f"| {SCENARIO_TEXT[scenario]} | {_onoff(sliding)} "
            f"| {_fmt(row.get('us:ours'))} | {_fmt(row.get('us:flask-session'))} "
            f"| {_fmt(row.get('us:floor'))} | {_fmt(row.get('us:cookie'))} "
            f"| {_fmt(row.get('us:bare'))} | {_fmt(row.get('share:ours'))} "
            f"| {_fmt(row.get('share:flask-session'))} "
            f"| {_fmt(row.get('ratio:flask-session'), '.2f')} "
            f"| {_fmt(row.get('ratio:floor'), '.2f')} "
            f"| {_fmt(row.get('share_ratio:flask-session'), '.2f')} |"
        )
    add("")
    primary = store["primary"]
    add(
        f"Store-side cost per request: **{primary}** (the round trips), bytes sent to the "
        "store, and the breakdown.\n"
    )
    add("| scenario | sliding | contender | " + primary + " | bytes | breakdown |")
    add("| --- | --- | --- | ---: | ---: | --- |")
    for scenario, _, _ in SCENARIOS:
        for sliding in (True, False):
            for contender in ("ours", "flask-session", "floor"):
                cost = _cost(store, scenario, sliding, contender)
                if cost is None:
                    continue
                add(
                    f"| {SCENARIO_TEXT[scenario]} | {_onoff(sliding)} | {contender} "
                    f"| {cost.get(primary, 0):g} | {cost.get('bytes', 0):.0f} "
                    f"| {_commands(cost)} |"
                )
    add("")
    add("Headers sent (Set-Cookie value shown as its length; `Expires` dates elided).\n")
    add("| scenario | sliding | contender | Set-Cookie | Vary |")
    add("| --- | --- | --- | --- | --- |")
    cells = _cells(store)
    for scenario, _, _ in SCENARIOS:
        for sliding in (True, False):
            for contender in CONTENDERS:
                cell = cells.get((scenario, sliding, contender))
                if cell is None or contender == "bare":
                    continue
                h = cell["headers"]
                add(
                    f"| {scenario} | {_onoff(sliding)} | {contender} | `{h['set-cookie']}` "
                    f"| {h['vary']} |"
                )
    add("")


def _render_at_rest(add: c.Callable[[str], None], results: Results) -> None:
    at_rest = results.get("at_rest") or {}
    stores = [
        (name, store)
        for name, store in results["stores"].items()
        if store.get("cells") and any(c["contender"] == "ours-sealed" for c in store["cells"])
    ]
    if not at_rest and not stores:
        return
    add("## The cost of keeping sessions safe at rest\n")
    if "hmac_us" in at_rest:
        add(
            f"- store key of a session (HMAC-SHA256 of the id, `SESSION_HASH_IDS`, on by"
            f" default): **{at_rest['hmac_us']:.2f} µs**; with the look-up of the application's"
            f" current keys, as a request does it: {at_rest['key_lookup_us']:.2f} µs"
        )
        add(
            f"- `SESSION_ENCRYPTION_KEY` (AES-256-GCM) on a typical session of"
            f" {at_rest['record_bytes']} bytes ({at_rest['sealed_bytes']} sealed): seal"
            f" **{at_rest['seal_us']:.2f} µs**, open **{at_rest['open_us']:.2f} µs**"
        )
    elif at_rest.get("note"):
        add(f"- {at_rest['note']}")
    if stores:
        add(
            "\nWhole requests in mode 1, same run: ours with raw store keys"
            " (`SESSION_HASH_IDS = False`), ours as configured by default (hashed keys), and ours"
            " with hashed keys and sealed records; µs per request (median over rounds), and the"
            " median of per-round ratios to raw keys.\n"
        )
        add(
            "| store | scenario | sliding | raw keys µs | hashed µs | hashed + sealed µs "
            "| hashed / raw | hashed + sealed / raw |"
        )
        add("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for name, store in stores:
            cells = _cells(store)
            for scenario in ("write", "read", "login"):
                for sliding in (True, False):
                    raw = cells.get((scenario, sliding, "ours-rawkeys"))
                    ours = cells.get((scenario, sliding, "ours"))
                    sealed = cells.get((scenario, sliding, "ours-sealed"))
                    if raw is None or ours is None or sealed is None:
                        continue
                    add(
                        f"| {name} | {scenario} | {_onoff(sliding)} "
                        f"| {statistics.median(raw['samples']):.0f} "
                        f"| {statistics.median(ours['samples']):.0f} "
                        f"| {statistics.median(sealed['samples']):.0f} "
                        f"| {paired_ratio(ours['samples'], raw['samples']):.3f} "
                        f"| {paired_ratio(sealed['samples'], raw['samples']):.3f} |"
                    )
    add("")


def _render_http(add: c.Callable[[str], None], http: Results) -> None:
    add("## Mode 2: HTTP (gunicorn + wrk)\n")
    add(http.get("setup", ""))
    add("")
    plans = http.get("plans") or [{"name": "", "text": ""}]
    for plan in plans:
        rows = [r for r in http.get("rows", []) if r.get("plan", "") == plan["name"]]
        if not rows:
            continue
        if plan["name"]:
            add(f"### {plan['name']}: {plan['text']}\n")
        add(
            "| store | scenario | contender | requests/s | p50 ms | p99 ms | errors "
            "| retried saves (ours) |"
        )
        add("| --- | --- | --- | ---: | ---: | ---: | ---: | --- |")
        for row in rows:
            add(
                f"| {row['store']} | {row['scenario']} | {row['contender']} | {row['rps']:.0f} "
                f"| {row['p50']:.2f} | {row['p99']:.2f} | {row.get('errors', 0)} "
                f"| {_conflicts(row)} |"
            )
        add("")


def _conflicts(row: Results) -> str:
    """Our workers' lost conditional saves, over the requests wrk made in this cell (the
    workers' own counts also hold the requests of the server's other cells: its reads)."""
    stats = row.get("stats") or {}
    requests = row.get("requests") or 0
    if not stats.get("requests") or not requests or row["scenario"] == "read":
        return ""
    lost = min(1.0, stats.get("lost_n", 0) / requests) * 100
    again = stats.get("conflicted", 0) / requests * 100
    text = (
        f"{lost:.1f}% lost a conditional save ({stats.get('cas_lost', 0)} lost saves);"
        f" {again:.1f}% saved again ({stats.get('retries', 0)} extra saves,"
        f" {stats.get('unsaved', 0)} not saved)"
    )
    if stats.get("lost_n"):
        text += (
            f"; in-worker p50/p99 ms: those {stats['lost_p50']:.1f}/{stats['lost_p99']:.1f},"
            f" the server's other requests {stats.get('clean_p50', 0):.1f}/"
            f"{stats.get('clean_p99', 0):.1f}"
        )
    return text


def _render_footprint(add: c.Callable[[str], None], scale: Results) -> None:
    rss = (scale.get("memory") or {}).get("rss")
    disk = (scale.get("filesystem") or {}).get("disk")
    if not rss and not disk:
        return
    add("\nSessions at rest (method in `benchmarks/footprint.py`):\n")
    if rss:
        names = (
            ("ours (memory store)", "hashed 43-character keys"),
            ("Flask-Session (cachelib SimpleCache)", "keys of the prefix and the 43-character id"),
        )
        for (who, keys), row in zip(names, rss, strict=False):
            add(
                f"- {who}: resident memory grew by **{row['bytes'] / 2**20:.1f} MiB per"
                f" {row['n']:,} sessions** ({row['bytes'] / row['n']:.0f} bytes per session of"
                f" {row['record']} encoded bytes, {keys})"
            )
    if disk:
        n = disk["files"] or 1
        per_million = 1_000_000 / n
        points = (scale.get("filesystem") or {}).get("points") or []
        growth = (
            points[-1]["read_share"] / points[0]["read_share"] - 1
            if len(points) > 1 and points[0].get("read_share")
            else None
        )
        if growth is not None and abs(growth) <= 0.1:
            per_request = (
                "the per-request cost is flat from 1k to 100k files in the table above, so it"
                " is taken as the same at 1M:"
            )
        elif growth is not None:
            per_request = (
                f"the session's share of a read changed by {growth:+.0%} from 1k to 100k"
                " files in the table above (see the analysis), so no cost at 1M is claimed;"
                " by design"
            )
        else:
            per_request = "the per-request cost was not measured here; by design"
        add(
            f"- filesystem store, {disk['files']:,} session files in {disk['dirs']:,}"
            f" directories: {disk['allocated'] / 2**20:.0f} MiB allocated on disk"
            f" ({disk['apparent'] / 2**20:.1f} MiB of data), {disk['files'] + disk['dirs']:,}"
            f" inodes; so per 1,000,000 sessions (linear: one file per session, a fixed set of"
            f" bucket directories): **{disk['allocated'] * per_million / 2**30:.1f} GiB allocated,"
            f" about {1_000_000 + disk['dirs']:,} inodes**; {per_request} a lookup"
            " resolves one path, and the 4,096 bucket directories (256 × 16) hold about 250"
            " files each at 1M"
        )


def _render_scale(add: c.Callable[[str], None], scale: Results) -> None:
    add("## Scale\n")
    add(
        "Our store's app with more and more other sessions stored; µs per request, medians of "
        "rounds interleaved with a bare app (*session* = minus the bare app, per round).\n"
    )
    add(
        "| store | sessions stored | read µs | write µs | bare µs | read session µs "
        "| write session µs |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, runs in scale.items():
        if not runs.get("points"):
            if runs.get("note"):
                add(f"| {name} | - | - | - | - | - | {runs['note']} |")
            continue
        for point in runs.get("points", []):
            add(
                f"| {name} | {point['n']:,} | {point['us']:.0f} | {point['write_us']:.0f} "
                f"| {point['bare_us']:.0f} | {point['read_share']:.0f} "
                f"| {point['write_share']:.0f} |"
            )
    _render_footprint(add, scale)
    purge = [(name, runs["purge"]) for name, runs in scale.items() if runs.get("purge")]
    if purge:
        add("\nPurge of expired records:\n")
        add("| store | contender | expired records | seconds | records/s |")
        add("| --- | --- | ---: | ---: | ---: |")
        for name, rows in purge:
            for row in rows:
                rate = row["n"] / row["seconds"] if row["seconds"] else 0
                add(
                    f"| {name} | {row['contender']} | {row['n']:,} | {row['seconds']:.2f} "
                    f"| {rate:,.0f} |"
                )
    add("")
