"""A tenant far below its limit, measured coarsely, that jumps to GPU-bound (issue 18, task alonecost, 2026-12-06, on the
fake libcuda). Drawing fewer coarse samples while far below the limit was tried to cut the launch-bound loop's event
records (record 8 stage 13: 0.099 a launch, ~0.06 of them the samples): it failed open here, so it was not kept. The
samples' marks are part of what bounds the work such a tenant queues before the throttle sees it: with one sample in
128 (the far rate tried, or HAMI_SM_SAMPLE_EVERY=128) it queued 7-13 s of 2 ms kernels in a 2 s loop and held the
whole GPU for all of it; at the default one in 32 it got 0.48-0.57 of the GPU (0.65 once, loaded) over its window (limit 0.50), about half
the runs as one 2.3-3.3 s burst then one ~3-4 s hold (docs/results/2026-12-06-fake-alonecost.md). Open: the hole is
in main's csrc (32ad2a3) too."""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake's simulated kernels")

# 1 s far below the limit (5 us kernels, 20 us of busy host time after each, a sync every 195: ~20 % of the GPU, coarse
# once the first window verified), then 2 ms kernels back to back for 2 s with no sync; force 50
JUMP = ("spin", "5", "20", "1.0", "195", "spin", "2000", "0", "2.0", "1000000")


def _jump(workload: Workload, **extra: str) -> tuple[float, float]:
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        HAMI_SM_PERIOD_MS="100", DRIVER_BUSY_GAP="1", CUDA_DEVICE_SM_LIMIT="50", **extra)
    r = workload.run("ctx", "0", *JUMP, timeout=120)
    assert r.returncode == 0, r.stderr
    spin = r.values("spin")[-1]  # r t0 t1 gpu_s launches ...: the GPU-bound part's window (its last launch waits)
    return float(spin[2]) - float(spin[1]), float(spin[3])


def test_a_tenant_that_jumps_to_gpu_bound_is_held_to_its_limit_over_its_window(workload: Workload) -> None:
    # the default rate (one coarse launch in 32 sampled): the GPU time over the GPU-bound part's window, which ends
    # after its last launch was held until the debt was paid, stays near the limit (0.48-0.57 on this VM, ~25 runs;
    # 0.65 once under `make test` with the VM at load 4; with fewer samples 1.0: the whole GPU for 7-13 s). The bound
    # tells the hole's full form (1.0) from the default's; the default's excess over the limit is the open part
    window, gpu = _jump(workload)
    assert window >= 1.9, (window, gpu)
    assert gpu / window <= 0.50 + 0.25, (gpu, window)


@pytest.mark.xfail(strict=True, reason="known hole (alonecost, 2026-12-06): with one coarse sample in 128 a tenant that "
                   "jumps to GPU-bound queues seconds of work before the throttle holds it (fake: 100 %% of the GPU for "
                   "7-13 s at a limit of 50); remove this mark once the in-flight bound holds without the samples")
def test_with_fewer_samples_the_jump_is_held_too(workload: Workload) -> None:
    window, gpu = _jump(workload, HAMI_SM_SAMPLE_EVERY="128")
    assert gpu / window <= 0.50 + 0.25, (gpu, window)
