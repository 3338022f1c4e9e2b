"""A coarse tenant alone far below its limit (issue 18, alonepath): what each launch costs, on the fake libcuda.

The inference-shaped loop (`spin K GAP SECS SYNC`: kernels of K us, GAP us of busy-waited host time after each, a
host sync every SYNC launches) at `force` 70, after a 0.4 s warm-up, in builds given with --lib, interleaved with the
same loop run natively (no preload), round after round (ABAB..., then BA...). Per build it reports the medians (min-max)
of: launches per second as a share of the native run of the same round, the host ns per launch the library adds (the
window's wall per launch less native's: the whole hook, entry to return, and whatever it costs the rest of the loop),
the fake's driver calls per launch (event records, elapsed-time calls, context calls: cuCtxGetCurrent +
cuCtxGetDevice), the stats line's coarse share, verifications, sampled library us, watcher wakes and the loop thread's
involuntary switches, and the charge: what the container's region was charged over the whole run divided by the GPU
time the fake gave the process (1.0 = right; the coarse doubt makes it >= 1).

--costs sets FAKE_CUDA_COSTS_NS (default: H100-like, launch 3500, record 1800, query 1500, elapsed 1500, sync 2000 ns);
--cpus pins the program and its watcher to those cores (the H100 bench pins one core a tenant). Figures of the fake
on whatever machine runs it, never hardware figures.

    .venv/bin/python hami_plugins_nvidia/bench/alone_path.py --out /tmp/ap.json --rounds 5 --cpus 0 \\
        --lib main=/tmp/main-csrc --lib new=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
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
    alternating,
    base_env,
    build_libs,
    build_tools,
    check_round_args,
    parse_cpus,
    record_head,
    record_title,
    write_record,
)

H100_COSTS = "launch=3500,record=1800,query=1500,elapsed=1500,sync=2000"
STATS = {
    "coarse_pct": r"\(([\d.]+) % coarse\)",
    "verifications": r"verifications (\d+),",
    "charging": r"verifications \d+, (\d+) charged the doubt",
    "doubt_charged_ms": r"charged the doubt \(([\d.]+) of",
    "wakes": r"watcher (\d+) wakes",
    "invol": r"(\d+) involuntary switches",
}


def loop(a: argparse.Namespace, secs: float) -> list[str]:
    return ["spin", str(a.kernel_us), str(a.gap_us), f"{secs:g}", str(a.sync)]


def run_once(app: Path, fake_dir: Path, lib: Path | None, tmp: Path, a: argparse.Namespace,
             cpus: set[int] | None) -> dict[str, float]:
    env = base_env(fake_dir, tmp, "ctr")
    env.update(FAKE_CUDA_GPU=str(tmp / "gpu"), FAKE_CUDA_COSTS_NS=a.costs)
    if lib is not None:
        env.update(LD_PRELOAD=str(lib), CUDA_DEVICE_SM_LIMIT=str(a.limit), GPU_CORE_UTILIZATION_POLICY="force",
                   HAMI_LAUNCH_STATS="1")
    args = ["ctx", "0", *loop(a, 0.4), "calls", "ctxcalls", *loop(a, a.seconds), "calls", "ctxcalls", "ctxsync", "gpu"]
    pre = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
    p = subprocess.run([*pre, str(app), *args], env=env, capture_output=True, text=True, timeout=60 + 3 * a.seconds)
    lines = [ln.split() for ln in p.stdout.splitlines()]
    spins = [w for w in lines if w and w[0] == "spin"]
    if p.returncode or len(spins) != 2 or spins[1][1] != "0":
        raise RuntimeError(f"driver_app failed ({p.returncode}): {p.stdout[-300:]} {p.stderr[-300:]}")
    calls = [list(map(int, w[1:])) for w in lines if w[0] == "calls"]
    ctx = [list(map(int, w[1:])) for w in lines if w[0] == "ctxcalls"]
    n = int(spins[1][5])
    wall = float(spins[1][3]) - float(spins[1][2])
    res = {"rate": n / wall, "ns_per_launch": wall * 1e9 / n,
           "records": (calls[1][1] - calls[0][1]) / n, "elapsed": (calls[1][3] - calls[0][3]) / n,
           "ctx": (ctx[1][0] - ctx[0][0] + ctx[1][1] - ctx[0][1]) / n}
    if lib is not None:
        gpu = float([w for w in lines if w[0] == "gpu"][-1][1])
        with region.SharedRegion(tmp / "ctr" / "region") as reg:
            res["charge"] = reg.busy_ns(0) / gpu if gpu > 0 else float("nan")
            # the measured window's own: the fake's GPU time and the charge over the whole run, % of the window's wall
            # (the warm-up's share is small: 0.4 s of a --seconds run, same shape)
            whole = float(spins[1][3]) - float(spins[0][2])
            res["gpu_pct"] = 100 * gpu / 1e9 / whole
            res["charged_pct"] = 100 * reg.busy_ns(0) / 1e9 / whole
        st = [ln for ln in p.stderr.splitlines() if "launch stats:" in ln]
        if st:
            for k, rx in STATS.items():
                if m := re.search(rx, st[-1]):
                    res[k] = float(m.group(1))
            if m := re.search(r"before the launch ([\d.]+), after the launch ([\d.]+)", st[-1]):
                res["library_us"] = float(m.group(1)) + float(m.group(2))
    return res


def cell(runs: list[dict], key: str, fmt: str) -> str:
    v = [r[key] for r in runs if key in r]
    if not v:
        return "-"
    return f"{format(statistics.median(v), fmt)} ({format(min(v), fmt)}-{format(max(v), fmt)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap)
    ap.add_argument("--kernel-us", type=int, default=5)
    ap.add_argument("--gap-us", type=int, default=12, help="busy-waited host time after each launch")
    ap.add_argument("--sync", type=int, default=183, help="launches between host syncs (a step)")
    ap.add_argument("--costs", default=H100_COSTS, help="FAKE_CUDA_COSTS_NS")
    ap.add_argument("--cpus", default="", help="cores the program runs on (e.g. 0); default: not pinned")
    ap.add_argument("--limit", type=int, default=70, help="CUDA_DEVICE_SM_LIMIT at force (1-99)")
    a = ap.parse_args()
    check_round_args(ap, a)
    if not 0 <= a.kernel_us <= 10000 or not 0 <= a.gap_us <= 10000 or not 1 <= a.sync <= 1000000:
        ap.error("0 <= --kernel-us <= 10000, 0 <= --gap-us <= 10000, 1 <= --sync <= 1000000")
    if not 1 <= a.limit <= 99:
        ap.error("1 <= --limit <= 99")
    cpus = parse_cpus(ap, a.cpus)
    raw: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="alonepath-") as td:
        tmp = Path(td)
        fake_dir, app = build_tools(tmp)
        libs = build_libs(ap, a.lib, tmp / "lib")
        for n, _, name in alternating(a.rounds, [0], list(libs)):
            native = run_once(app, fake_dir, None, tmp / f"run{n}n", a, cpus)
            r = run_once(app, fake_dir, libs[name], tmp / f"run{n}", a, cpus)
            r["share"] = 100 * r["rate"] / native["rate"]
            r["added_ns"] = r["ns_per_launch"] - native["ns_per_launch"]
            r["native_ctx"] = native["ctx"]
            raw.setdefault(name, []).append(r)
            print(f"round {n}: {name}: {r}", file=sys.stderr)
    result = {**record_head(a, kernel_us=a.kernel_us, gap_us=a.gap_us, sync=a.sync, seconds=a.seconds,
                            costs=a.costs, cpus=a.cpus, limit=a.limit), "runs": raw}
    cols = [("share", ".1f", "launches/s, % of native"), ("added_ns", ".0f", "host ns a launch added"),
            ("records", ".4f", "records a launch"), ("elapsed", ".4f", "elapsed-time calls a launch"),
            ("ctx", ".3f", "context calls a launch"), ("coarse_pct", ".1f", "% coarse"),
            ("verifications", ".0f", "verifications"), ("charging", ".0f", "of them charging"),
            ("doubt_charged_ms", ".1f", "doubt charged (ms)"), ("library_us", ".3f", "library us (sampled)"),
            ("wakes", ".0f", "watcher wakes"), ("invol", ".0f", "involuntary switches"),
            ("charge", ".3f", "charged / GPU time"), ("gpu_pct", ".1f", "fake GPU % of wall"),
            ("charged_pct", ".1f", "charged % of wall")]
    md = [*record_title(f"A tenant alone at force {a.limit} (alone_path.py)", result, a.note),
          "| build | " + " | ".join(c[2] for c in cols) + " |", "|---|" + "---|" * len(cols)]
    md += [f"| {name} | " + " | ".join(cell(runs, k, f) for k, f, _ in cols) + " |" for name, runs in raw.items()]
    return write_record(a, result, "\n".join(md) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
