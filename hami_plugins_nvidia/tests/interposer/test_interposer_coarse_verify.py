"""A coarse phase's verification (issue 18, the launch-bound charge): a tenant measured coarsely is charged launches
x the average charge per launch of its last precise window, and the rest of each coarse span (host gaps included)
is doubt. The next precise window verifies the average: when it is more than 1.5 x the estimate used, the phase's
launches are charged again at the new average, at most the doubt. Before, the whole doubt was charged: the host
gaps between launches counted as GPU time. Measured on this fake (a launch-bound program, 20 us of host time per
launch, whose kernels change from 3 to 12 us and back every 150 ms, alone at 70 % `force`): before, charged
1.67-1.68 x the GPU time the fake gave it (8 verifications of 20 charged 650 ms of doubt); after, 1.27-1.30 x on
an idle box, up to 1.46 x on a loaded one since the coarse samples (the phase before a change is charged the new,
higher average: the over-charge side). The bound, 1.55 x, still fails the old charge. Judged by the fake's own
accounting of the process's GPU time."""

from __future__ import annotations

import re

import pytest

from .conftest import REAL_DRIVER, Workload
from .test_interposer_share import _charged_ms, _shared

pytestmark = [
    pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model"),
    pytest.mark.fake_timing,
]


def test_failed_verification_charges_the_verified_average_not_the_host_gaps(workload: Workload) -> None:
    _shared(workload, CUDA_DEVICE_SM_LIMIT="70", DRIVER_BUSY_GAP="1", HAMI_LAUNCH_STATS="1")
    phases: list[str] = []
    for _ in range(8):  # 3 us then 12 us kernels, 20 us of host time after each, a sync every 195, 150 ms each
        phases += ["spin", "3", "20", "0.15", "195", "spin", "12", "20", "0.15", "195"]
    r = workload.run("ctx", "0", *phases, timeout=60)
    assert r.returncode == 0, r.stderr
    gpu_ms = sum(float(words[3]) for words in r.values("spin")) * 1e3  # the GPU time the fake gave it
    stats = re.search(r"verifications (\d+), (\d+) charged the doubt", r.stderr)
    assert stats, r.stderr
    charged = _charged_ms(workload)
    # the changes are seen: verifications found the estimate too low (and charged part of the doubt)
    assert int(stats.group(2)) >= 3, r.stderr
    assert gpu_ms <= charged <= 1.55 * gpu_ms, (gpu_ms, charged, stats.group(0))
