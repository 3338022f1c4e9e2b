"""Attacks of issue 18's fourth attacker review (audit4), each test stating what should hold; both gaps are closed
now and the tests guard them. Figures and the bench: docs/results/2026-12-05-fake-audit4.md,
hami_plugins_nvidia/bench/audit4_attacks.py.

1. (Closed by mixslice; the test below now passes and guards it.) Time slices, a tenant that waits for each kernel
   beside one that queues kernels ahead (`force`): the neighbour's chained kernels, waiting behind the tenant's
   slice, counted as running on the board (their end marks had not completed), so n(t) = 2 while the tenant held
   the GPU alone, and each was charged half of the tenant's kernels. The 30 % tenant got 45-47 % of the GPU,
   charged 0.63 x it; the 70 % neighbour 50 %, charged 1.39 x. Now a start mark that waited publishes that its
   context took the GPU (user_took_ns), and the neighbour's chained work yields (charge.c taken_at).
2. (Closed by lendlock, board v7; the test below passes and guards it.) The node board is world-writable: a tenant
   that rewrote a real neighbour's published lending values (charged fraction 0, queued share 0, held mark 0) every
   0.2 ms made it lend its share under `default`, whatever it needed (the neighbour rewrote them only every 5 ms).
   A GPU-bound 30 % tenant beside a GPU-bound 70 % one got 36-50 %, the neighbour 37-50 % (69 % without the
   rewrites). Now what a neighbour lends is read from the record lock its processes hold in their lanes of the
   board file (csrc/board.c, vg_board_rec_*), which no write to the file changes; the plain values can only make
   it lend less (docs/results/2026-12-05-fake-lendlock.md).
(The third, a tenant hiding the node's process census in its own mount namespace, is closed where the deployment
sets HAMI_PROC_CENSUS_REQUIRED=1: test_interposer_census_required.py.)"""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload
from .test_interposer_board_records import _forged_pair
from .test_interposer_lend import GPU_BOUND
from .test_interposer_share import _charged_ms, _shared, _spin

pytestmark = [
    pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model"),
    pytest.mark.fake_timing,
]


def test_tenant_waiting_for_each_kernel_beside_a_queued_neighbour_under_time_slices(
        workload: Workload, second_workload: Workload) -> None:
    for w, limit in ((workload, 30), (second_workload, 70)):
        # HAMI_SM_TURNS=0: under time slices, the case under test (taking turns, the default, would keep them apart)
        _shared(w, FAKE_CUDA_SLICE_US="2000", FAKE_CUDA_SWITCH_US="30", CUDA_DEVICE_SM_LIMIT=str(limit),
                HAMI_SM_TURNS="0")
    a = workload.start("ctx", "0", "spin", "1500", "0", "3", "1")  # a sync after each 1.5 ms kernel
    b = second_workload.start("ctx", "0", *GPU_BOUND)  # 2 ms kernels, a sync every 4
    share_a, secs_a, _ = _spin(a)
    share_b, secs_b, _ = _spin(b)
    ratio_a = _charged_ms(workload) / (share_a * secs_a * 10)
    ratio_b = _charged_ms(second_workload) / (share_b * secs_b * 10)
    print(f"audit4-slices: force, 2 ms slices, 30 % syncing each 1.5 ms kernel beside 70 % queuing 2 ms kernels: "
          f"{share_a:.1f} % (charged {ratio_a:.2f} x) + {share_b:.1f} % (charged {ratio_b:.2f} x)")
    assert share_a <= 36 and 0.9 <= ratio_a <= 1.1, (share_a, ratio_a, share_b, ratio_b)
    assert share_b >= 60 and 0.9 <= ratio_b <= 1.1, (share_a, ratio_a, share_b, ratio_b)


def test_rewritten_lender_values_lend_nothing_it_needs(workload: Workload, second_workload: Workload) -> None:
    # the 70 % tenant's lending values (charged fraction 0, queued share 0, held mark 0) rewritten every 0.2 ms
    share_a, share_b = _forged_pair(workload, second_workload, {"user_frac_bp": 0, "user_queued_bp": 0,
                                                                "user_held_ns": 0, "user_frac_ns": -1})
    print(f"audit4-forged-lend: default, GPU-bound 30 + 70, the 70 % tenant's lending values rewritten: "
          f"{share_a:.1f} + {share_b:.1f} %")
    assert share_a <= 36 and share_b >= 60, (share_a, share_b)

