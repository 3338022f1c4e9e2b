"""Compute sharing when contexts time-slice (issue 18, the CuPy pair on the H200): long kernels, each followed by
a host sync, on a GPU that runs one context at a time in 2 ms slices with a 30 us switch. Each tenant's work
then runs alone, in turns: a correct processor-sharing charge is the whole of the time it ran. Each tenant is
judged by the GPU time the fake device itself says it gave that process: its share of the GPU within 6 points
of its limit (the higher one may end up to HIGH_UNDER under it: it waits for the host each turn), and the
charge its library made no more than 5 % under that GPU time (the error the fix removes; 10 % over is allowed:
an over-charge is the side errors must fall on). Before the fix the charge counted a neighbour as busy while
it only waited for its turn (its published interval stayed open between its kernels), and a tenant's GPU times
were converted early by the least wait of its marks: both made n(t) = 2 over time the tenant ran alone.
Measured on this fake, 5 rounds per case (docs/results/2026-12-04-fake-timeslice-charge.md): before, charges
of 0.80-0.99 x the GPU time, the 30 % tenant at up to 36.5 % and the 20 % one at 21.3-22.7 %; after, 1.00 x in
every round, the 30 % tenant at 29.4-29.6 %. 20 + 80 is the case that failed in every round before; 30 + 70
and 50 + 50 each passed in one of five. Since lending under default (main 785f3b9) the pair runs with
HAMI_SM_NO_LEND=1: with it, main's charge fails all three cases (2 runs of 2), this one passes them."""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload
from .test_interposer_share import _charged_ms, _shared, _spin

pytestmark = [
    pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's time-sliced GPU model"),
    pytest.mark.fake_timing,
]

#: How far under its limit the higher tenant may end. Each of its turns waits for its sync and for the host to wake
#: it, so on 2 cores it cannot use all of its share: CI's 2-core machine measured it at 62.5 and 63.7 % at 70 in two
#: runs on 2026-12-05 (the lower tenant 28.9-29.4 % at 30, charges 1.01 x what ran). The over-charge this test
#: pins shows in the charge check below and in the lower tenant's share, not here.
HIGH_UNDER = 12


@pytest.mark.parametrize("turns", ["0", None], ids=["time-slicing", "turns-default"])
@pytest.mark.parametrize(("lo", "hi"), [(30, 70), (50, 50), (20, 80)])
def test_long_synchronised_kernels_under_time_slices_are_charged_what_ran(
        workload: Workload, second_workload: Workload, lo: int, hi: int, turns: str | None) -> None:
    # HAMI_SM_TURNS=0: the pair time-slices (the case this test was written for); unset, the default, the contended
    # pair takes turns (csrc/turns.c) and the same bounds hold
    for w, limit in ((workload, lo), (second_workload, hi)):
        # no lending: the 80 % tenant cannot use all of its share (each turn waits for its sync and a context
        # switch), and under default the other would borrow the rest (test_interposer_lend.py); the shares
        # here judge the charge alone
        _shared(w, FAKE_CUDA_SLICE_US="2000", FAKE_CUDA_SWITCH_US="30", GPU_CORE_UTILIZATION_POLICY="default",
                CUDA_DEVICE_SM_LIMIT=str(limit), HAMI_SM_NO_LEND="1")
        if turns is not None:
            w.env["HAMI_SM_TURNS"] = turns
    # 1.5 ms kernels, a sync after each (the CuPy matmul loop), 3 s each, started together
    a = workload.start("ctx", "0", "spin", "1500", "0", "3", "1")
    b = second_workload.start("ctx", "0", "spin", "1500", "0", "3", "1")
    runs = [_spin(a), _spin(b)]
    seen = []
    for w, limit, (share, secs, _n) in zip((workload, second_workload), (lo, hi), runs, strict=True):
        ran_ms = share * secs * 10  # GPU time the fake gave it, ms
        seen.append((limit, round(share, 1), round(ran_ms), round(_charged_ms(w))))
    for (limit, share, ran_ms, charged_ms), slack in zip(seen, (6, HIGH_UNDER), strict=True):
        assert limit - slack <= share <= limit + 6, seen
        assert 0.95 * ran_ms <= charged_ms <= 1.1 * ran_ms, seen
