"""A tenant that shapes which coarse samples stay in the verification (issue 18 audit 3, on the fake libcuda).

Coarse launches are sampled at random (1 in 32, measured alone) and a verification charges a phase's launches at
the samples' average (launch.c coarse_sample, verify()). Alone, a coarse mark the GPU reached only after it was
recorded is all *proven tail*: charged exactly, it leaves the verification, and a sample among its launches leaves
the samples' average (launch.c harvest(), the `!alone || start < m->rec` gate). A tenant that chooses its kernels
after seeing a sample (driver_app `steer after`: tiny kernels, each with host time, until it sees a sample taken in
a coarse phase, then long ones queued back to back) keeps its long kernels' samples in the backlog, where they
leave the average: the average is the tiny kernels', and the long part's doubt before its marks' records is
judged by it. Judged by the fake's own accounting of the process's GPU time (FAKE_CUDA_GPU), 30 % `force`, alone,
this VM (bench/coarse_steer.py --attackers after-50,timing-50, 3 rounds of 4 s):

    build                                   after-50            timing-50
    fe4bba3 (samples, no tail)              31.4-32.1 %, ~1.0 x  30.6-31.0 %, ~1.0 x
    99a1a3d (tail, all-tail marks stay)     32.2-32.8 %, ~1.0 x  28.5-32.2 %, ~1.0 x
    main 8dc3be6 (all-tail marks leave)     49.1-53.4 %, 0.60-0.65 x  36.8-44.3 %, 0.65-0.76 x

Now a sample counts in the average whether or not its mark is all tail (it is one launch measured alone: the
average stays a random sample of all the phase's launches), while an all-tail mark's launches still leave coarse_n:
after-50 32.0-32.7 %, 0.99-1.01 x; timing-50 12.1-32.1 %, 1.00-1.06 x (main 8dc3be6 in the same runs: 54.0-59.0 %,
0.54-0.58 x; 12.6-40.8 %, 0.73-0.80 x). docs/results/2026-12-05-fake-audit3.md."""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload
from .test_interposer_coarse_attack import LIMIT, steer_share_and_ratio
from .test_interposer_share import _shared

pytestmark = [
    pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model"),
]


@pytest.mark.fake_timing
def test_long_kernels_only_after_a_sample_do_not_beat_the_limit(workload: Workload) -> None:
    _shared(workload, CUDA_DEVICE_SM_LIMIT=str(LIMIT), DRIVER_BUSY_GAP="1")
    runs = [steer_share_and_ratio(workload, "after", "50", "20", "40") for _ in range(2)]
    # main 8dc3be6: 49-59 %, charged 0.54-0.67 x; now ~32 %, ~1.0 x
    for share, ratio in runs:
        assert ratio >= 0.85, runs
        assert share <= LIMIT + 12, runs  # load on a 2-core box: 37 % seen with the samples (coarse_attack)


def test_long_kernels_only_after_a_sample_are_charged_most_of_their_gpu_time(workload: Workload) -> None:
    # CI's guard for the sample-tail hole (host-independent): one run, judged by its charge alone. main 8dc3be6
    # charged it 0.54-0.67 x the GPU time the fake gave it; now ~1.0 x. Its samples are kernels the fake ran alone
    # on the tenant's stream, whose spans a loaded host can only lengthen (over-charge): the bound sits between.
    _shared(workload, CUDA_DEVICE_SM_LIMIT=str(LIMIT), DRIVER_BUSY_GAP="1")
    share, ratio = steer_share_and_ratio(workload, "after", "50", "20", "40")
    print(f"coarse steer after: {share} % of the fake GPU, charged {ratio} x")
    assert ratio >= 0.8, (share, ratio)
