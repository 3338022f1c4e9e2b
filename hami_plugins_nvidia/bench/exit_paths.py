"""What a limited program's container is charged for the work it leaves in flight when it ends with no exit handler
run (issue 18: never fail open), per library build.

Each case runs --procs workers of one container (one region) one after the other, at a 30 % limit under `force`,
alone on the fake's shared GPU. Every worker launches 10 x 2 ms kernels with no sync (burst: its work still queued)
and then ends:
  exit    by _exit(0) (driver_app `die exit`);
  kill    by SIGKILL from its parent (this script, once the worker said it had launched);
  term    by SIGTERM with no handler, from its parent;
  sync-exit  after a sync, by _exit(0) (its marks completed, nobody collected them).
Setups: `alone` (nothing else of the container runs: the next worker finds the region left by the dead one; one more
process attaches after the last) and `survivor` (a process of the container that launched once and then sleeps runs
meanwhile: its watcher may notice each death). charge = what the library charged (the region's busy time, summed over
the workers; the region is re-initialised when every user is gone, so it is read after each) over the GPU time the
workers launched (10 x 2 ms each: the fake runs each kernel exactly that long). Figures of the fake libcuda on
whatever machine runs it, never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/exit_paths.py --out /tmp/ep.json --rounds 3 \\
        --lib main=/tmp/main-csrc --lib fix=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))
sys.path.insert(0, str(HERE))

import launch_path_cost as lpc  # noqa: E402  (the fake benches' shared record and build helpers)
import region  # noqa: E402 - the region layout, read through cffi
from fake_sharing_cases import tenant_env  # noqa: E402

BURST = ("burst", "kernel", "10", "2000")
ENDS = {"exit": ("die", "exit"), "kill": ("hang",), "term": ("hang",), "sync-exit": ("die", "exit")}
SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM}
CASES = [f"{setup}:{end}" for setup in ("alone", "survivor") for end in ENDS]
SETTLE_S = 0.05  # after a death, before the region is read: a survivor's watcher looks every 2 ms


BUSY_AT = int(region.ffi.offsetof("struct hami_region", "dev")) + int(
    region.ffi.offsetof("struct hami_device_info", "busy_ns"))  # the same in every layout version so far


def busy_s(env: dict[str, str]) -> float:
    """The region's device-0 busy time (what the library charged the container), seconds; 0 without a region. Read
    at its offset, not through region.py: the builds compared may have different layout versions."""
    try:
        data = Path(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]).read_bytes()[:BUSY_AT + 8]
    except OSError:
        return 0.0
    if len(data) < BUSY_AT + 8 or int.from_bytes(data[0:4], "little") != 0x48564750:
        return 0.0
    return int.from_bytes(data[BUSY_AT:BUSY_AT + 8], "little") / 1e9


def worker(app: Path, env: dict[str, str], end: str) -> None:
    """One worker: its burst, then its end; returns once it is gone."""
    first = ("launch", *BURST[1:]) if end == "sync-exit" else BURST
    proc = subprocess.Popen([str(app), "ctx", "0", *first, *ENDS[end]], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if end in SIGNALS:
        for line in proc.stdout:
            if line.startswith("hanging"):
                proc.send_signal(SIGNALS[end])
                break
    proc.communicate(timeout=30)
    if proc.returncode not in (0, -SIGNALS.get(end, 0)):
        raise RuntimeError(f"{end}: worker ended {proc.returncode}: {proc.stderr.strip()[-300:]}")


def run_case(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, procs: int) -> dict[str, float]:
    """procs workers of the case: charged / GPU time launched over all of them."""
    setup, _, end = case.partition(":")
    env = tenant_env(fake_dir, lib, tmp, "t", {"CUDA_DEVICE_SM_LIMIT": "30", "GPU_CORE_UTILIZATION_POLICY": "force"})
    keeper = None
    if setup == "survivor":
        keeper = subprocess.Popen([str(app), "ctx", "0", "launch", "kernel", "1", "100", "hang"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in keeper.stdout:
            if line.startswith("hanging"):
                break
    try:
        base = busy_s(env)
        charged = 0.0
        for _ in range(procs):
            worker(app, env, end)
            if setup == "survivor":
                time.sleep(SETTLE_S)
            else:  # the next worker re-initialises the region: read what this one left now
                charged += busy_s(env)
        if setup == "alone":  # one more process attaches, as the next worker would (1 us of kernel)
            subprocess.run([str(app), "ctx", "0", "launch", "kernel", "1", "1"], env=env, capture_output=True,
                           timeout=30, check=True)
            charged += busy_s(env) - 1e-6
            # each worker's read already held the debt its predecessor left (charged on re-initialising)
        else:
            charged = busy_s(env) - base
    finally:
        if keeper is not None:
            keeper.kill()
            keeper.wait()
    gpu = procs * 10 * 2e-3
    return {"charge_ratio": charged / gpu, "charged_ms": charged * 1e3, "gpu_ms": gpu * 1e3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lpc.add_record_args(ap)
    lpc.add_round_args(ap, seconds=False)
    ap.add_argument("--procs", type=int, default=8, help="workers per case and round (1..100)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ", ".join(CASES))
    a = ap.parse_args()
    lpc.check_round_args(ap, a)
    if not 1 <= a.procs <= 100:
        ap.error(f"--procs {a.procs}: must be 1..100")
    cases = lpc.parse_cases(ap, a.cases, CASES)
    raw = lpc.run_rounds(ap, a, cases, "ep-", lambda app, fake_dir, lib, tmp, case: run_case(
        app, fake_dir, lib, tmp, case, a.procs))
    result = lpc.record_head(a, procs=a.procs, raw=raw)
    title = lpc.record_title("Work left in flight by processes that end with no exit handler", result, a.note)
    return lpc.write_record(a, result, "\n".join([*title, *table(raw)]) + "\n")


def table(raw: dict[str, dict[str, list[dict]]]) -> list[str]:
    """The Markdown table: per case and build, the charge ratios of the rounds and the median run's milliseconds."""
    rows = ["| setup:end | build | charged / GPU time launched (median, runs) | charged ms / GPU ms (median run) |",
            "|---|---|---|---|"]
    for case, by_lib in raw.items():
        for name, runs in by_lib.items():
            ratios = [r["charge_ratio"] for r in runs]
            mid = sorted(runs, key=lambda r: r["charge_ratio"])[len(runs) // 2]
            rows.append(f"| {case} | {name} | {statistics.median(ratios):.2f} "
                        f"({', '.join(f'{x:.2f}' for x in ratios)}) | {mid['charged_ms']:.1f} / {mid['gpu_ms']:.1f} |")
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
