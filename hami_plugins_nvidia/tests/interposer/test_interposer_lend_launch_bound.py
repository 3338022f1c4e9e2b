"""A launch-bound tenant beside a GPU-bound one under `default` (issue 18, record 5's conformance pair: a training
loop and a small-batch inference loop at 50 + 50 on the H200, the GPU ~12 % idle). The inference-shaped tenant
closes a precise span every few tens of us; its neighbour's busy interval reaches the node board only when that
neighbour harvests (its opening at the next collection of its start mark, its progress every 100 us at best). A
span charged the moment it completed counted the neighbour idle for what the board did not show yet, so the
launch-bound tenant was charged for the whole of GPU time it shared: 1.5-2.9 x the GPU time the fake gave it
(main 761ee09, fake libcuda, this 2-core VM; docs/results/2026-12-05-fake-launch-bound-pairs.md). Its charge is
now the lower of two reads of the board, at completion and 5 ms later (charge.c deferred_charge).

Judged by the fake GPU's own accounting of each process's GPU time against the region's charged busy time, the
median of three pairs: wide on the side that does not hide the bug (a loaded 2-core host pre-empts the launch path
between its clock read and the launch, which the span counts: up to 1.4 x after the fix, and no verdict where the
loop alone cannot reach 25 % of the fake GPU), never under-charged."""

from __future__ import annotations

import statistics

import pytest

from .conftest import REAL_DRIVER, Workload
from .guard_runs import charged_pct, finish_spin
from .test_interposer_lend import GPU_BOUND

pytestmark = [
    pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model"),
    pytest.mark.fake_timing,
]

#: record 5's inference loop: 10 us kernels, 12 us of host time after each (busy-waited), a sync per 195 launches
INFER = ("spin", "10", "12", "3", "195")
#: below this busy share alone (native) the host cannot run the loop at its shape: the test gives no verdict
SOLO_MIN_PCT = 25


def _setup(w: Workload, limit: int) -> None:
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="default",
                 HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT=str(limit), DRIVER_BUSY_GAP="1",
                 FAKE_CUDA_SYNC_POLL_US="10")


def _gpu_and_charge(w: Workload, proc) -> tuple[float, float]:
    """% of the window the fake GPU gave the process, and % the library charged its container."""
    s = finish_spin(proc)
    return s.share_pct, charged_pct(w, s)


def test_launch_bound_tenant_beside_a_gpu_bound_one_is_charged_its_gpu_time(workload: Workload,
                                                                           second_workload: Workload,
                                                                           tmp_path) -> None:
    # the loop alone, natively: on a host too loaded to run it at its shape (a busy share of ~30-50 % here), its
    # launch path is pre-empted inside its spans and any build is charged well over its GPU time: no verdict
    solo = second_workload.run("ctx", "0", *INFER[:3], "2", INFER[4], preload=False,
                               FAKE_CUDA_GPU=str(tmp_path / "solo-gpu"), DRIVER_BUSY_GAP="1", timeout=60)
    words = solo.values("spin")[0]
    solo_pct = 100 * float(words[3]) / (float(words[2]) - float(words[1]))
    if solo_pct < SOLO_MIN_PCT:
        pytest.skip(f"the host is too loaded: the launch-bound loop alone got {solo_pct:.1f} % of the fake GPU "
                    f"(< {SOLO_MIN_PCT} %)")
    ratios, rows = [], []
    for k in range(3):
        train, infer = workload, second_workload
        for w in (train, infer):
            w.tmp = tmp_path / f"r{k}" / w.tmp.name  # a fresh region and node board per pair
            w.tmp.mkdir(parents=True)
        _setup(train, 50)
        _setup(infer, 50)
        a = train.start("ctx", "0", *GPU_BOUND)
        b = infer.start("ctx", "0", *INFER)
        ga, ca = _gpu_and_charge(train, a)
        gb, cb = _gpu_and_charge(infer, b)
        rows.append((round(ga, 1), round(ca, 1), round(gb, 1), round(cb, 1)))
        assert gb >= 5, rows  # the inference loop ran beside the GPU-bound one
        assert ca >= 0.9 * ga and cb >= 0.9 * gb, rows  # nobody is under-charged by the deferral
        ratios.append(cb / gb)
    print(f"lend-lb: the loop alone {solo_pct:.1f} %; GPU-bound + launch-bound at 50 + 50, default: (GPU %, charged %) "
          f"per pair {rows}; "
          f"launch-bound charge / GPU time {[round(r, 2) for r in ratios]}")
    # main: 1.53-2.87 x (this test's medians 1.73); after: 1.02-1.40 (medians 1.08-1.19)
    assert statistics.median(ratios) <= 1.4, (ratios, rows)
