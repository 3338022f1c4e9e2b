"""Conformance probes of the interposer on a real GPU, for the NVIDIA plugin's probe hook.

Each function runs bench_worker.py in child processes (preloaded with the built libvgpu.so, or not, for
the native baseline) and returns plain dicts of measured figures whose keys carry their units. Nothing here
imports torch; the workers do, so this module stays importable on machines without a GPU stack.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import library_path, library_version, programs

WORKER = Path(__file__).resolve().parent / "bench_worker.py"
MIB = 1 << 20


class ProbeError(RuntimeError):
    """The interposer is not built, or a worker failed to report."""


#: the most of one launch stats line kept as evidence (the library's line is at most 3 KiB)
LAUNCH_STATS_MAX_CHARS = 4096


def launch_stats_line(stderr: str) -> str | None:
    """The library's last "launch stats: ..." line (HAMI_LAUNCH_STATS=1, printed at exit) in a worker's stderr,
    without its prefix and bounded; None when there is none. Evidence of how the library charged the run."""
    lines = [ln.split("launch stats: ", 1)[1] for ln in stderr.splitlines()
             if "HAMI-vgpu" in ln and "launch stats: " in ln]
    return lines[-1].strip()[:LAUNCH_STATS_MAX_CHARS] if lines else None


def _env(device_index: int, preload: bool, tmp: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_DEVICE_", "CUDA_TASK", "LD_PRELOAD"))}
    env.update(CUDA_VISIBLE_DEVICES=str(device_index), PYTHONUNBUFFERED="1")
    if preload:
        lib = library_path()
        if lib is None:
            raise ProbeError("libvgpu.so is not built: reinstall hami-plugins-nvidia on a machine with gcc")
        env.update(LD_PRELOAD=str(lib), CUDA_DEVICE_MEMORY_SHARED_CACHE=os.path.join(tmp, "probe.cache"),
                   HAMI_NODE_BOARD=os.path.join(tmp, "board"))
    env.update(extra)
    return env


def _worker(args: list[str], env: dict[str, str], timeout: float = 300) -> dict:
    proc = subprocess.run([sys.executable, str(WORKER), *args], env=env, input="\n", capture_output=True,
                          text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise ProbeError(f"worker {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")


def measure_memory_isolation(device_index: int, limit_mib: int, framework: str = "torch") -> dict:
    """Under CUDA_DEVICE_MEMORY_LIMIT=<limit_mib>m: the total the framework sees, how much it could allocate,
    and whether hitting the limit raised the framework's normal out-of-memory error."""
    with tempfile.TemporaryDirectory(prefix="hami-probe-") as tmp:
        res = _worker(["mem", framework], _env(device_index, True, tmp, CUDA_DEVICE_MEMORY_LIMIT=f"{limit_mib}m"))
    error = res.get("oom_error", "")
    return {
        "device_index": device_index,
        "framework": framework,
        "limit_mib": limit_mib,
        "reported_total_mib": res["reported_total"] / MIB,
        "largest_allocation_mib": res["largest_allocated"] / MIB,
        "within_limit": res["largest_allocated"] <= limit_mib * MIB,
        "oom_error": error,
        "oom_is_framework_oom": error.startswith("OutOfMemoryError") and "NOT an OOM" not in error,
        "library_version": library_version(),
    }


def measure_compute_share(device_index: int, percent: int, seconds: float = 5.0) -> dict:
    """bf16 matmul throughput under CUDA_DEVICE_SM_LIMIT=<percent>, as a share of the native throughput."""
    with tempfile.TemporaryDirectory(prefix="hami-probe-") as tmp:
        native = _worker(["matmul", str(seconds)], _env(device_index, False, tmp))
        limited = _worker(["matmul", str(seconds)],
                          _env(device_index, True, tmp, CUDA_DEVICE_SM_LIMIT=str(percent),
                               GPU_CORE_UTILIZATION_POLICY="force"))
    share = 100 * limited["tflops"] / native["tflops"]
    return {
        "device_index": device_index,
        "limit_percent": percent,
        "native_tflops": native["tflops"],
        "limited_tflops": limited["tflops"],
        "achieved_percent": share,
        "error_points": share - percent,
        "seconds_per_run": seconds,
    }


def measure_launch_overhead(device_index: int, pairs: int = 10, launches: int = 20000) -> dict:
    """Time per tiny-kernel launch with the library preloaded and no limits, against native, as the median
    ratio over interleaved pairs (single runs vary by about ±30% on a shared H100)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="hami-probe-") as tmp:
        for i in range(pairs):
            got = {}
            for preload in ((False, True) if i % 2 == 0 else (True, False)):
                got[preload] = _worker(["launch", str(launches)], _env(device_index, preload, tmp))["us_per_launch"]
            rows.append((got[False], got[True]))
    ratios = [p / n for n, p in rows]
    return {
        "device_index": device_index,
        "pairs": pairs,
        "launches_per_run": launches,
        "native_us_per_launch_median": statistics.median(n for n, _ in rows),
        "preloaded_us_per_launch_median": statistics.median(p for _, p in rows),
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
    }


def _window_tflops(res: dict, lo: float, hi: float) -> float:
    """TFLOP/s a ``prio`` worker achieved inside [lo, hi]: each batch's matmuls are spread evenly over the
    time from the previous batch's completion to its own, and the part inside the window is counted."""
    flop = res["flop_per_iter"] * res["batch"]
    work, prev = 0.0, res["start"]
    for end in res["done"]:
        inside = min(end, hi) - max(prev, lo)
        if inside > 0 and end > prev:
            work += flop * inside / (end - prev)
        prev = end
    return work / (hi - lo) / 1e12


def overlap_shares(solo: list[dict], pair: list[dict]) -> dict:
    """Each paired worker's throughput inside the window where both ran (the later start to the earlier
    end), as a percentage of the same worker's solo throughput."""
    lo = max(r["start"] for r in pair)
    hi = min(r["done"][-1] for r in pair)
    if hi - lo <= 0:
        raise ProbeError(f"the two workers never overlapped (window {hi - lo:.3f} s)")
    rates = [_window_tflops(r, lo, hi) for r in pair]
    return {
        "overlap_s": hi - lo,
        "tflops": rates,
        "percent_of_solo": [100 * rate / s["tflops"] for rate, s in zip(rates, solo, strict=True)],
        "end_after_overlap_s": [r["done"][-1] - hi for r in pair],
    }


def _pair(device_index: int, tmp: str, tag: str, priorities: tuple[int, int], seconds: float,
          timeout: float = 120) -> list[dict]:
    """Two 'containers' (own shared regions, one node board) released together by the BENCH_GO file."""
    go = os.path.join(tmp, f"go-{tag}")
    procs = []
    for i, p in enumerate(priorities):
        env = _env(device_index, True, tmp, CUDA_TASK_PRIORITY=str(p), BENCH_GO=go, LIBCUDA_LOG_LEVEL="3",
                   CUDA_DEVICE_MEMORY_SHARED_CACHE=os.path.join(tmp, f"{tag}-{i}.cache"))
        procs.append(subprocess.Popen([sys.executable, str(WORKER), "prio", str(seconds)], env=env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    try:
        deadline = time.monotonic() + timeout
        while len([f for f in os.listdir(tmp) if f.startswith(f"go-{tag}.ready.")]) < len(procs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.01)
        open(go, "w").close()
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    results = []
    for (out, err), p, prio in zip(outs, procs, priorities, strict=True):
        line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            raise ProbeError(f"priority-{prio} worker exited {p.returncode}: {err[-2000:]}")
        res = json.loads(line[7:])
        res["held"] = "holding launches while a priority-" in err
        results.append(res)
    return results


def measure_priority(device_index: int, seconds: float = 5.0, high: int = 0, low: int = 1) -> dict:
    """CUDA_TASK_PRIORITY on one GPU: a high- and a low-priority container (own shared regions, one node
    board) each run a bf16 matmul loop for ``seconds``; each one's throughput while both ran, as a share of
    its solo throughput. The equal-priority baseline (both at ``low``) shows the probe can tell the
    difference: there time-slicing should give each about half."""
    with tempfile.TemporaryDirectory(prefix="hami-probe-") as tmp:
        solo = []
        for i, p in enumerate((high, low)):
            solo.append(_worker(["prio", str(seconds)], _env(
                device_index, True, tmp, CUDA_TASK_PRIORITY=str(p),
                CUDA_DEVICE_MEMORY_SHARED_CACHE=os.path.join(tmp, f"solo-{i}.cache"))))
        prio = _pair(device_index, tmp, "prio", (high, low), seconds)
        equal = _pair(device_index, tmp, "equal", (low, low), seconds)
    p, e = overlap_shares(solo, prio), overlap_shares(solo, equal)
    return {
        "device_index": device_index,
        "seconds_per_run": seconds,
        "priorities": [high, low],
        "priority_idle_ms": int(os.environ.get("HAMI_PRIORITY_IDLE_MS", "50") or 50),
        "solo_tflops": [s["tflops"] for s in solo],
        "high_tflops": p["tflops"][0],
        "low_tflops": p["tflops"][1],
        "high_percent_of_solo": p["percent_of_solo"][0],
        "low_percent_of_solo": p["percent_of_solo"][1],
        "overlap_s": p["overlap_s"],
        "low_end_after_high_s": p["end_after_overlap_s"][1],
        "low_was_held": prio[1]["held"],
        "equal_tflops": e["tflops"],
        "equal_percent_of_solo": e["percent_of_solo"],
        "equal_overlap_s": e["overlap_s"],
        "equal_was_held": any(r["held"] for r in equal),
    }


PROGRAMS = Path(__file__).resolve().parent / "programs.py"


def _programs_pair(device_index: int, tmp: str, tag: str, limits: tuple[int, int] | None, seconds: float,
                   timeout: float = 300) -> list[dict]:
    """A training loop and a small-batch inference loop as two containers, measured over the same window
    (released together once both finished warming up: programs.release); ``limits`` None runs both native (no
    preload)."""
    go = os.path.join(tmp, f"go-{tag}")
    procs = []
    for i, kind in enumerate(("train", "infer")):
        extra = {"BENCH_GO_FILE": go}
        if limits:
            cache = os.path.join(tmp, f"{tag}-{i}.cache")
            extra.update(CUDA_DEVICE_SM_LIMIT=str(limits[i]), CUDA_DEVICE_MEMORY_SHARED_CACHE=cache,
                         BENCH_REGION=cache,  # the worker reports the GPU time the library charged it
                         HAMI_LAUNCH_STATS="1")  # and the library says how it charged (evidence)
        procs.append(subprocess.Popen([sys.executable, str(PROGRAMS), kind, str(seconds)],
                                      env=_env(device_index, limits is not None, tmp, **extra),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    programs.release(go, procs)
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            raise ProbeError(f"{tag} worker exited {p.returncode}: {err[-2000:]}")
        res = json.loads(line[7:])
        if limits:
            res["launch_stats"] = launch_stats_line(err)
        results.append(res)
    return results


def measure_work_conserving(device_index: int, seconds: float = 5.0, limits: tuple[int, int] = (50, 50)) -> dict:
    """Work-conserving sharing with real programs: a transformer training loop and a small-batch inference
    loop, each alone and unlimited (its reference), each alone under the library with no limit and
    CUDA_TASK_PRIORITY=0 (measured, never capped: its solo demand, the GPU time it is charged alone), then
    together natively and together under CUDA_DEVICE_SM_LIMIT ``limits`` (default policy: capped because they
    share, lending what one leaves unused). Throughputs are percentages of the program's own solo throughput;
    GPU times percentages of the window, as the library charged them (processor sharing)."""
    with tempfile.TemporaryDirectory(prefix="hami-probe-") as tmp:
        solo = [_worker_program(device_index, tmp, kind, seconds) for kind in ("train", "infer")]
        demand = [_worker_program(device_index, tmp, kind, seconds, preload=True, CUDA_TASK_PRIORITY="0",
                                  CUDA_DEVICE_MEMORY_SHARED_CACHE=os.path.join(tmp, f"demand-{kind}.cache"),
                                  BENCH_REGION=os.path.join(tmp, f"demand-{kind}.cache"))
                  for kind in ("train", "infer")]
        native = _programs_pair(device_index, tmp, "native", None, seconds)
        limited = _programs_pair(device_index, tmp, "limited", limits, seconds)

    def pct(res: list[dict]) -> list[float]:
        return [round(100 * r["rate"] / s["rate"], 1) for r, s in zip(res, solo, strict=True)]

    return {
        "device_index": device_index,
        "seconds_per_run": seconds,
        "limits_percent": list(limits),
        "solo_rate": [s["rate"] for s in solo],
        "units": [s["unit"] for s in solo],
        # each program's charged GPU time alone and unlimited, % of the window (None: not reported)
        "solo_demand_percent": [None if r.get("gpu_busy_fraction") is None
                                else round(100 * r["gpu_busy_fraction"], 1) for r in demand],
        "native_pair_percent_of_solo": pct(native),
        "limited_pair_percent_of_solo": pct(limited),
        # processor-sharing GPU time each tenant was charged, % of the window (the library's own accounting)
        "limited_pair_gpu_time_percent": [None if r.get("gpu_busy_fraction") is None
                                          else round(100 * r["gpu_busy_fraction"], 1) for r in limited],
        # the library's launch stats line of each limited tenant (None: not printed), evidence of how it charged
        "limited_pair_launch_stats": [r.get("launch_stats") for r in limited],
        "library_version": library_version(),
    }


def _worker_program(device_index: int, tmp: str, kind: str, seconds: float, preload: bool = False,
                    **extra: str) -> dict:
    proc = subprocess.run([sys.executable, str(PROGRAMS), kind, str(seconds)],
                          env=_env(device_index, preload, tmp, **extra), capture_output=True, text=True, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise ProbeError(f"{kind} worker exited {proc.returncode}: {proc.stderr[-2000:]}")
