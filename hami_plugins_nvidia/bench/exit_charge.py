"""What a short-lived limited program is charged for the work it leaves uncollected at exit (issue 18: never fail
open), per library build.

Cases (driver_app words, alone on the fake's shared GPU, 30 %, policy force), each --procs processes one after the
other, every one launching 10 x 2 ms kernels and exiting at once:
  after-sync  the program syncs, then exits (its last end marks completed, nobody collected them);
  in-flight   no sync: it exits with the work still queued.
charge = what the library charged (its region's busy time, read after each process: the next one finds every user of
the region gone and re-initialises it) over the GPU time the fake gave (10 x 2 ms per process). Figures of the fake
libcuda on whatever machine runs it, never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/exit_charge.py --out /tmp/ec.json --rounds 3 \\
        --lib main=/tmp/main-csrc --lib fix=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))
sys.path.insert(0, str(HERE))

import launch_path_cost as lpc  # noqa: E402  (the fake benches' shared record and build helpers)
import region  # noqa: E402 - the region layout, read through cffi
from fake_sharing_cases import tenant_env  # noqa: E402

CASES = {"after-sync": ("launch", "kernel", "10", "2000"), "in-flight": ("burst", "kernel", "10", "2000")}


def run_case(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, procs: int) -> dict[str, float]:
    """procs processes of the case: charged / GPU time over all of them, and per process the ms left uncharged."""
    env = tenant_env(fake_dir, lib, tmp, "t", {"CUDA_DEVICE_SM_LIMIT": "30", "GPU_CORE_UTILIZATION_POLICY": "force"})
    charged = gpu = 0.0
    short: list[float] = []
    for _ in range(procs):
        proc = subprocess.run([str(app), "ctx", "0", *CASES[case]], env=env, capture_output=True, text=True,
                              timeout=30)
        rows = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith(CASES[case][0] + " ")]
        if proc.returncode != 0 or len(rows) != 1 or rows[0][1] != "0":
            raise RuntimeError(f"{case}: driver_app failed: {proc.stdout.strip()[-300:]} {proc.stderr.strip()[-300:]}")
        g = float(rows[0][4])  # n x us: the fake runs each kernel exactly that long
        with region.SharedRegion(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]) as reg:
            c = reg.busy_ns(0) / 1e9
        charged += c
        gpu += g
        short.append(max(0.0, g - c) * 1e3)
    return {"charge_ratio": charged / gpu, "charged_ms": charged * 1e3, "gpu_ms": gpu * 1e3,
            "uncharged_ms_per_exit_max": max(short), "uncharged_ms_per_exit_median": statistics.median(short)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lpc.add_record_args(ap)
    lpc.add_round_args(ap, seconds=False)
    ap.add_argument("--procs", type=int, default=8, help="processes per case and round (1..100)")
    a = ap.parse_args()
    lpc.check_round_args(ap, a)
    if not 1 <= a.procs <= 100:
        ap.error(f"--procs {a.procs}: must be 1..100")
    raw = lpc.run_rounds(ap, a, list(CASES), "ec-", lambda app, fake_dir, lib, tmp, case: run_case(
        app, fake_dir, lib, tmp, case, a.procs))
    result = lpc.record_head(a, procs=a.procs, raw=raw)
    lines = [*lpc.record_title("Work left uncollected at exit", result, a.note),
             "| case | build | charged / GPU time (median, runs) | charged ms / GPU ms (median run) | "
             "ms uncharged per exit (median; max) |", "|---|---|---|---|---|"]
    def cells(runs: list[dict]) -> str:
        ratios = [r["charge_ratio"] for r in runs]
        mid = sorted(runs, key=lambda r: r["charge_ratio"])[len(runs) // 2]
        return (f"{statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)}) | "
                f"{mid['charged_ms']:.1f} / {mid['gpu_ms']:.1f} | {mid['uncharged_ms_per_exit_median']:.1f}; "
                f"{max(r['uncharged_ms_per_exit_max'] for r in runs):.1f}")

    lines += lpc.case_rows(raw, cells)
    return lpc.write_record(a, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
