"""A training step's shape under coarse measurement (issue 18: the H200's torch training loop alone was charged
0.64-0.74 x its GPU time whenever its credit was ample). The step queues long kernels ahead of the GPU (the
backward pass's GEMMs: the host enqueues them in a few ms, the GPU runs them for ~40 ms), then launches thousands
of tiny ones paced by its host (the optimizer's and elementwise kernels: 5 us on the GPU, 12 us of host time
each), then syncs once. Coarse launches are charged the last precise window's average, which such a window, taken
among the tiny kernels, puts at ~5 us; the rest of each coarse span is doubt that the next window forgives as
far as its host gaps explain it. The GEMMs' spans were doubt like any host gap, and the windows' "host gaps" held
the GEMM backlog still draining when they began (100-290 us per launch where the host's own were ~8 us): all of
it forgiven. On this fake, before the coarse samples (b35584f): 50 % force alone 83 % of the GPU, charged 0.36 x
it; 70 %: 76 %, 0.38 x. With the samples (fe4bba3): 0.90-0.91 x at 70 %. Now (launch.c harvest()) the part of a
coarse span after its mark was recorded is charged as GPU time (the launches were all queued by then: no host
gap can be in it), and a mark that is all such tail leaves the verification: 1.02-1.05 x, held at its limits.
Judged by the fake's own accounting of the process's GPU time (FAKE_CUDA_GPU), not by wall-clock figures."""

from __future__ import annotations

import re

import pytest

from .conftest import REAL_DRIVER, Workload
from .test_interposer_share import _charged_ms, _shared

pytestmark = [
    pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model"),
]

STEP = "20*2000,4000*5"  # 20 GEMM-like kernels of 2 ms, then 4000 tiny kernels of 5 us; a sync per step
HOST_US = "12"           # host time after each launch (busy-waited: DRIVER_BUSY_GAP)
WARM = ("spin", "3", "3000", "0.8", "1000")  # nearly idle: the bucket fills, a window verifies, coarse begins


@pytest.mark.fake_timing
@pytest.mark.parametrize("limit", [50, 70])
def test_training_step_shape_is_charged_its_gpu_time_in_coarse_mode(workload: Workload, limit: int) -> None:
    _shared(workload, CUDA_DEVICE_SM_LIMIT=str(limit), HAMI_LAUNCH_STATS="1", DRIVER_BUSY_GAP="1")
    r = workload.run("ctx", "0", *WARM, "passes", STEP, HOST_US, "5", timeout=60)
    assert r.returncode == 0, r.stderr
    warm, passes = r.values("spin")[0], r.values("passes")[0]
    assert warm[0] == "0" and passes[0] == "0", r.stderr
    gpu_ms = (float(warm[3]) + float(passes[3])) * 1e3  # the GPU time the fake gave it (warm-up included)
    share = 100 * float(passes[3]) / (float(passes[2]) - float(passes[1]))
    charged = _charged_ms(workload)
    stats = re.search(r"measured launches \(([\d.]+) % coarse\)", r.stderr)
    assert stats, r.stderr
    # at 70 % the step leaves it credit: it is measured coarsely at times (the case under test). At 50 % it is held
    # every step, and since the spendable credit is bounded (inferalone, 2026-12-05) a held tenant loses its reserve
    # and is measured precisely: the charge below must hold in either mode
    if limit == 70:
        assert float(stats.group(1)) > 1.0, stats.group(0)
    # charged what it got, so it is held at its limit
    assert 0.95 * gpu_ms <= charged <= 1.3 * gpu_ms, (limit, round(share, 1), gpu_ms, charged)
    assert share <= limit + 6, (limit, round(share, 1), round(charged / gpu_ms, 2))


def run_step_at_70(workload: Workload, **env: str) -> tuple[float, float, re.Match[str]]:
    """The step alone at 70 % force for 3 s after the warm-up: (the GPU time the fake gave it, warm-up included, in
    ms; its charge in ms; the launch stats line's match, group 1 its coarse %). Shared by the CI guards (here and
    test_interposer_coarse_stall.py) so they run the same shape."""
    _shared(workload, CUDA_DEVICE_SM_LIMIT="70", HAMI_LAUNCH_STATS="1", DRIVER_BUSY_GAP="1", **env)
    r = workload.run("ctx", "0", *WARM, "passes", STEP, HOST_US, "3", timeout=60)
    assert r.returncode == 0, r.stderr
    warm, passes = r.values("spin")[0], r.values("passes")[0]
    assert warm[0] == "0" and passes[0] == "0", r.stderr
    stats = re.search(r"measured launches \(([\d.]+) % coarse\).*?(verifications [^;]*)", r.stderr)
    assert stats, r.stderr
    return (float(warm[3]) + float(passes[3])) * 1e3, _charged_ms(workload), stats


def test_training_step_shape_in_coarse_mode_is_charged_most_of_its_gpu_time(workload: Workload) -> None:
    # CI's guard (host-independent): the 70 % case, shorter, judged by its charge alone. b35584f charged this shape
    # 0.36-0.38 x the GPU time the fake gave it (its GEMM backlog forgiven as host gaps); now 1.02-1.05 x. A loaded
    # host lengthens the host gaps between the tiny kernels, which could forgive more doubt; measured, load and
    # injected stalls charged more, not less (1.24-1.42 x: docs/results/2026-12-05-fake-stall-charge.md). The bound
    # sits at 0.7.
    gpu_ms, charged, stats = run_step_at_70(workload)
    print(f"coarse training 70 %: charged {charged / gpu_ms:.2f} x of {gpu_ms:.0f} ms, {stats.group(1)} % coarse")
    assert charged >= 0.7 * gpu_ms, (round(charged), round(gpu_ms), stats.group(0))
