"""The share of the fake GPU a program gets at a compute limit when it launches from a context of its own
(cuCtxCreate) instead of the primary context (issue 18: never fail open), per library build.

Cases (driver_app words; each a 1 ms kernel loop with a sync every 8 launches, alone on the fake's shared GPU,
policy force): "primary" launches in the primary context only (the common case, the control); "second" launches
a few kernels in the primary context (the library sets the device up in it) and then loops in a second context;
"second-first" makes the second context before any launch, destroys it after a short loop and loops in the
primary. Figures of the fake libcuda on whatever machine runs it, never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/second_context.py --out /tmp/sc.json --rounds 3 \\
        --lib main=/tmp/main-csrc --lib fix=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import launch_path_cost as lpc  # noqa: E402  (the fake benches' shared record and build helpers)
from fake_sharing_cases import tenant_env  # noqa: E402

SPIN = ("spin", "1000", "0", "{s}", "8")
CASES = {
    "primary": ("ctx", "0", *SPIN),
    "second": ("ctx", "0", "launch", "kernel", "5", "1000", "ctxnew", "0", *SPIN),
    "second-first": ("ctx", "0", "ctxnew", "0", "launch", "kernel", "5", "1000", "ctxdestroy", "ctx", "0", *SPIN),
}


def run_case(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, limit: int, secs: float) -> dict[str, float]:
    """One run: the share of the fake GPU (its GPU time over the spin's wall time) and launches per second."""
    env = tenant_env(fake_dir, lib, tmp, "t", {"CUDA_DEVICE_SM_LIMIT": str(limit),
                                                "GPU_CORE_UTILIZATION_POLICY": "force", "DRIVER_BUSY_GAP": "0"})
    words = [w.format(s=f"{secs:g}") for w in CASES[case]]
    proc = subprocess.run([str(app), *words], env=env, capture_output=True, text=True, timeout=secs + 60)
    spins = [ln.split()[1:] for ln in proc.stdout.splitlines() if ln.startswith("spin ")]
    if proc.returncode != 0 or not spins or spins[-1][0] != "0":
        raise RuntimeError(f"{case}: driver_app failed: {proc.stdout.strip()[-300:]} {proc.stderr.strip()[-300:]}")
    _, t0, t1, gpu, n, _ = spins[-1]
    wall = float(t1) - float(t0)
    return {"share_pct": 100 * float(gpu) / wall, "launches_per_s": int(n) / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lpc.add_record_args(ap)
    lpc.add_round_args(ap)
    ap.add_argument("--limit", type=int, default=30)
    a = ap.parse_args()
    lpc.check_round_args(ap, a)
    if not 1 <= a.limit <= 99:
        ap.error(f"--limit {a.limit}: must be 1..99")
    raw = lpc.run_rounds(ap, a, list(CASES), "sc-", lambda app, fake_dir, lib, tmp, case: run_case(
        app, fake_dir, lib, tmp, case, a.limit, a.seconds))
    result = lpc.record_head(a, limit=a.limit, seconds=a.seconds, raw=raw)
    lines = [*lpc.record_title(f"A second CUDA context at a {a.limit} % limit", result, a.note),
             "| case | build | share of the fake GPU, % (median, runs) | launches/s (median) |", "|---|---|---|---|"]
    def cells(runs: list[dict]) -> str:
        shares = [r["share_pct"] for r in runs]
        return (f"{statistics.median(shares):.1f} ({', '.join(f'{x:.1f}' for x in shares)}) | "
                f"{statistics.median(r['launches_per_s'] for r in runs):.0f}")

    lines += lpc.case_rows(raw, cells)
    return lpc.write_record(a, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
