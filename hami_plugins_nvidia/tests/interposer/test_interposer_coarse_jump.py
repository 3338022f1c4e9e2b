"""A tenant far below its limit, measured coarsely, that jumps to GPU-bound (issue 18, on the fake libcuda). Written by
the `alonecost` helper (2026-12-06), who found the hole; made to hold by `coarsejump` (2026-12-06).

Drawing fewer coarse samples while far below the limit was tried to cut the launch-bound loop's event records (record 8
stage 13: 0.099 a launch, ~0.06 of them the samples): it failed open here. The coarse path bounded the work such a
tenant queues before the throttle sees it only by its marks' ring and by the in-flight bound, an age in host time: at
the default one sample in 32 about half the jumps ran one 2.3-3.3 s burst at 100 % before one ~3-4 s hold (0.48-0.57 of
the GPU over the whole window, limit 0.50), and with one sample in 128 (HAMI_SM_SAMPLE_EVERY=128, which a tenant may
set itself) it held the whole GPU for 7-13 s (docs/results/2026-12-06-fake-alonecost.md). The coarse path now bounds
the launches a stream has queued and not seen completed, and a mark overdue sends the tenant to precise measurement
(launch.c coarse_behind; docs/results/2026-12-06-fake-coarsejump.md): judged here over every 1 s window from the jump
to the end of its work, not only over the whole window."""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake's simulated kernels")

# 1 s far below the limit (5 us kernels, 20 us of busy host time after each, a sync every 195: ~20 % of the GPU, coarse
# once the first window verified), then 2 ms kernels back to back for 2 s with no sync; force 50
JUMP = ("spin", "5", "20", "1.0", "195", "spin", "2000", "0", "2.0", "1000000")
# the same jump, the GPU-bound part traced: the GPU time the fake gave it every 50 ms of wall time, holds included
JUMP_TRACED = ("spin", "5", "20", "1.0", "195", "wtrace", "2000", "0", "2.0", "1000000", "50")
LIMIT = 0.50
SLACK = 0.10  # the bucket's depth (50 ms burst + the 30 ms in-flight bound) and one queue within the bound


def _env(workload: Workload, **extra: str) -> None:
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        HAMI_SM_PERIOD_MS="100", DRIVER_BUSY_GAP="1", CUDA_DEVICE_SM_LIMIT=str(int(LIMIT * 100)),
                        **extra)


def _jump(workload: Workload, **extra: str) -> tuple[float, float]:
    _env(workload, **extra)
    r = workload.run("ctx", "0", *JUMP, timeout=120)
    assert r.returncode == 0, r.stderr
    spin = r.values("spin")[-1]  # r t0 t1 gpu_s launches ...: the GPU-bound part's window (its last launch waits)
    return float(spin[2]) - float(spin[1]), float(spin[3])


def _worst_second(workload: Workload, **extra: str) -> tuple[float, float, float]:
    """The largest share of the GPU the tenant got over any 1 s of wall time from the jump to the end of its work
    (its last launch synchronized), its start (s after the jump), and the whole window's share."""
    _env(workload, **extra)
    r = workload.run("ctx", "0", *JUMP_TRACED, timeout=120)
    assert r.returncode == 0, r.stderr
    w = r.values("wtrace")[-1]
    assert w[0] == "0", w[:3]
    t0, t1 = float(w[1]), float(w[2])
    pts = [(float(t), float(g)) for t, g in zip(w[3::2], w[4::2], strict=True)]
    assert len(pts) >= 30 and t1 - t0 >= 1.9, (len(pts), t1 - t0)
    worst, at = 0.0, 0.0
    j = 0
    for i, (ta, ga) in enumerate(pts):  # every sample's next 1 s (the first sample at or after it + 1 s)
        j = max(j, i)
        while j < len(pts) and pts[j][0] - ta < 1.0:
            j += 1
        if j == len(pts):
            break
        tb, gb = pts[j]
        if (gb - ga) / (tb - ta) > worst:
            worst, at = (gb - ga) / (tb - ta), ta - t0
    return worst, at, (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


def test_a_tenant_that_jumps_to_gpu_bound_is_held_to_its_limit_over_its_window(workload: Workload) -> None:
    # the default rate (one coarse launch in 32 sampled): the GPU time over the GPU-bound part's window, which ends
    # after its last launch was held until the debt was paid, stays near the limit (0.48-0.57 on this VM before
    # coarsejump, ~25 runs; with fewer samples 1.0: the whole GPU for 7-13 s)
    window, gpu = _jump(workload)
    assert window >= 1.9, (window, gpu)
    assert gpu / window <= LIMIT + SLACK, (gpu, window)


def test_with_fewer_samples_the_jump_is_held_too(workload: Workload) -> None:
    # one coarse sample in 128 (a tenant may set it itself): the whole GPU for 7-13 s before coarsejump
    window, gpu = _jump(workload, HAMI_SM_SAMPLE_EVERY="128")
    assert window >= 1.9, (window, gpu)
    assert gpu / window <= LIMIT + SLACK, (gpu, window)


@pytest.mark.parametrize("every", ["32", "128", "256"])
def test_the_jump_is_held_within_every_second(workload: Workload, every: str) -> None:
    # held on average is not enough: before coarsejump, at the default rate about half the jumps ran one 2.3-3.3 s
    # burst at 100 % (its worst second 1.0), at 128 / 256 the whole GPU for 7-29 s
    worst, at, whole = _worst_second(workload, HAMI_SM_SAMPLE_EVERY=every)
    assert worst <= LIMIT + SLACK, (worst, at, whole)
    assert whole <= LIMIT + SLACK, (worst, at, whole)
