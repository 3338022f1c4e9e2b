"""Issue 18's launch ladder (issue18_gpu.sh stage 9) as a comparison table: where the inference loop's 11-13 us per
launch go. Reads the launch-cost.json files that ``launch_cost.py --ladder`` writes (a field ``ladder`` lists the
rungs in order, each one thing more than the last) and prints, per rung: the rate (median, min-max) and its share of
the native baseline on the same cores, the step time (p50/p90), each pass split at its host sync (submit: queuing
the launches; sync: the wait after them), the host time per launch (step p50 over the launches per step), the
library's own host time per launch and driver calls per launch (its stats line), and how long its throttle held.

Never a verdict: the ladder tells hypotheses apart (the rungs' comment in issue18_gpu.sh says which), it has no
target. The issue 18 judge prints the same table in its scorecard (a section of its own).

    .venv/bin/python hami_plugins_nvidia/bench/launch_ladder.py FOLDER_OR_FILE [...]
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from issue18_judge import library_host_us  # noqa: E402 - the stats line's host time, parsed in one place

MAX_FILE_BYTES = 64 << 20


class LadderError(ValueError):
    """A ladder file of a shape this reader does not know: one line naming the file and the field."""


def _num(x: object) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and x == x else None


def _cores(x: object) -> list[int] | None:
    ok = isinstance(x, list) and x and all(isinstance(c, int) and not isinstance(c, bool) for c in x)
    return x if ok else None


def _med(xs: list[float | None]) -> float | None:
    v = [x for x in xs if x is not None]
    return statistics.median(v) if v else None


def stats_fields(line: object) -> dict[str, float]:
    """From the library's `launch stats` line: driver calls per launch, % coarse, and the throttle's holds."""
    if not isinstance(line, str):
        return {}
    out: dict[str, float] = {}
    m = re.search(r"per launch ([\d.]+) event records, ([\d.]+) event queries, ([\d.]+) elapsed-time calls", line)
    if m:
        out.update(records=float(m.group(1)), queries=float(m.group(2)), elapsed=float(m.group(3)))
    if m := re.search(r"\(([\d.]+) % coarse\)", line):
        out["coarse_pct"] = float(m.group(1))
    if m := re.search(r"held (\d+) times, ([\d.]+) ms", line):
        out.update(held=float(m.group(1)), held_ms=float(m.group(2)))
    if (us := library_host_us(line)) is not None:
        out["library_us"] = us
    # since 2026-12-06: the driver's own launch call, the watcher's wakes and CPU, the exiting thread's switches
    if m := re.search(r"driver's launch call ([\d.]+) us; watcher (\d+) wakes \((\d+) left to the launcher\), "
                      r"([\d.]+) ms CPU; this thread ([\d.]+) ms CPU, (\d+) voluntary \+ (\d+) involuntary", line):
        out.update(driver_us=float(m.group(1)), wakes=float(m.group(2)), wakes_left=float(m.group(3)),
                   watcher_cpu_ms=float(m.group(4)),
                   thread_cpu_ms=float(m.group(5)), invol=float(m.group(7)))
    # since 2026-12-06 (alonecost): the watcher's sleeps past the busy ceiling (alone and coarse: watcher.c)
    if m := re.search(r"watcher sleeps past (\d+) us: (\d+) \(alone ceiling (\d+) us\)", line):
        out.update(long_sleeps=float(m.group(2)), alone_ceiling_us=float(m.group(3)))
    # since 2026-12-07 (pairhost): the back-off's sleeps below the busy ceiling after a collection (watcher.c)
    if m := re.search(r"alone ceiling \d+ us\), (\d+) below it ramping up after a collection", line):
        out["ramp_sleeps"] = float(m.group(1))
    # since 2026-12-07 (quietpace): note_users' looks at the board (those at the 4 ms quiet pace) and NVML counts
    if m := re.search(r"board looks (\d+) \((\d+) at the quiet pace\), NVML process counts (\d+)", line):
        out.update(looks=float(m.group(1)), looks_quiet=float(m.group(2)), nvml_counts=float(m.group(3)))
    # since 2026-12-07 (ppcounters): the pair probe's section, a HAMI_BENCH_PAIRPROBE build's only (launch_int.h): the
    # charge by rule (ms), the one-launch precise spans by kind (count, average us), the start marks reached before /
    # after their submission, the estimate per coarse launch and the samples (count, average us)
    if m := re.search(r"; pairprobe: charge by rule gap (-?[\d.]+), deferred (-?[\d.]+), estimate (-?[\d.]+), "
                      r"precise (-?[\d.]+), doubt (-?[\d.]+), other (-?[\d.]+) ms; one-launch precise spans chained "
                      r"(\d+)/([\d.]+) us, sub-floored (\d+)/([\d.]+), start-mark (\d+)/([\d.]+); start marks "
                      r"before/after submission (\d+)/(\d+); coarse estimate ([\d.]+) us; samples (\d+)/([\d.]+) us",
                      line):
        keys = ("pp_gap_ms", "pp_deferred_ms", "pp_estimate_ms", "pp_precise_ms", "pp_doubt_ms", "pp_other_ms",
                "pp_chained_n", "pp_chained_us", "pp_subfloored_n", "pp_subfloored_us", "pp_startmark_n",
                "pp_startmark_us", "pp_start_before_n", "pp_start_after_n", "pp_estimate_us", "pp_samples_n",
                "pp_samples_us")
        out.update(zip(keys, map(float, m.groups()), strict=True))
    return out


def _p(runs: list[dict], key: str, q: str) -> float | None:
    return _med([_num(r.get(key, {}).get(q)) if isinstance(r.get(key), dict) else None for r in runs])


def ladder_rows(data: dict, rel: str) -> list[dict]:
    """One row per rung (the native baseline first), in the ladder's order; LadderError names a bad field."""
    ladder, alone = data.get("ladder"), data.get("alone")
    if not isinstance(ladder, list) or not ladder:
        raise LadderError(f"{rel}: field 'ladder' is not a non-empty list")
    if not isinstance(alone, dict):
        raise LadderError(f"{rel}: field 'alone' is not an object")
    cores = data.get("cores")
    cores0 = _cores(cores[0]) if isinstance(cores, list) and cores else None
    if cores0 is None:
        raise LadderError(f"{rel}: field 'cores' is not a list whose first item lists core numbers")
    rungs = [{"name": "native", "cores": cores0, "native": True, "env": {}, "defines": []}]
    for i, r in enumerate(ladder):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) or _cores(r.get("cores")) is None:
            raise LadderError(f"{rel}: field 'ladder[{i}]' needs a name (text) and cores (a list of core numbers)")
        rungs.append(r)
    baseline = {tuple(r["cores"]): r["name"] for r in rungs if r.get("native")}
    rates_by = {}
    rows: list[dict] = []
    for rung in rungs:
        ent = alone.get(rung["name"])
        if ent is None:
            rows.append({"rung": rung["name"], "cores": rung["cores"], "missing": True})
            continue
        if not isinstance(ent, dict) or not isinstance(ent.get("runs"), list) or not isinstance(ent.get("rates"), list):
            raise LadderError(f"{rel}: field 'alone.{rung['name']}' needs lists 'runs' and 'rates'")
        runs = [r for r in ent["runs"] if isinstance(r, dict)]
        rates = [x for x in map(_num, ent["rates"]) if x]
        rates_by[rung["name"]] = rates
        st = [stats_fields(r.get("launch_stats")) for r in runs]
        base = baseline.get(tuple(rung["cores"]))
        rows.append({
            "rung": rung["name"], "cores": rung["cores"], "adds": _adds(rung), "baseline": base,
            "n": len(rates), "rate": _med(rates), "rate_min": min(rates, default=None),
            "rate_max": max(rates, default=None),
            "step_p50": _p(runs, "step_ms", "p50"), "step_p90": _p(runs, "step_ms", "p90"),
            "submit_p50": _p(runs, "submit_ms", "p50"), "sync_p50": _p(runs, "sync_ms", "p50"),
            "sync_p90": _p(runs, "sync_ms", "p90"),
            "host_us": _med([_num(r.get("host_us_per_launch")) for r in runs]),
            **{k: _med([s.get(k) for s in st]) for k in ("library_us", "records", "queries", "elapsed", "coarse_pct",
                                                          "held", "held_ms", "driver_us", "wakes",
                                                          "watcher_cpu_ms", "invol")},
            "errors": [str(r["error"])[:80] for r in runs if r.get("error")],
        })
    prev = None
    for row in rows:
        if row.get("missing"):
            continue
        b = _med(rates_by.get(row["baseline"] or "", []))
        row["pct_of_native"] = round(100 * row["rate"] / b, 1) if b and row["rate"] else None
        row["vs_previous_pct"] = (round(100 * (row["rate"] / prev - 1), 1) if prev and row["rate"] and
                                  row["rung"] != row["baseline"] else None)
        prev = row["rate"] or prev
    return rows


def _adds(rung: dict) -> str:
    if rung.get("native"):
        return "no preload"
    env = rung.get("env") if isinstance(rung.get("env"), dict) else {}
    bits = [f"{k}={v}" if v != "" else f"{k} unset" for k, v in env.items()]
    bits += [f"-D{d}" for d in rung.get("defines") or [] if isinstance(d, str)]
    return ", ".join(bits) or "the library as shipped"


def _f(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def table_lines(rows: list[dict]) -> list[str]:
    """The ladder as a Markdown table, one line per rung."""
    out = ["| rung | cores | adds | n | rate /s median (min-max) | % of native (same cores) | vs previous rung % | "
           "step ms p50 / p90 | submit ms p50 | sync ms p50 / p90 | host us/launch | library us/launch | "
           "records / queries / elapsed per launch | % coarse | held (times, ms) | driver's launch call us | "
           "watcher wakes, CPU ms | involuntary switches |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cores = ",".join(map(str, r["cores"]))
        if r.get("missing"):
            out.append(f"| {r['rung']} | {cores} | not run | | | | | | | | | | | | | | | |")
            continue
        calls = "-" if r["records"] is None else f"{r['records']:.3f} / {r['queries']:.3f} / {r['elapsed']:.3f}"
        held = "-" if r["held"] is None else f"{r['held']:.0f}, {r['held_ms']:.1f}"
        err = f" ({len(r['errors'])} failed)" if r["errors"] else ""
        watch = "-" if r.get("wakes") is None else f"{r['wakes']:.0f}, {r['watcher_cpu_ms']:.1f}"
        out.append(f"| {r['rung']} | {cores} | {r['adds'].replace('|', '/')} | {r['n']}{err} | {_f(r['rate'], 1)} "
                   f"({_f(r['rate_min'], 1)}-{_f(r['rate_max'], 1)}) | {_f(r['pct_of_native'], 1)} | "
                   f"{_f(r['vs_previous_pct'], 1)} | {_f(r['step_p50'])} / {_f(r['step_p90'])} | "
                   f"{_f(r['submit_p50'])} | {_f(r['sync_p50'])} / {_f(r['sync_p90'])} | {_f(r['host_us'])} | "
                   f"{_f(r['library_us'])} | {calls} | {_f(r['coarse_pct'], 1)} | {held} | {_f(r.get('driver_us'))} | "
                   f"{watch} | {_f(r.get('invol'), 0)} |")
    return out


def load(path: Path, rel: str) -> dict | None:
    """A launch-cost.json: its object when it holds a ladder, None when it is another launch_cost run."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise LadderError(f"{rel}: larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise LadderError(f"{rel}: not valid JSON ({exc.__class__.__name__})") from None
    return data if isinstance(data, dict) and "ladder" in data else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: launch_ladder.py FOLDER_OR_FILE [...]", file=sys.stderr)
        return 2
    found = 0
    try:
        for a in map(Path, args):
            files = [a] if a.is_file() else sorted(a.rglob("launch-cost.json"))
            for f in files:
                data = load(f, str(f))
                if data is None:
                    continue
                found += 1
                print(f"## {f}: {data.get('device', 'unknown device')}, rounds done "
                      f"{data.get('rounds_done', '?')}\n")
                print("\n".join(table_lines(ladder_rows(data, str(f)))) + "\n")
    except (LadderError, OSError) as exc:
        print(f"launch_ladder: {exc}", file=sys.stderr)
        return 2
    if not found:
        print(f"launch_ladder: no launch-cost.json with a ladder under {' '.join(args)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
