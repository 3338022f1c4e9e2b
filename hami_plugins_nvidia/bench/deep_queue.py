"""A training step's phases on the fake libcuda (issue 18, task deepq, 2026-12-06): long kernels the host runs far ahead
of (a step's GEMMs), then tiny kernels paced by the host (its optimizer and elementwise kernels), a sync per step
(driver_app's passes, busy host gaps). Natively the host queues the whole GEMM phase and the GPU spends that backlog
while the host paces the tiny kernels: it never idles. With one precise mark per launch a stream is at most RING - 1 =
127 launches ahead (launch.c push_mark): the host waits for a full ring in the GEMM phase, and the backlog it keeps is
too short to cover the host-paced phase, so the GPU idles inside the tenant's own time.

Per case, interleaved round after round (the variants in a different order each round): native (no library), the
library alone at a limit measured precisely (HAMI_SM_PRECISE=1, force), and a pair 50+50 (default policy, taking
turns: the default). Per tenant: launches per second of wall time, the GPU time the fake gave it over the window
(busy %), launches per charged second of GPU time (the region's busy counter: work per charged second), the charge
over the GPU time it got, and the launch stats line's ring-full wait and deep runs. Figures are the fake libcuda's on
whatever host runs this, never hardware figures.

A variant is NAME=CSRC[:DEFINE,...][:ENV=VALUE,...] as in watcher_pace.py (old=/tmp/base-csrc builds main's sources).

    .venv/bin/python hami_plugins_nvidia/bench/deep_queue.py --variant old=/tmp/base-csrc --variant new=- --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hami_plugins_nvidia.interposer import region  # noqa: E402
from watcher_pace import fake_and_variants  # noqa: E402 - one variant syntax, one fake build

STEP = "120*200,1200*5"  # 120 kernels of 200 us (24 ms of GPU work), then 1200 of 5 us (6 ms), a sync per step
HOST_US = "10"           # busy host time after each launch: the GEMMs are queued in ~1.5 ms, the tiny ones paced
SECONDS = "3"
RING = re.compile(r"ring full ([\d.]+) ms")
DEEP = re.compile(r"deep runs (\d+) \((\d+) launches")
FULL_TURNS = re.compile(r"full-ring waits ([\d.]+) ms")


def _env(d: str, lib: Path | None, fake: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD", "FAKE_"))}
    env.update(LD_LIBRARY_PATH=str(fake), CUDA_DEVICE_MEMORY_SHARED_CACHE=f"{d}/region", HAMI_NODE_BOARD=f"{d}/board",
               FAKE_CUDA_GPU=f"{d}/gpu", DRIVER_BUSY_GAP="1", HAMI_LAUNCH_STATS="1")
    if lib:
        env["LD_PRELOAD"] = str(lib)
    env.update(extra)
    return env


def _tenant(out: str, err: str, regfile: Path | None) -> dict[str, float]:
    words = next(line.split() for line in out.splitlines() if line.startswith("passes "))
    if words[1] != "0":
        raise RuntimeError(f"passes failed: {err.strip()[-300:]}")
    t0, t1, gpu_s, n = float(words[2]), float(words[3]), float(words[4]), int(words[5])
    row = {"rate": n / (t1 - t0), "busy_pct": 100 * gpu_s / (t1 - t0), "launches": n, "gpu_ms": gpu_s * 1e3}
    if regfile is not None:
        with region.SharedRegion(regfile) as reg:
            charged = reg.busy_ns(0) / 1e9
        row.update(charged_pct=100 * charged / (t1 - t0), per_charged=n / charged if charged else 0.0,
                   charge_x=charged / gpu_s if gpu_s else 0.0)
    m, d, ft = RING.search(err), DEEP.search(err), FULL_TURNS.search(err)
    row["ring_full_ms"] = float(m.group(1)) if m else (float(ft.group(1)) if ft else 0.0)
    row["deep_launch_pct"] = 100 * int(d.group(2)) / n if d and n else 0.0
    return row


def run_case(app: Path, fake: Path, lib: Path | None, case: str, env: dict[str, str],
             step: str = STEP) -> list[dict[str, float]]:
    args = [str(app), "ctx", "0", "passes", step, HOST_US, SECONDS]
    with tempfile.TemporaryDirectory() as d:
        if case in ("native", "alone"):
            extra = {} if case == "native" else dict(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="90",
                                                      HAMI_SM_PRECISE="1")
            p = subprocess.run(args, env=_env(d, lib if case == "alone" else None, fake, **extra, **env),
                               capture_output=True, text=True, timeout=120)
            return [_tenant(p.stdout, p.stderr, Path(d) / "region" if case == "alone" else None)]
        procs = []
        for k in (0, 1):
            e = _env(d, lib, fake, CUDA_DEVICE_SM_LIMIT="50", GPU_CORE_UTILIZATION_POLICY="default", **env)
            e["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = f"{d}/region{k}"
            procs.append(subprocess.Popen(args, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        rows = []
        for k, p in enumerate(procs):
            out, err = p.communicate(timeout=120)
            rows.append(_tenant(out, err, Path(d) / f"region{k}"))
        return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", required=True, help="NAME=CSRC[:DEFINES][:ENV] (see the docstring)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default="native,alone,pair")
    ap.add_argument("--step", default=STEP, help="passes PATTERN: COUNT*US,... kernels of one step")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    work, app, variants = fake_and_variants("deepq-", a.variant)
    cases = a.cases.split(",")
    results: dict[str, list[list[dict[str, float]]]] = {}
    for r in range(a.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for case in cases:
            for name, lib, env in (order if case != "native" else [("native", None, {})]):
                rows = run_case(app, work, lib, case, env, a.step)
                results.setdefault(f"{case} {name}" if case != "native" else "native", []).append(rows)
                print(f"round {r} {case} {name}: " + " | ".join(
                    ", ".join(f"{k} {v:.2f}" for k, v in row.items()) for row in rows), flush=True)
    print("\nmedians (min-max) over rounds; pair figures per tenant pooled")
    for label, runs in results.items():
        rows = [row for rr in runs for row in rr]
        parts = []
        for key in rows[0]:
            vals = [row[key] for row in rows]
            parts.append(f"{key} {statistics.median(vals):.2f} ({min(vals):.2f}-{max(vals):.2f})")
        print(f"{label}: " + ", ".join(parts))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
