"""A coarse tenant that jumps to GPU-bound, on the fake libcuda (issue 18, task coarsejump, 2026-12-06): 1 s far below
a limit of 50 (5 us kernels, 20 us of busy host time after each, a sync every 195), then 2 ms kernels back to back
for 2 s with no sync (test_interposer_coarse_jump.py's jump), at each HAMI_SM_SAMPLE_EVERY given. Per run: the largest
share of the GPU over any 1 s of wall time from the jump to the end of its work (driver_app's wtrace: the fake's GPU
time for the process every 50 ms, sampled by a thread, holds included), the share over that whole window, its length,
and the launch stats line's holds. Builds interleaved round after round (ABAB then BABA).

A variant is NAME=CSRC[:DEFINE,...][:ENV=VALUE,...] as in watcher_pace.py. Figures are the fake libcuda's on whatever
host runs this, never hardware figures.

    .venv/bin/python hami_plugins_nvidia/bench/coarse_jump.py --variant old=/tmp/base-csrc --variant new=- \\
        --every 32 --every 128 --rounds 4
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from watcher_pace import fake_and_variants  # noqa: E402 - one variant syntax, one fake build

JUMP = ["spin", "5", "20", "1.0", "195", "wtrace", "2000", "0", "2.0", "1000000", "50"]


def run(app: Path, fake: Path, lib: Path, **extra: str) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as d:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD", "FAKE_"))}
        env.update(LD_LIBRARY_PATH=str(fake), LD_PRELOAD=str(lib), CUDA_DEVICE_MEMORY_SHARED_CACHE=f"{d}/region",
                   HAMI_NODE_BOARD=f"{d}/board", FAKE_CUDA_GPU=f"{d}/gpu", GPU_CORE_UTILIZATION_POLICY="force",
                   HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT="50", DRIVER_BUSY_GAP="1", HAMI_LAUNCH_STATS="1")
        env.update(extra)
        p = subprocess.run([str(app), "ctx", "0", *JUMP], env=env, capture_output=True, text=True, timeout=180)
        if p.returncode:
            raise RuntimeError(f"driver_app failed ({p.returncode}): {p.stderr.strip()[-300:]}")
    return p.stdout, p.stderr


def worst_second(words: list[str]) -> tuple[float, float, float, float]:
    """(the largest share over any 1 s, the whole window's share, the window's length, where the worst 1 s starts
    after the jump) of a wtrace line's words."""
    t0, t1 = float(words[1]), float(words[2])
    pts = [(float(t), float(g)) for t, g in zip(words[3::2], words[4::2], strict=True)]
    worst, at, j = 0.0, 0.0, 0
    for i, (ta, ga) in enumerate(pts):
        j = max(j, i)
        while j < len(pts) and pts[j][0] - ta < 1.0:
            j += 1
        if j == len(pts):
            break
        if (pts[j][1] - ga) / (pts[j][0] - ta) > worst:
            worst, at = (pts[j][1] - ga) / (pts[j][0] - ta), ta - t0
    return worst, (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0]), t1 - t0, at


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", required=True, help="NAME=CSRC[:DEFINES][:ENV]")
    ap.add_argument("--every", action="append", default=None, help="HAMI_SM_SAMPLE_EVERY values (default 32)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not 1 <= a.rounds <= 20:
        ap.error("--rounds must be 1..20")
    work, app, variants = fake_and_variants("coarse-jump-", a.variant)
    res: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for r in range(a.rounds):
        for every in a.every or ["32"]:
            for name, lib, env in variants if r % 2 == 0 else variants[::-1]:
                out, err = run(app, work, lib, HAMI_SM_SAMPLE_EVERY=every, **env)
                w = next(ln for ln in out.splitlines() if ln.startswith("wtrace ")).split()[1:]
                row = worst_second(w)
                res.setdefault((every, name), []).append(row)
                held = re.search(r"held (\d+) times", err)
                print(r, every, name, "worst 1 s {:.3f} whole {:.3f} window {:.2f} s (worst from {:.2f} s)".format(*row),
                      f"held {held.group(1) if held else '?'}", flush=True)
    print("\n| 1 in | variant | runs | worst 1 s: median (min-max) | whole window | window s |\n|---|---|---|---|---|---|")
    for (every, name), rows in res.items():
        cols = [[x[k] for x in rows] for k in range(3)]
        print(f"| {every} | {name} | {len(rows)} | " + " | ".join(
            f"{statistics.median(c):.3f} ({min(c):.3f}-{max(c):.3f})" for c in cols) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
