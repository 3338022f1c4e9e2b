"""Alone, a verification window's estimate never comes from spans converted through wide clock bounds (issue 18,
task lightcharge; launch.c window_restart, calibrate_due).

For its first milliseconds a process alone has only collections' upper bounds on its clock reference: a loop
launching every 45 us (5 us kernels, 40 us of host time: the light loop) kept ~46 us bounds until its first
calibration sample asked as its launch call returned, 5 ms in, and each 5 us kernel was charged ~33 us. The first
window (64 launches alone far below the limit, HAMI_SM_VERIFY_FAR=2) fell inside that stretch, and a tenant whose
credit was ample then (a spell resumed with the square wave's credit, or a program that started long before its first
launch) went coarse on it: its first ~100 ms phase was charged that estimate a launch (fake, this 2-core VM, main
ad980f6: the bench test's light loop 1.26-1.38 x its GPU time in the runs held at start). Now such a span is charged
as measured but restarts the window, and while the bounds are wide a calibration sample is recorded every ms.

Judged by the debug line each mode switch prints (the estimate of the window the phase is charged by), not by time:
a loaded host makes the prompt ask late (the bounds stay wide: the window restarts, the tenant stays precise) and
moves a converted time earlier, never later, once the bounds are tight."""

from __future__ import annotations

import re

import pytest

from .conftest import REAL_DRIVER, Workload

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake libcuda's simulated kernels")

H100_COSTS = "launch=3500,record=1800,query=1500,elapsed=1500,sync=2000"  # bench/alone_path.py's
COARSE = re.compile(r"measuring coarsely \(credit [-\d.]+ ms, doubt [-\d.]+ ms, estimate ([\d.]+) us per launch\)")


def test_the_first_coarse_phase_is_charged_a_window_measured_through_tight_bounds(workload: Workload) -> None:
    # 300 ms asleep before the first launch: the credit earned since the region's creation is ample at once, so the
    # tenant goes coarse on its first verified window. main (ad980f6): its estimate 22.1-25.1 us for 5 us kernels
    # (the window's spans converted through ~46 us bounds), charged 1.41-1.46 x the fake's GPU time; now 4.8-5.0 us
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        CUDA_DEVICE_SM_LIMIT="50", FAKE_CUDA_COSTS_NS=H100_COSTS, DRIVER_BUSY_GAP="1",
                        LIBCUDA_LOG_LEVEL="4")
    r = workload.run("ctx", "0", "sleep", "300", "spin", "5", "40", "0.6", "1000", timeout=60)
    assert r.returncode == 0, r.stderr
    estimates = [float(m.group(1)) for m in COARSE.finditer(r.stderr)]
    print(f"coarse phases' estimates (us a launch): {estimates[:6]}")
    assert estimates, r.stderr[-3000:]  # the premise: it went coarse
    # a span through tight bounds is at most the kernel, the record call's part (1.8 us) and the fake's latency;
    # one through ~46 us bounds ~33 us
    assert estimates[0] <= 10, estimates
    assert max(estimates) <= 10, estimates
