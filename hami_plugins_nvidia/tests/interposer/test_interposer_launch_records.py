"""The coarse path's driver calls per launch on an inference-shaped loop (issue 18, the library's host time per
launch). On the H200 the batch-1 inference loop's library time was mostly event records (~3 us each) and
elapsed-time conversions: 0.164 of each per launch, ~0.09 of them the coarse samples (one launch in 32, three
records each: the run before it closed, the sample opened, the sample closed). The first two are recorded back to
back on the stream and complete at the same GPU moment, so one event serves both (launch.c push_boundary): two
records and two conversions a sample. Pinned here by the fake's counters and the stats line, not by a timing; the
charge stays the GPU time the fake gave (the fake's shared GPU accounting)."""

from __future__ import annotations

import re

import pytest

from .conftest import REAL_DRIVER, Workload, region

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's call counters and shared GPU")

# host-paced like the inference loop: 5 us kernels, 20 us of host time after each (busy-waited), a host sync every
# 195 launches (a step)
LOOP = ("spin", "5", "20", "1.5", "195")


def _stats(stderr: str) -> dict[str, float]:
    line = [ln for ln in stderr.splitlines() if "launch stats:" in ln]
    assert len(line) == 1, stderr
    s = line[0]
    return {"launches": int(re.search(r"(\d+) measured launches", s).group(1)),
            "coarse": float(re.search(r"\(([\d.]+) % coarse\)", s).group(1)) / 100,
            "records": float(re.search(r"([\d.]+) event records", s).group(1)),
            "elapsed": float(re.search(r"([\d.]+) elapsed-time calls", s).group(1)),
            "doubt_s": float(re.search(r"charged the doubt \(([\d.]+) of", s).group(1)) / 1e3}


def test_coarse_sample_costs_two_records_on_a_host_paced_loop(workload: Workload) -> None:
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT="70", DRIVER_BUSY_GAP="1",
                        HAMI_LAUNCH_STATS="1")
    r = workload.run("ctx", "0", *LOOP, timeout=60)
    assert r.returncode == 0, r.stderr
    st = _stats(r.stderr)
    spins = r.values("spin")
    assert len(spins) == 1 and spins[0][0] == "0", r.lines
    wall_ms = (float(spins[0][2]) - float(spins[0][1])) * 1e3
    gpu_s = float(spins[0][3])
    per_ms = st["launches"] / wall_ms
    assert st["coarse"] >= 0.7, st  # far below its limit: mostly measured coarsely
    # the precise launches (the start and the verification windows) have an end mark each; the rest are the coarse
    # launches' records: 2 per sample (1 in 32), plus an end mark per >= 1 ms run that drew no sample, a watcher's
    # close per sync and a calibration per 5 ms, which grow per launch as a loaded host launches less
    coarse_n = st["coarse"] * st["launches"]
    precise_n = st["launches"] - coarse_n
    per_coarse = {k: (st[k] * st["launches"] - precise_n) / coarse_n for k in ("records", "elapsed")}
    print(f"launch-records: {per_coarse} at {per_ms:.1f} launches/ms, {st}")
    # measured on the fake, this loaded 2-core VM (2026-12-05): 0.100-0.105 records per coarse launch on main 1d52d69
    # at 40-43 launches/ms, 0.112 at 23 (3 per sample: 0.094 of it; 6 of 6 runs fail); 0.072-0.078 at 33-43 and
    # 0.081-0.086 at 23-28 with one event for a sample's boundary (0.0625; more runs of >= 1 ms draw no sample at a
    # lower rate). The two differ by 1/32 whatever the rate; the bound lies between, the per-ms marks at 0.6 per ms
    bound = 0.076 + 0.6 / per_ms
    assert per_coarse["records"] <= bound, (per_coarse, bound, per_ms, st)
    assert per_coarse["elapsed"] <= bound, (per_coarse, bound, per_ms, st)  # the paired start is not converted again
    assert per_coarse["records"] >= 0.045, (per_coarse, st)  # the samples are still taken: ~2 / 32
    # the charge is still the GPU time the fake gave: never less, and more only by what a loaded host adds (a launch
    # preempted between its clock read and its enqueue is charged the wait) beside what the failed verifications
    # charged on purpose (the doubt, reported by the stats). Measured on this loaded VM, the same loop and
    # interleaved: (charged - doubt) / GPU time 1.03-1.23 on main 1d52d69, 1.02-1.10 with one event a boundary
    with region.SharedRegion(workload.region_path) as reg:
        charged = reg.busy_ns(0) / 1e9
    assert charged >= 0.9 * gpu_s - 0.01, (charged, st["doubt_s"], gpu_s)
    assert charged - st["doubt_s"] <= 1.35 * gpu_s + 0.02, (charged, st["doubt_s"], gpu_s)
