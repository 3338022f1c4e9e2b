"""Busy time collected out of GPU order must still be charged (issue 18: a program beside an idle neighbour charged
a fraction of what it ran).

Beside a neighbour on the node board every launch gets a start mark, so each stream's span is its kernel's own GPU
time and the streams' spans are disjoint. A collection takes the streams in the order it asks them (oldest mark
first, a mark found running asked again later), not in the order the GPU ran them: a 3 ms kernel on one stream
followed by 1 us kernels on 31 others had the short ones collected first, and the watermark that joins the streams'
spans (charge.c) then cut the 3 ms span off whole. Fake libcuda, this 2-core VM: charged 0.00-0.60 x the fake's GPU
time with main's build, 0.93 now (docs/results/2026-12-05-fake-idle-neighbour-charge.md).

The check is a charge identity, not a share: with one neighbour process on the GPU (the NVML bound, K = 1) the
processor-sharing charge of a span is at least half of it, and the spans hold the GPU time the fake gave the
program. A slow host only collects later, in order more often: it can make main pass, never this build fail."""

from __future__ import annotations

from .conftest import Workload, fake_only
from .guard_runs import beside_idle_neighbour

pytestmark = fake_only

STEP = ("launchon", "0x2000", "1", "3000",
        *(w for k in range(1, 32) for w in ("launchon", hex(0x2000 + k), "1", "1")), "sync")


def test_streams_collected_out_of_order_beside_an_idle_neighbour_are_charged(workload: Workload,
                                                                            second_workload: Workload) -> None:
    ran_s, charged, lines = beside_idle_neighbour(workload, second_workload, STEP * 5)
    assert ran_s >= 5 * 0.003, lines  # the fake ran every 3 ms kernel
    assert charged >= 0.5 * ran_s, (charged, ran_s)
