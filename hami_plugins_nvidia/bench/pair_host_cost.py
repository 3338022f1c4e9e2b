"""The library's own host cost per launch of a launch-bound loop alone and in a launch-bound pair, on the fake libcuda
(issue 18, record 7: on the H100 the batch-1 inference loop spent 2-5.6 us per launch in the library's sections in
pairs under `default`, against ~0.7 us alone at force 70).

Each tenant runs the fake driver_app's `passes` loop (an inference-like pass: --pattern kernels, a busy-waited
--gap-us of host time after each launch, a sync per pass; by default 183 launches of 10 us, ~20 us of host time each:
busy ~30-50 % alone on this VM, so a pair contends a little, as on the H100). Cases: `alone` (one tenant, limit 70,
`force`: record 7's alone runs), `pair30+70` and `pair50+50` (two containers - their own regions - on one node board
and one fake GPU, `default` policy). Each tenant is pinned to its own CPU core. Per run and tenant: its launch stats
line (HAMI_LAUNCH_STATS=1): coarse and fast-path %, event records / queries / elapsed-time calls per launch, host us
per launch of each section; its launches per second and the GPU share the fake gave it. Builds (--lib) and cases run
interleaved, round after round (ABAB then BABA).

The fake's driver calls cost what --costs models (FAKE_CUDA_COSTS_NS; default: an H100-like 6 us launch call and
1.5-2 us event calls, so the calls per launch show in the host time); the figures are the fake libcuda's on whatever
host runs the bench ("fake libcuda, this 2-core VM" for the records in docs/results), never hardware figures.

    .venv/bin/python hami_plugins_nvidia/bench/pair_host_cost.py --lib before=/tmp/main-csrc \\
        --lib after=hami_plugins_nvidia/hami_plugins_nvidia/csrc --rounds 5 \\
        --out docs/results/2026-12-06-fake-pair-host-cost.json --md docs/results/2026-12-06-fake-pair-host-cost.md
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from issue18_judge import PRECISE_WHY, STATS_SECTIONS, launch_stats_figures, precise_reasons
from launch_path_cost import (
    add_record_args,
    add_round_args,
    base_env,
    case_rows,
    check_round_args,
    parse_cases,
    record_head,
    record_title,
    run_rounds,
    write_record,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hami_plugins_nvidia" / "interposer"))
import region  # noqa: E402 - the region layout, read through cffi

CASES = {"alone": ((70, "force"),), "pair30+70": ((30, "default"), (70, "default")),
         "pair50+50": ((50, "default"), (50, "default"))}
COSTS = "launch=6000,record=2000,query=1500,elapsed=1500"  # H100-like host costs per driver call, ns (modelled)
FIGURES = ("records", "queries", "elapsed", *STATS_SECTIONS)


def run_passes(app: Path, fake_dir: Path, lib: Path, tmp: Path, tenants: tuple[tuple[int, str], ...],
               a: argparse.Namespace, env_extra: dict[str, str] | None = None) -> list[tuple[list[str], str, float, int]]:
    """Each tenant (limit, policy) runs driver_app's `passes` loop (a.pattern, a.gap_us, a.seconds) under the library
    lib, pinned to a core of its own, its own region on one node board and one fake GPU (a.costs, env_extra):
    per tenant its last `passes` line's words, its launch stats line, its window (s) and the GPU time the library
    charged its container (its region's busy ns over the whole run: the window and the few ms before it)."""
    procs = []
    cores = sorted(os.sched_getaffinity(0))
    for k, (limit, policy) in enumerate(tenants):
        env = base_env(fake_dir, tmp, f"t{k}")
        env.update(LD_PRELOAD=str(lib), CUDA_DEVICE_SM_LIMIT=str(limit), GPU_CORE_UTILIZATION_POLICY=policy,
                   HAMI_LAUNCH_STATS="1", FAKE_CUDA_GPU=str(tmp / "gpu"), HAMI_NODE_BOARD=str(tmp / "board"),
                   FAKE_CUDA_COSTS_NS=a.costs, **(env_extra or {}))
        core = {cores[k % len(cores)]}
        procs.append(subprocess.Popen([str(app), "ctx", "0", "passes", a.pattern, str(a.gap_us), str(a.seconds)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      preexec_fn=lambda c=core: os.sched_setaffinity(0, c)))
    done = []
    for k, p in enumerate(procs):
        out, err = p.communicate(timeout=120)
        words = [ln.split() for ln in out.splitlines() if ln.startswith("passes ")]
        line = next((ln for ln in err.splitlines() if "launch stats:" in ln), None)
        if p.returncode or not words or words[-1][1] != "0" or line is None:
            raise RuntimeError(f"driver_app failed ({p.returncode}): {err.strip()[-300:]}")
        with region.SharedRegion(tmp / f"t{k}" / "region") as reg:
            busy = reg.busy_ns(0)
        done.append((words[-1], line, float(words[-1][3]) - float(words[-1][2]), busy))
    return done


def run_case(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, a: argparse.Namespace) -> list[dict]:
    """One run of the case: each tenant's figures (a dict per tenant, in the order of CASES[case])."""
    tenants = []
    for w, line, wall, busy in run_passes(app, fake_dir, lib, tmp, CASES[case], a):
        fig = launch_stats_figures(line)
        if fig is None:
            raise RuntimeError(f"driver_app's launch stats line unreadable: {line.strip()[-300:]}")
        # what the library charged the container, against its limit and the GPU time the fake gave it
        fig.update(launches_per_s=int(w[5]) / wall, gpu_pct=100 * float(w[4]) / wall, charged_pct=busy / 1e7 / wall,
                   charged_us=busy / 1e3 / max(int(w[5]), 1))
        # why its launches were precise (launch.c count_why), % of its measured launches; builds before: none
        why, measured = precise_reasons(line), re.search(r"(\d+) measured launches", line)
        if why and measured and int(measured.group(1)):
            fig.update({f"why {k}": 100 * v / int(measured.group(1)) for k, v in why.items()})
        tenants.append(fig)
    return tenants


def med(runs: list[list[dict]], k: int, key: str) -> float:
    """The median over runs of tenant k's figure `key`."""
    return statistics.median(r[k][key] for r in runs)


def markdown(res: dict, raw: dict) -> str:
    lines = record_title("Host cost per launch alone and in a launch-bound pair, fake libcuda, this 2-core VM", res,
                         res["note"])
    lines += [f"Loop: `passes {res['pattern']} {res['gap_us']} {res['seconds']}` per tenant; modelled driver call "
              f"costs FAKE_CUDA_COSTS_NS=`{res['costs']}`. Medians of {res['rounds']} interleaved runs; host us per "
              "launch from each tenant's launch stats line (sections nest: throttle includes its harvests).", "",
              "| case | build | tenant | coarse % | fast % | records | queries | elapsed | "
              + " | ".join(STATS_SECTIONS) + " | launches/s | GPU % | charged % | charged us / launch |",
              "|---" * (12 + len(STATS_SECTIONS)) + "|"]
    for case, by_lib in raw.items():
        for name, runs in by_lib.items():
            for k, (limit, policy) in enumerate(CASES[case]):
                cells = [f"{med(runs, k, 'coarse_pct'):.1f}", f"{med(runs, k, 'fast_pct'):.1f}",
                         *(f"{med(runs, k, f):.3f}" if f in ("records", "queries", "elapsed") else f"{med(runs, k, f):.2f}"
                           for f in FIGURES), f"{med(runs, k, 'launches_per_s'):.0f}", f"{med(runs, k, 'gpu_pct'):.1f}",
                         f"{med(runs, k, 'charged_pct'):.1f}", f"{med(runs, k, 'charged_us'):.2f}"]
                lines.append(f"| {case} | {name} | {limit} {policy} | " + " | ".join(cells) + " |")
    why = [f"why {k}" for k in PRECISE_WHY]
    lines += ["", "Why launches were precise (launch.c count_why; % of the tenant's measured launches, medians; the "
              "reasons overlap; '-': a build without the counters):", "",
              "| case | build | tenant | " + " | ".join(PRECISE_WHY) + " |", "|---" * (3 + len(PRECISE_WHY)) + "|"]
    for case, by_lib in raw.items():
        for name, runs in by_lib.items():
            for k, (limit, policy) in enumerate(CASES[case]):
                cells = [f"{med(runs, k, f):.1f}" if all(f in r[k] for r in runs) else "-" for f in why]
                lines.append(f"| {case} | {name} | {limit} {policy} | " + " | ".join(cells) + " |")
    lines += ["", "Library host us per launch (before + after the launch), each run in order:", ""]
    lines += case_rows(raw, lambda runs: "; ".join(
        f"tenant {k}: " + ", ".join(f"{t['before the launch'] + t['after the launch']:.2f}"
                                    for t in (r[k] for r in runs)) for k in range(len(runs[0]))))
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--pattern", default="183*10", help="passes PATTERN: COUNT*US,... kernels of one pass")
    ap.add_argument("--gap-us", type=int, default=20, help="busy-waited host time after each launch")
    ap.add_argument("--costs", default=COSTS, help="FAKE_CUDA_COSTS_NS for every tenant ('' = the fake's own)")
    a = ap.parse_args()
    check_round_args(ap, a)
    cases = parse_cases(ap, a.cases, list(CASES))
    if not re.fullmatch(r"\d{1,5}\*\d{1,6}(,\d{1,5}\*\d{1,6}){0,63}", a.pattern) or not 0 <= a.gap_us <= 100000:
        ap.error(f"--pattern {a.pattern!r} / --gap-us {a.gap_us}: expected COUNT*US[,COUNT*US...] and 0..100000 us")
    if not re.fullmatch(r"([a-z]+=\d{1,9})?(,[a-z]+=\d{1,9})*", a.costs):
        ap.error(f"--costs {a.costs!r}: expected CLASS=NS[,CLASS=NS...] (launch, record, query, elapsed, sync)")
    raw = run_rounds(ap, a, cases, "phc-", lambda app, fake_dir, lib, tmp, case: run_case(
        app, fake_dir, lib, tmp, case, a))
    summary = {case: {name: [{f: round(med(runs, k, f), 3) for f in (*FIGURES, "coarse_pct", "fast_pct",
                                                                        "launches_per_s", "gpu_pct", "charged_pct",
                                                                        "charged_us")}
                             for k in range(len(CASES[case]))] for name, runs in by_lib.items()}
               for case, by_lib in raw.items()}
    result = record_head(a, provenance="fake libcuda, this 2-core VM (not a GPU)", pattern=a.pattern,
                         gap_us=a.gap_us, seconds=a.seconds, costs=a.costs, note=a.note, cases=cases,
                         summary=summary, raw=raw)
    return write_record(a, result, markdown(result, raw))


if __name__ == "__main__":
    raise SystemExit(main())
