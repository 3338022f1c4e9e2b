"""What a limited program is charged, and the share of the fake GPU it gets, where the library's measured launch
path used to fail open (issue 18: never fail open), per library build.

Cases (driver_app words, alone on the fake's shared GPU, policy force):
  queues      at 90 %: 32 streams each hold a 0.9 ms kernel (every stream queue of the library) while 20 x 1 ms
              kernels go to a 33rd stream, twice, after 200 ms idle (credit saved);
  reset, release, destroy
              at 30 %: 20 x 2 ms kernels, then the measured context is lost (the primary reset, or released to zero,
              or a cuCtxCreate context destroyed) and the program goes on under the same handle value (the primary
              retained again, a new cuCtxCreate context in the destroyed one's slot) with a 2 ms kernel loop (a sync
              every 8 launches) for --seconds;
  no-events   at 30 %: the same loop where no event ever records (FAKE_CUDA_RECORD_FAIL=1);
  coarse-reset at 70 %: a host-paced loop (5 us kernels, 20 us host gaps: measured coarsely) for half of --seconds,
              the primary reset and retained, the loop again;
  coarse-control the same two loops with no reset (what the coarse path charges on this host anyway).
charge = what the library charged (its region's busy time) over the GPU time the fake gave; net = the same less what
its coarse verifications charged of their doubt on purpose (the stats line; a loaded host's host gaps, whatever the
context did); share = the GPU time the fake gave over the wall time of the last loop (none for queues). Figures of the fake libcuda on whatever
machine runs it, never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/fail_closed.py --out /tmp/fc.json --rounds 3 \\
        --lib main=/tmp/main-csrc --lib fix=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import re
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

BURST = ("streams", "32", "900", "20", "1000")
FIRST = ("launch", "kernel", "20", "2000")
LOOP = ("spin", "2000", "0", "{s}", "8")
HOST_PACED = ("spin", "5", "20", "{h}", "195")
CASES: dict[str, tuple[int, dict[str, str], tuple[str, ...]]] = {
    "queues": (90, {}, ("ctx", "0", "launch", "kernel", "1", "10", "sleep", "200", *BURST, "sleep", "100", *BURST)),
    "reset": (30, {}, ("ctx", "0", *FIRST, "ctxreset", "0", "ctx", "0", *LOOP)),
    "release": (30, {}, ("ctx", "0", *FIRST, "ctxrelease", "0", "ctx", "0", *LOOP)),
    "destroy": (30, {}, ("ctx", "0", "ctxnew", "0", *FIRST, "ctxdestroy", "ctxnew", "0", *LOOP)),
    "no-events": (30, {"FAKE_CUDA_RECORD_FAIL": "1"}, ("ctx", "0", *LOOP)),
    "coarse-reset": (70, {}, ("ctx", "0", *HOST_PACED, "ctxreset", "0", "ctx", "0", *HOST_PACED)),
    "coarse-control": (70, {}, ("ctx", "0", *HOST_PACED, *HOST_PACED)),
}


def run_case(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, secs: float) -> dict[str, float]:
    """One run: charged / GPU time, and the last loop's share of the fake GPU (-1: the case has none); hung = 1 when
    the program did not finish within 20 s of its own length (killed: main's throttle waited forever for the lost
    context's marks)."""
    limit, extra, words = CASES[case]
    env = tenant_env(fake_dir, lib, tmp, "t", {"CUDA_DEVICE_SM_LIMIT": str(limit),
                                                "GPU_CORE_UTILIZATION_POLICY": "force", **extra})
    args = [w.format(s=f"{secs:g}", h=f"{secs / 2:g}") for w in words]
    try:
        proc = subprocess.run([str(app), *args], env=env, capture_output=True, text=True, timeout=secs + 20)
    except subprocess.TimeoutExpired:
        return {"hung": 1}
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith(("spin ", "launch ", "streams "))]
    if proc.returncode != 0 or not rows or any(w[1] != "0" for w in rows):
        raise RuntimeError(f"{case}: driver_app failed: {proc.stdout.strip()[-300:]} {proc.stderr.strip()[-300:]}")
    gpu = sum(float(w[4]) for w in rows)  # launch: n x us; spin, streams: the fake's GPU time for the process
    with region.SharedRegion(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]) as reg:
        charged = reg.busy_ns(0) / 1e9
    m = re.search(r"charged the doubt \(([\d.]+) of", proc.stderr)
    doubt = float(m.group(1)) / 1e3 if m else 0.0
    last = rows[-1]
    share = 100 * float(last[4]) / (float(last[3]) - float(last[2])) if last[0] == "spin" else -1.0
    return {"charge_ratio": charged / gpu, "net_ratio": (charged - doubt) / gpu, "charged_ms": charged * 1e3, "gpu_ms": gpu * 1e3, "share_pct": share,
            "hung": 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lpc.add_record_args(ap)
    lpc.add_round_args(ap)
    a = ap.parse_args()
    lpc.check_round_args(ap, a)
    raw = lpc.run_rounds(ap, a, list(CASES), "fc-", lambda app, fake_dir, lib, tmp, case: run_case(
        app, fake_dir, lib, tmp, case, a.seconds))
    result = lpc.record_head(a, seconds=a.seconds, raw=raw)
    lines = [*lpc.record_title("Fail-closed launch paths", result, a.note),
             "| case | build | runs hung | charged / GPU time (median, runs) | net of the doubt charged (median) | "
             "charged ms / GPU ms (median run) | last loop's share of the fake GPU, % (median) |",
             "|---|---|---|---|---|---|---|"]
    for case, by_lib in raw.items():
        for name, all_runs in by_lib.items():
            runs = [r for r in all_runs if not r["hung"]]
            head = f"| {case} | {name} | {len(all_runs) - len(runs)} of {len(all_runs)} |"
            if not runs:
                lines.append(f"{head} - | - | - | - |")
                continue
            ratios = [r["charge_ratio"] for r in runs]
            mid = sorted(runs, key=lambda r: r["charge_ratio"])[len(runs) // 2]
            share = statistics.median(r["share_pct"] for r in runs)
            net = statistics.median(r["net_ratio"] for r in runs)
            lines.append(f"{head} {statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)}) | "
                         f"{net:.2f} | {mid['charged_ms']:.1f} / {mid['gpu_ms']:.1f} | {f'{share:.1f}' if share >= 0 else '-'} |")
    return lpc.write_record(a, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
