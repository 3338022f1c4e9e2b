"""Where a GPU-bound pair loses throughput (issue 18, record 6): the work each tenant did per second of GPU time the
library charged it, from real_workloads.py's per-run logs (``real-share.log``: one ``label: {json}`` line per run).

Per pair run (limited, native, probe): each tenant's throughput as % of the median solo of the same log, the GPU
time charged (the region's busy time over its window), their ratio (work per charged second: 1.0 is what the solo
did per second of its window), the charges' sum, the throttle's holds, the share of coarse launches, the step
times and the tenants' window overlap (issue18_judge.window_overlap; below 95 % one ran part alone). Per program,
the same ratio for its runs alone (``alone N force``): what a charged second yields without a neighbour.

The charges are processor-sharing (docs/interposer.md): their sum over a pair is the time at least one tenant had
work on the GPU, so ``1 - sum`` is time both left it idle. With one more assumption -- the lower-charged tenant
never ran alone (it is the one the throttle holds; the other, GPU-bound, always has work queued) -- the window
splits into time both had work (2 x the lower charge), time one ran alone (the charges' difference) and idle, and
the work done while both had work per second of it follows (``coactive_work``: the pair's work less the alone
time's, at the alone ratio). That split is a model, printed apart from the measured columns; a native pair (no
library, both always busy) measures the same figure without it.

    .venv/bin/python hami_plugins_nvidia/bench/pair_work.py FOLDER_OR_LOG [...] [--json FILE]

Each path is analysed apart (one device's runs: the alone ratio is pooled over its logs only).
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

import late_workers  # noqa: E402 - a bench script beside this one: the per-run log's reader
from issue18_judge import FAMILY, PAIR_OVERLAP_MIN, window_overlap  # noqa: E402 - one rule for a pair's overlap

MAX_LOG_BYTES = 64 << 20
LABEL = re.compile(r"(?P<kind>[a-z]+) (?:(?P<solo>solo native #\d+\+?)|alone (?P<pct>\d{1,3}) force #\d+|"
                   r"pair (?:(?P<lo>\d{1,3})\+(?P<hi>\d{1,3}) #(?P<k>\d+)|native(?: #(?P<nk>\d+))?|(?P<probe>probe))"
                   r"\[(?P<i>[01])\])")
HELD = re.compile(r"held (\d+) times, ([\d.]+) ms")
COARSE = re.compile(r"\(([\d.]+) % coarse\)")


class PairWorkError(ValueError):
    """A log this reader cannot use: one line naming the file (and line) and what is wrong."""


def read_log(path: Path) -> list[tuple[re.Match, dict]]:
    """The runs of one per-run log this reader knows, in order: (label match, result). Other labels (the policy
    timeline, other benches) and lines cut short are skipped (late_workers.read_log reads the lines)."""
    try:
        if path.stat().st_size > MAX_LOG_BYTES:
            raise PairWorkError(f"{path}: larger than {MAX_LOG_BYTES >> 20} MiB")
        return [(m, res) for label, res in late_workers.read_log(path) if (m := LABEL.fullmatch(label))]
    except OSError as exc:
        raise PairWorkError(f"{path}: {exc.strerror or exc}") from None


def _num(res: dict, key: str) -> float | None:
    x = res.get(key)
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and x == x else None


def stats_of(res: dict) -> dict:
    """What a tenant's launch stats line says about holds and coarse measurement (None where it has no line)."""
    line = res.get("launch_stats") if isinstance(res.get("launch_stats"), str) else ""
    held, coarse = HELD.search(line), COARSE.search(line)
    step = res.get("step_ms") if isinstance(res.get("step_ms"), dict) else {}
    return {"held_times": int(held[1]) if held else None, "held_ms": float(held[2]) if held else None,
            "coarse_percent": float(coarse[1]) if coarse else None,
            "step_ms_p10_p50_p90": [step.get(k) for k in ("p10", "p50", "p90")]}


def split_model(shares: list[float], charged: list[float], alone_ratio: float) -> dict:
    """The window split of a limited or probe pair under the model in the module docstring: fractions of the
    window with both tenants' work on the GPU, with one alone, idle; and the work per second while both had work
    (solo = 1.0). None for coactive_work where the tenants never had work together."""
    lo, hi = sorted(charged)
    both, one = 2 * lo, hi - lo
    work = sum(shares) / 100
    return {"both": round(both, 4), "one_alone": round(one, 4), "idle": round(1 - both - one, 4) + 0.0,
            "coactive_work": round((work - alone_ratio * one) / both, 3) if both > 0 else None}


def analyse(logs: list[tuple[Path, str]]) -> dict:
    """Every log's pairs, and per program the work per charged second of its runs alone (pooled over the logs: give
    one device's folder at a time). The model is worked out for GPU-bound programs only (issue18_judge.FAMILY: not
    the launch-bound inference loop, whose solo leaves the GPU idle most of the time), at the alone ratio of the
    same logs, or 1.0 (said so) where they hold no run alone."""
    alone: dict[str, list[float]] = {}
    pairs = []
    for log, name in logs:
        runs = read_log(log)
        solos: dict[str, list[float]] = {}
        for m, res in runs:
            if m["solo"] and (rate := _num(res, "rate")):
                solos.setdefault(m["kind"], []).append(rate)
        solo = {k: statistics.median(v) for k, v in solos.items()}
        half: dict[tuple, dict] = {}
        for m, res in runs:
            kind, rate = m["kind"], _num(res, "rate")
            if kind not in solo or rate is None:
                continue
            share = 100 * rate / solo[kind]
            if m["pct"]:
                ch = _num(res, "gpu_busy_fraction")
                if ch:
                    alone.setdefault(kind, []).append(share / (100 * ch))
                continue
            if m["solo"]:
                continue
            what = (f"{m['lo']}+{m['hi']} #{m['k']}" if m["lo"] else "probe" if m["probe"]
                    else f"native #{m['nk'] or 0}")
            key = (kind, what)
            if m["i"] == "0":
                half[key] = res | {"_share": share}
                continue
            first = half.pop(key, None)
            if first is None:
                continue
            both = [first, res | {"_share": share}]
            charged = [_num(x, "gpu_busy_fraction") for x in both]
            shares = [round(x["_share"], 1) for x in both]
            ov = window_overlap(both)
            row = {"log": name, "program": kind, "run": what, "overlap": None if ov is None else round(ov, 3),
                   "shares": shares, "sum": round(sum(shares), 1),
                   "charged": charged if all(c is not None for c in charged) else None,
                   "tenants": [stats_of(x) for x in both]}
            if row["charged"]:
                row["charged_sum"] = round(sum(charged), 4)
                row["work_per_charged_s"] = [round(s / (100 * c), 3) if c else None for s, c in zip(shares, charged,
                                                                                                   strict=True)]
            pairs.append(row)
    ratios = {k: {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3),
                  "n": len(v)} for k, v in alone.items()}
    for row in pairs:
        r = ratios.get(row["program"], {}).get("median")
        if row.get("charged") and (row["overlap"] or 0) >= PAIR_OVERLAP_MIN and \
                FAMILY.get(row["program"], "launch") != "launch":
            row["model"] = split_model(row["shares"], row["charged"], r or 1.0) | {"alone_ratio": r or 1.0,
                                                                                    "alone_ratio_assumed": r is None}
    return {"alone_work_per_charged_s": ratios, "pairs": pairs}


def _f(x: object) -> str:
    if x is None:
        return "-"
    if isinstance(x, list):
        return " + ".join(_f(v) for v in x)
    return f"{x:g}" if isinstance(x, float) else str(x)


def table(result: dict) -> list[str]:
    """The markdown the record quotes: the alone ratios, then one line per pair run."""
    out = ["| program | alone runs: work per charged second, median (min-max), n |", "|---|---|"]
    out += [f"| {k} | {v['median']:g} ({v['min']:g}-{v['max']:g}), {v['n']} |"
            for k, v in sorted(result["alone_work_per_charged_s"].items())]
    out += ["", "| log | run | overlap | % of solo | sum | charged | charged sum | work per charged s | held (times, ms) "
            "| % coarse | step ms p50 | model: both / one alone / idle | model: work per s while both |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["pairs"]:
        t = r["tenants"]
        held = "; ".join("-" if x["held_times"] is None else f"{x['held_times']}, {x['held_ms']:g}" for x in t)
        m = r.get("model") or {}
        split = "{:.2f} / {:.2f} / {:.2f}".format(*(round(m[k], 2) + 0.0 for k in ("both", "one_alone", "idle"))) \
            if m else "-"
        alone = "" if not m else f" (alone {m['alone_ratio']:g}{', assumed' if m['alone_ratio_assumed'] else ''})"
        out.append(f"| {r['log']} | {r['program']} {r['run']} | {_f(r['overlap'])} | {_f(r['shares'])} | {_f(r['sum'])} | "
                   f"{_f(r['charged'])} | {_f(r.get('charged_sum'))} | {_f(r.get('work_per_charged_s'))} | {held} | "
                   f"{_f([x['coarse_percent'] for x in t])} | {_f([x['step_ms_p10_p50_p90'][1] for x in t])} | "
                   f"{split} | {_f(m.get('coactive_work'))}{alone} |")
    return out


def find_logs(p: Path) -> list[tuple[Path, str]]:
    """(log, the name the table gives it: its folder below p) for every real-share.log under p (or p itself)."""
    if p.is_dir():
        logs = [(f, str(f.parent.relative_to(p)) if f.parent != p else p.name) for f in sorted(p.rglob("real-share.log"))]
    elif p.is_file():
        logs = [(p, p.parent.name)]
    else:
        raise PairWorkError(f"{p}: no such file or folder")
    if not logs:
        raise PairWorkError(f"{p}: no real-share.log under it")
    return logs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path, help="real-share.log files or folders holding them, one device's "
                    "each (each analysed apart)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    try:
        results = [analyse(find_logs(p)) | {"path": str(p)} for p in args.paths]
    except PairWorkError as exc:
        print(f"pair_work: {exc}", file=sys.stderr)
        return 2
    for result in results:
        print("\n".join([f"## {result['path']}", "", *table(result), ""]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
