"""Which workers of a real_workloads.py step started late, and what that did to the issue-18 readings (no GPU).

Reads the per-run logs (`real-share.log`) under a record folder: for each `default`-policy timeline, how late A and B
opened their windows after their BENCH_GO and both readings of its latencies -- on one clock (issue18_judge's
policy_latencies) and as the judge read them before (stamps taken as counting from each window's start `t0`); for
each limited pair run, the gap between its tenants' starts and how much of the window they measured together
(issue18_judge.window_overlap). Issue 18 record 5: A 1.9-2.8 s late read as a ~2 s reaction; training pair tenants
0.3-1.0 s late measured 74-92 % of their windows together.

    .venv/bin/python hami_plugins_nvidia/bench/late_workers.py docs/results/2026-12-05-h200-issue18-r5

Prints one JSON object. A's solo step is worked out as the judge does (its units per step over the median solo rate
of the same log).
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

import issue18_judge as judge  # noqa: E402 - a bench script beside this one, not a package


def read_log(path: Path) -> list[tuple[str, dict]]:
    """The log's `label: {json}` results, in order; a line cut short or of another shape is skipped."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        label, sep, body = line.partition(": {")
        try:
            res = json.loads("{" + body) if sep else None
        except json.JSONDecodeError:
            res = None
        if isinstance(res, dict):
            out.append((label.strip(), res))
    return out


def examine(folder: Path, limit: float = 30.0) -> dict:
    """{"timelines": [...], "pairs": [...]} over every real-*.log under folder (file order)."""
    timelines, pairs = [], []
    for log in sorted(folder.rglob("real-*.log")):
        runs = read_log(log)
        solos: dict[str, list[float]] = {}
        pending: dict[str, dict] = {}
        for label, res in runs:
            if m := re.fullmatch(r"(\w+) solo native.*", label):
                if isinstance(res.get("rate"), int | float) and res["rate"] > 0:
                    solos.setdefault(m.group(1), []).append(res["rate"])
            elif m := re.fullmatch(r"(?:(\w+) )?policy ([AB])", label):
                kind = m.group(1) or "train"
                if m.group(2) == "A":
                    pending[kind] = res
                elif kind in pending and kind in solos:
                    timelines.append(_timeline(log, pending.pop(kind), res, statistics.median(solos[kind]), limit))
            elif m := re.fullmatch(r"(\w+ pair \d+\+\d+ #\d+)\[([01])\]", label):
                if m.group(2) == "0":
                    pending[m.group(1)] = res
                elif m.group(1) in pending:
                    first = pending.pop(m.group(1))
                    ov = judge.window_overlap([first, res])
                    gap = first["t0"] - res["t0"] if ov is not None else None
                    pairs.append({"log": str(log), "run": m.group(1), "late": [first.get("late"), res.get("late")],
                                  "start_gap_s": None if gap is None else round(gap, 3),
                                  "overlap": None if ov is None else round(ov, 3)})
    return {"timelines": timelines, "pairs": pairs}


def _timeline(log: Path, a: dict, b: dict, solo_rate: float, limit: float) -> dict:
    try:
        solo_step = a["rate"] * a["seconds"] / len(a["stamps"]) / solo_rate
        base_a, base_b = judge.stamps_bases(a, b)
        now = judge.policy_latencies(a, b, solo_step, limit)
        # the reading before the GO clock: each worker's stamps taken as counting from its own t0
        before = judge.policy_latencies(dict(a, stamps_base=a["t0"]), dict(b, stamps_base=b["t0"]), solo_step, limit)
    except (judge.TimelineError, KeyError, TypeError, IndexError, ZeroDivisionError) as exc:
        return {"log": str(log), "not_read": str(exc)[:200]}
    return {"log": str(log), "late_s": [round(a["t0"] - base_a, 3), round(b["t0"] - base_b, 3)],
            "capped_released_s": list(now), "read_from_t0_s": list(before)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(f"late_workers: {str(args.folder)[:200]} is not a folder", file=sys.stderr)
        return 2
    print(json.dumps(examine(args.folder), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
