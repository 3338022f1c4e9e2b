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
from pathlib import Path

from . import library_path, library_version

WORKER = Path(__file__).resolve().parent / "bench_worker.py"
MIB = 1 << 20


class ProbeError(RuntimeError):
    """The interposer is not built, or a worker failed to report."""


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
                          _env(device_index, True, tmp, CUDA_DEVICE_SM_LIMIT=str(percent)))
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
