"""The GPU training pairs' runs, one row a tenant (issue 18, trainloss): where a pair's sum of % of solo goes.

Reads a bench/real_workloads.py log (`real-share.log`: one `label: {json}` line a worker; the `train pair L+L #k[i]`
rows and the `train solo native` rows they are read against) and prints, per pair run and tenant: its % of solo (the
median of the log's solo rates), step_ms p50 / p90 (the measured window's steps), the library's charge (its region's
busy time over the window, `gpu_busy_fraction`), NVML's device utilization over the window, and its exit line's
figures (launch.c launch_stats_report, parsed by bench/turns.py turn_stats): turns on / first on after / off count /
judged out, turns' holds, the credit waits (held, held with nothing queued, credit capped), the full-ring waits, the
share of launches measured coarsely. With HAMI_SM_TURNS_LOG files beside the log (`turns.<pid>`), each run adds the
span of its tenants' stay-test judgements (the time turns were on and judged, CLOCK_MONOTONIC) and the gaps in it.

The exit line's time base (launch.c, turns.c turns_update): every figure is over the process's life, not the 4 s
window. "turns on" adds the time between two turns_update calls (every ms while it launches) with two or more taking
turns, from the first shared, capped update to the exit: the warm-up before GO and the tail after the window (until the
neighbour's record goes) count as well. "first on after" is from the first turns_update that found it capped and
shared (turns.c turn_since: set once, never reset) to the first with turns on. "off" counts every fall from turns to
none, the one at the end when the neighbour exits first included.

    .venv/bin/python hami_plugins_nvidia/bench/train_pairs_read.py LOG_OR_DIR [...] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from turns import turn_stats  # noqa: E402 - the exit line's turns and credit figures, parsed in one place
from turns_log import read_log  # noqa: E402 - HAMI_SM_TURNS_LOG's files

LABEL = re.compile(r"^train (?:pair (?P<a>\d+)\+(?P<b>\d+) #(?P<k>\d+)\[(?P<i>\d)\]|solo native #\d+): (?P<js>\{.*\})$")
SWITCHES = re.compile(r"switches charged (?P<on>[\d.]+) ms, not (?P<off>[\d.]+) ms \(demand alone (?P<solo>[\d.]+) %")
PID = re.compile(r"\[HAMI-vgpu \w+ pid (?P<pid>\d+)\]")
MAX_LOG_BYTES = 64 << 20


def read_share_log(path: Path) -> dict:
    """{solo: [rates], runs: [{pair, k, tenants: [row, row]}]} from one real-share.log."""
    if path.stat().st_size > MAX_LOG_BYTES:
        raise ValueError(f"{path}: over {MAX_LOG_BYTES} bytes")
    solos: list[float] = []
    runs: dict[tuple[str, int], dict] = {}
    for line in path.read_text(errors="replace").splitlines():
        m = LABEL.match(line)
        if not m:
            continue
        try:
            res = json.loads(m["js"])
        except ValueError:
            continue
        rate = res.get("rate")
        if not isinstance(rate, int | float):
            continue
        if m["a"] is None:
            solos.append(float(rate))
            continue
        pair = f"{m['a']}+{m['b']}"
        run = runs.setdefault((pair, int(m["k"])), {"pair": pair, "k": int(m["k"]), "tenants": [None, None]})
        line_ = res.get("launch_stats") if isinstance(res.get("launch_stats"), str) else ""
        row = {"limit": int(m["a"] if m["i"] == "0" else m["b"]), "rate": float(rate),
               "seconds": res.get("seconds"), "t0": res.get("t0"), "t0_mono": res.get("t0_mono"), "step_p50": (res.get("step_ms") or {}).get("p50"),
               "step_p90": (res.get("step_ms") or {}).get("p90"), "steps": (res.get("step_ms") or {}).get("n"),
               "charged": res.get("gpu_busy_fraction"), "nvml_util": res.get("nvml_util"), **turn_stats("launch stats: " + line_)}
        if sw := SWITCHES.search(line_):
            row.update(sw_charged_ms=float(sw["on"]), sw_free_ms=float(sw["off"]), demand_alone=float(sw["solo"]))
        for ln in res.get("interposer_lines") or []:
            if p := PID.search(ln):
                row["pid"] = int(p["pid"])
                break
        run["tenants"][int(m["i"])] = row
    solo = statistics.median(solos) if solos else None
    out = []
    for run in sorted(runs.values(), key=lambda r: (r["k"], r["pair"])):
        if None in run["tenants"]:
            continue
        for t in run["tenants"]:
            t["pct"] = 100 * t["rate"] / solo if solo else None
        run["sum"] = sum(t["pct"] for t in run["tenants"]) if solo else None
        out.append(run)
    return {"log": str(path), "solo": solo, "solos": solos, "runs": out}


def window_turns(edges: list[dict], t0_ns: int, end_ns: int) -> dict:
    """From a tenant's turns-on / turns-off lines (turns_log.parse_edge) and its measured window [t0_ns, end_ns)
    (CLOCK_MONOTONIC ns): the time turns were on inside the window (s), when they first came on in it (s after t0; 0:
    already on at its start; None: never), and their edges in it ([s after t0, "on" | "off"])."""
    on_at, on_s, first, inside = None, 0.0, None, []
    for e in sorted(edges, key=lambda e: e["t_ns"]):
        if e["turns"] == "on" and on_at is None:
            on_at = e["t_ns"]
        elif e["turns"] == "off" and on_at is not None:
            a, b = max(on_at, t0_ns), min(e["t_ns"], end_ns)
            if b > a:
                on_s += (b - a) / 1e9
                first = (a - t0_ns) / 1e9 if first is None else first
            on_at = None
        if t0_ns <= e["t_ns"] < end_ns:
            inside.append([round((e["t_ns"] - t0_ns) / 1e9, 3), e["turns"]])
    if on_at is not None and end_ns > max(on_at, t0_ns):  # still on at the log's end (the exit)
        a = max(on_at, t0_ns)
        on_s += (end_ns - a) / 1e9
        first = (a - t0_ns) / 1e9 if first is None else first
    return {"on_in_window_s": on_s, "first_on_in_window_s": first, "edges_in_window": inside}


def attach_turns_logs(rec: dict, folder: Path) -> None:
    """Each run's tenants' HAMI_SM_TURNS_LOG files (turns.<pid> beside the log), matched by pid: the judgements' span
    (first to last, s, the pair's first judgement as 0) and the gaps in each tenant's judgements over 0.25 s; with the
    turns-on / turns-off lines (since trainloss) and the worker's t0_mono, where in its window turns were on."""
    logs = {}
    for f in folder.glob("turns.*"):
        if f.suffix[1:].isdigit():
            logs[int(f.suffix[1:])] = read_log(f)
    for run in rec["runs"]:
        ts = {t.get("pid"): [j["t_ns"] for j in logs.get(t.get("pid"), {}).get("judgements", [])]
              for t in run["tenants"]}
        allt = sorted(x for v in ts.values() for x in v)
        if not allt:
            allt = [0]
        run["judged_span_s"] = (allt[-1] - allt[0]) / 1e9 if len(allt) > 1 else 0.0
        for t in run["tenants"]:
            v = ts.get(t.get("pid")) or []
            if v:
                t["judged_first_s"] = (v[0] - allt[0]) / 1e9
                t["judged_last_s"] = (v[-1] - allt[0]) / 1e9
                t["judged_gaps"] = [[round((a - allt[0]) / 1e9, 2), round((b - a) / 1e9, 2)]
                                    for a, b in zip(v, v[1:], strict=False) if b - a > 250_000_000]
                t["judgements"] = len(v)
            log = logs.get(t.get("pid"), {})
            if log.get("edges") and isinstance(t.get("t0_mono"), float) and isinstance(t.get("seconds"), float):
                t0_ns = int(t["t0_mono"] * 1e9)
                t.update(window_turns(log["edges"], t0_ns, t0_ns + int(t["seconds"] * 1e9)))


def _f(x: object, fmt: str = "{:.1f}") -> str:
    return fmt.format(x) if isinstance(x, int | float) else "-"


COLUMNS = (("% solo", "pct", "{:.1f}"), ("step p50/p90 ms", None, None), ("charged", "charged", "{:.3f}"),
           ("NVML %", "nvml_util", "{:.1f}"), ("turns on ms", "turns_on_ms", "{:.0f}"),
           ("first on ms", "turn_first_ms", "{:.0f}"), ("off", "turn_offs", "{}"), ("out", "turn_outs", "{}"),
           ("turn holds / ms", None, None), ("credit held / ms", None, None), ("held, nothing queued ms", "held_idle_ms",
                                                                             "{:.0f}"),
           ("full-ring ms", "full_ring_ms", "{:.0f}"), ("capped ms", "capped_ms", "{:.0f}"),
           ("coarse %", "coarse_pct", "{:.1f}"), ("switches charged ms", "sw_charged_ms", "{:.0f}"),
           ("turns on in window s", "on_in_window_s", "{:.2f}"), ("first on in window s", "first_on_in_window_s",
                                                                  "{:.2f}"))


def markdown(recs: list[dict]) -> str:
    lines = []
    for rec in recs:
        lines += [f"### {rec['log']} (solo {_f(rec['solo'], '{:,.0f}')} tokens/s, n = {len(rec['solos'])})", "",
                  "| run | sum | tenant | " + " | ".join(c for c, _k, _f_ in COLUMNS) + " | judged span |",
                  "|" + "---|" * (len(COLUMNS) + 4)]
        for run in rec["runs"]:
            for i, t in enumerate(run["tenants"]):
                cells = []
                for _c, key, fmt in COLUMNS:
                    if key:
                        cells.append(_f(t.get(key), fmt))
                    elif _c.startswith("step"):
                        cells.append(f"{_f(t.get('step_p50'), '{:.0f}')} / {_f(t.get('step_p90'), '{:.0f}')}")
                    elif _c.startswith("turn holds"):
                        cells.append(f"{_f(t.get('turn_holds'), '{}')} / {_f(t.get('turn_held_ms'), '{:.0f}')}")
                    else:
                        cells.append(f"{_f(t.get('credit_holds'), '{}')} / {_f(t.get('credit_held_ms'), '{:.0f}')}")
                span = (f"{t['judged_first_s']:.2f}-{t['judged_last_s']:.2f} s of {run['judged_span_s']:.2f}"
                        + (f", gaps {t['judged_gaps']}" if t.get("judged_gaps") else "")) if "judged_first_s" in t else "-"
                head = (f"{run['pair']} #{run['k']}", _f(run["sum"])) if i == 0 else ("", "")
                lines.append(f"| {head[0]} | {head[1]} | {t['limit']} % | " + " | ".join(cells) + f" | {span} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", type=Path, help="real-share.log files or folders holding them")
    ap.add_argument("--json", type=Path, help="write the rows here as well")
    args = ap.parse_args()
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        ap.error(f"no such file or folder: {', '.join(missing)[:200]}")
    recs = []
    for p in args.paths:
        for log in sorted(p.rglob("real-share.log")) if p.is_dir() else [p]:
            try:
                rec = read_share_log(log)
                if not rec["runs"]:
                    continue
                attach_turns_logs(rec, log.parent)
            except (OSError, ValueError) as exc:  # unreadable, too large: one line naming it, nothing written
                print(f"train_pairs_read: {str(exc)[:200]}", file=sys.stderr)
                return 2
            recs.append(rec)
    if not recs:
        print("no training pair runs found", file=sys.stderr)
        return 1
    print(markdown(recs))
    if args.json:
        args.json.write_text(json.dumps({"kind": "TrainPairsRead", "records": recs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
