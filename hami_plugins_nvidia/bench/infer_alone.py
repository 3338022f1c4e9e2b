"""A launch-bound tenant alone under `force` at a limit below its demand, after an idle spell (issue 18, record 4's
inference loop: charged 75.7-77.7 % of a 4 s window at a 70 % limit on the H200), on the fake libcuda.

Each run is one fresh container: a few launches (the capped state begins), IDLE ms without launches (a real
program's set-up between its first kernels and its measured loop: the bucket fills), then the measured window:
WINDOW s of kernels of US microseconds back to back with a sync every SYNC launches (many small launches, most
of them measured coarsely and on the throttle's fast path while the credit is ample). Per run it reports the
GPU time the fake gave the process in the window and what the library charged the container, each as a share
of the window's wall time, and the launch statistics; each round also runs the same window unlimited (the
demand: the fake's GPU time with no limit), so a round whose host was too loaded to exceed the limit shows it.
Builds run interleaved (ABAB), the period is the library's default (800 ms) unless --period. Figures of the fake
on whatever machine runs it (the loaded 2-core dev VM for the record in docs/results), never hardware figures.

    .venv/bin/python hami_plugins_nvidia/bench/infer_alone.py --out /tmp/ia.json --rounds 3 \\
        --lib before=/tmp/main-csrc --lib after=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))
sys.path.insert(0, str(HERE))

import region  # noqa: E402 - the region layout, read through cffi
from launch_path_cost import (  # noqa: E402
    add_record_args,
    add_round_args,
    base_env,
    build_libs,
    build_tools,
    check_round_args,
    record_head,
    write_record,
)

STATS_RE = re.compile(r"launch stats: (\d+) measured launches \(([\d.]+) % coarse\); ([\d.]+) % on the throttle's "
                      r"fast path.*verifications (\d+), (\d+) charged the doubt \(([\d.]+) of ([\d.]+) ms\)")


def window_args(a: argparse.Namespace) -> list[str]:
    """driver_app arguments: the first launches, the idle spell, the measured window."""
    return ["ctx", "0", "launch", "kernel", "20", "10", "sleep", str(a.idle_ms),
            "spin", str(a.us), "0", f"{a.window:g}", str(a.sync)]


def run_once(app: Path, fake_dir: Path, lib: Path | None, tmp: Path, tag: str, a: argparse.Namespace) -> dict:
    env = base_env(fake_dir, tmp, tag)
    env.update(FAKE_CUDA_GPU=str(tmp / tag / "gpu"), GPU_CORE_UTILIZATION_POLICY="force", HAMI_LAUNCH_STATS="1")
    if lib is not None:
        env.update(LD_PRELOAD=str(lib), CUDA_DEVICE_SM_LIMIT=str(a.limit))
    if a.period:
        env["HAMI_SM_PERIOD_MS"] = str(a.period)
    p = subprocess.run([str(app), *window_args(a)], env=env, capture_output=True, text=True, timeout=60 + 2 * a.window)
    rows = [ln.split() for ln in p.stdout.splitlines() if ln.startswith(("launch ", "spin "))]
    if p.returncode != 0 or len(rows) != 2 or any(w[1] != "0" for w in rows):
        raise RuntimeError(f"driver_app failed ({p.returncode}): {p.stdout.strip()[-200:]} {p.stderr.strip()[-300:]}")
    first, win = rows
    wall = float(win[3]) - float(win[2])
    out = {"wall_s": round(wall, 4), "gpu_pct": round(100 * float(win[4]) / wall, 2)}
    if lib is None:
        return out
    with region.SharedRegion(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]) as reg:
        charged = reg.busy_ns(0) / 1e9 - float(first[4])  # less the first launches' GPU time (0.2 ms)
    out["charged_pct"] = round(100 * charged / wall, 2)
    m = STATS_RE.search(p.stderr)
    if m:
        out.update(coarse_pct=float(m.group(2)), fast_pct=float(m.group(3)), verifications=int(m.group(4)),
                   doubt_charged=int(m.group(5)), doubt_charged_ms=float(m.group(6)))
    return out


def markdown(result: dict, note: str) -> str:
    c = result["case"]
    lines = [f"# A launch-bound tenant alone over its limit, on the fake libcuda ({result['date']})", "",
             "Simulated: the fake libcuda's GPU on the dev VM (fake libcuda, not hardware). Command:", "",
             f"    {result['command']}", "", f"Host: {result['host']}. {note}".rstrip(), "",
             f"Alone, `force`, limit {c['limit']} %, period {c['period'] or 'default (800)'} ms: {c['idle_ms']} ms "
             f"idle after the first launches, then a {c['window']:g} s window of {c['us']} us kernels back to back, a "
             f"sync every {c['sync']} launches. Per run: the fake's GPU time and the library's charge as % of the "
             "window's wall time, % of launches measured coarsely and on the fast path, verifications that charged "
             "doubt; demand = the same window unlimited in the same round.", "",
             "| build | round | demand % | GPU % | charged % | coarse % | fast path % | doubt charged |",
             "|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        for k, r in enumerate(row["runs"]):
            lines.append(f"| {row['build']} | {k + 1} | {result['demand'][k]['gpu_pct']:.1f} | {r['gpu_pct']:.1f} | "
                         f"{r['charged_pct']:.1f} | {r.get('coarse_pct', -1):.0f} | {r.get('fast_pct', -1):.0f} | "
                         f"{r.get('doubt_charged', 0)} of {r.get('verifications', 0)} "
                         f"({r.get('doubt_charged_ms', 0):.1f} ms) |")
    lines += ["", "| build | GPU % median (min-max) | charged % median (min-max) |", "|---|---|---|"]
    for row in result["rows"]:
        g = [r["gpu_pct"] for r in row["runs"]]
        ch = [r["charged_pct"] for r in row["runs"]]
        lines.append(f"| {row['build']} | {statistics.median(g):.1f} ({min(g):.1f}-{max(g):.1f}) | "
                     f"{statistics.median(ch):.1f} ({min(ch):.1f}-{max(ch):.1f}) |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap, seconds=False)
    ap.add_argument("--limit", type=int, default=70)
    ap.add_argument("--period", type=int, default=0, help="HAMI_SM_PERIOD_MS (0: the library's default)")
    ap.add_argument("--idle-ms", type=int, default=1000, help="no launches between the first ones and the window")
    ap.add_argument("--window", type=float, default=4.0, help="seconds of the measured window")
    ap.add_argument("--us", type=int, default=50, help="kernel length (us)")
    ap.add_argument("--sync", type=int, default=64, help="a sync every this many launches")
    a = ap.parse_args()
    check_round_args(ap, a)
    for name, v, lo, hi in (("--limit", a.limit, 1, 99), ("--period", a.period, 0, 10000),
                            ("--idle-ms", a.idle_ms, 0, 10000), ("--window", a.window, 0.5, 30),
                            ("--us", a.us, 1, 100000), ("--sync", a.sync, 1, 100000)):
        if not lo <= v <= hi:
            ap.error(f"{name} {v}: must be {lo}..{hi}")
    with tempfile.TemporaryDirectory(prefix="hami-infer-alone-") as d:
        tmp = Path(d)
        fake_dir, app = build_tools(tmp / "tools")
        libs = build_libs(ap, a.lib, tmp / "lib")
        runs: dict[str, list[dict]] = {name: [] for name in libs}
        demand: list[dict] = []
        n = 0
        for rnd in range(a.rounds):
            n += 1
            demand.append(run_once(app, fake_dir, None, tmp, f"t{n}", a))
            print(f"round {rnd + 1}: demand {demand[-1]['gpu_pct']:.1f} %", file=sys.stderr)
            order = list(libs) if rnd % 2 == 0 else list(reversed(libs))  # drift on the box hits every build alike
            for name in order:
                n += 1
                r = run_once(app, fake_dir, libs[name], tmp, f"t{n}", a)
                runs[name].append(r)
                print(f"  {name:10s} GPU {r['gpu_pct']:5.1f} % charged {r['charged_pct']:5.1f} % "
                      f"coarse {r.get('coarse_pct', -1):.0f} % fast {r.get('fast_pct', -1):.0f} %", file=sys.stderr)
    result = {**record_head(a), "case": {"limit": a.limit, "period": a.period, "idle_ms": a.idle_ms,
                                         "window": a.window, "us": a.us, "sync": a.sync},
              "demand": demand, "rows": [{"build": name, "runs": rs} for name, rs in runs.items()]}
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    sys.exit(main())
