"""Attacker's review of the node board's newer fields (issue 18 audit): the ring of recent busy intervals,
the open-interval bound and the lending fields are written by every container on the node, so a forged value
must never let a tenant run past its limit by more than the processor-sharing design itself allows (one
neighbour busy at a time halves a charge at most), nor read out of bounds.

Judged, like test_interposer_share.py, by the GPU time the fake device's processor-sharing model gave the
process."""

from __future__ import annotations

import ctypes
import threading
import time

import pytest

from .conftest import REAL_DRIVER, Toolchain, Workload, forge_board_user, region
from .guard_runs import charged_s, spin_run
from .test_interposer_share import _spin

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model")

MS = 1_000_000
RECENT = region.CONST["HAMI_BOARD_RECENT"]


def _forge_ring(board_path, stop: threading.Event, head: int, span: str) -> None:
    """Keeps one forged user on the fake GPU's board entry whose every ring slot claims the same span (all
    slots overlapping), its ring head set to `head`, as a tenant of the node could write. span: "all" from the
    start of time until just inside the future bound, "inverted" the same with since > until, "future" one
    starting 30 years ahead."""
    def fill(g, slot: int, now: int) -> None:
        g.user_since_ns[slot] = 1
        g.user_busy_ns[slot] = now  # closed: only the ring speaks for it
        g.user_recent_head[slot] = head
        lo, hi = {"all": (1, now + 900 * MS), "inverted": (now + 900 * MS, 1),
                  "future": (now + 10**18, now + 2 * 10**18)}[span]
        for k in range(RECENT):
            g.user_recent_since[slot][k] = lo
            g.user_recent_until[slot][k] = hi

    forge_board_user(board_path, stop, fill)


@pytest.mark.fake_timing
@pytest.mark.parametrize(("head", "span", "most"),
                         [(0, "all", 68), (0xFFFFFFFF, "all", 68), (7, "inverted", 38), (7, "future", 38)],
                         ids=["head-0", "head-out-of-range", "since-after-until", "far-future"])
def test_forged_ring_of_overlapping_intervals_does_not_multiply_the_discount(workload: Workload, head: int,
                                                                            span: str, most: int) -> None:
    # a 30 % tenant under force, GPU-bound and alone on the fake GPU. A forged neighbour whose 32 ring slots all
    # cover all time counted as 32 neighbours busy at once: n(t) = 33, the tenant charged 1/33 of what it ran
    # and free to take the whole GPU (measured before the fix: ~95 %). One container is busy or not at any
    # instant: counted once, the forged entry can at most halve the charge (the processor-sharing design's own
    # exposure to a forged busy neighbour, docs/interposer.md), so the tenant stays near 2 x 30 %. Inverted or
    # far-future spans count as nothing: the tenant stays at its limit.
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT="30")
    workload.run("ctx", "0", "launch", "kernel", "1", "1000")  # creates the board and the GPU's entry
    stop = threading.Event()
    t = threading.Thread(target=_forge_ring, args=(workload.tmp.parent / "board", stop, head, span))
    t.start()
    try:
        time.sleep(0.05)
        share, _, _ = _spin(workload.start("ctx", "0", "spin", "2000", "0", "2", "4"))
    finally:
        stop.set()
        t.join()
    print(f"audit-ring: forged ring ({span}, head {head:#x}): 30 % tenant got {share:.1f} %")
    assert share <= most, share


@pytest.mark.parametrize("head", [0, 0xFFFFFFFF], ids=["head-0", "head-out-of-range"])
def test_forged_ring_of_overlapping_intervals_discounts_the_charge_at_most_half(workload: Workload,
                                                                               head: int) -> None:
    # The forged ring above judged by the charge instead of the share (a CI guard, host-independent): the forged
    # user counts as one neighbour busy all the time, so the tenant is charged half of every busy span it
    # measured, and those spans hold at least the GPU time the fake gave it (a loaded host only stretches them):
    # charged >= ~0.5 x that GPU time, against 1/33 (~0.03 x) when the 32 ring slots counted as 32 neighbours.
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT="30")
    workload.run("ctx", "0", "launch", "kernel", "1", "1000")  # creates the board and the GPU's entry
    stop = threading.Event()
    t = threading.Thread(target=_forge_ring, args=(workload.tmp.parent / "board", stop, head, "all"))
    t.start()
    try:
        time.sleep(0.05)
        gpu, _ = spin_run(workload, "1")
    finally:
        stop.set()
        t.join()
    charged = charged_s(workload)
    print(f"audit-ring guard: forged ring (head {head:#x}): charged {charged:.3f} s of {gpu:.3f} s the fake gave "
          f"({charged / gpu:.2f} x)")
    assert charged >= 0.35 * gpu, (charged, gpu)


def _union(lib: ctypes.CDLL, ivs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    n = max(1, len(ivs))
    since = (ctypes.c_int64 * n)(*[s for s, _ in ivs])
    until = (ctypes.c_int64 * n)(*[u for _, u in ivs])
    m = lib.hami_vgpu_interval_union(since, until, len(ivs))
    return [(since[i], until[i]) for i in range(m)]


def test_interval_union_merges_one_users_overlapping_intervals(toolchain: Toolchain) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    assert _union(lib, []) == []
    assert _union(lib, [(0, 10)] * 33) == [(0, 10)]  # the same span 33 times is one busy span
    assert _union(lib, [(20, 30), (0, 10), (5, 12), (30, 31)]) == [(0, 12), (20, 31)]  # touching spans join
    assert _union(lib, [(0, 5), (7, 9)]) == [(0, 5), (7, 9)]  # disjoint ones stay
    assert _union(lib, [(-(2**63), 2**63 - 1), (3, 4)]) == [(-(2**63), 2**63 - 1)]  # extremes: no overflow
    # the charge beside such a union: counted as one neighbour, half, never less
    lib.hami_vgpu_ps_charge_ns.restype = ctypes.c_int64
    u = _union(lib, [(0, 10 * MS)] * 32)
    arr = ctypes.c_int64 * len(u)
    assert lib.hami_vgpu_ps_charge_ns(ctypes.c_int64(0), ctypes.c_int64(10 * MS), arr(*[s for s, _ in u]),
                                      arr(*[e for _, e in u]), len(u)) == 5 * MS


@pytest.mark.parametrize("last", [-(2**62), -(2**63) + 1, 1], ids=["minus-2^62", "int64-min", "long-ago"])
def test_bucket_refill_after_any_gap_fills_the_bucket_without_overflow(toolchain: Toolchain, last: int) -> None:
    # the refill time lives in the container's region: a rewritten or ancient one made (now - last) * share
    # overflow int64 (undefined; on x86 it wrapped to a debt of ~3 years: the container frozen). Any gap longer
    # than the bucket needs to fill from its debt leaves it full, never more
    lib = ctypes.CDLL(str(toolchain.lib))
    lib.hami_vgpu_bucket_refill.restype = ctypes.c_int64
    cap = 160 * MS
    for tokens0 in (0, -50 * MS):
        tokens, refill = ctypes.c_int64(tokens0), ctypes.c_int64(last)
        lib.hami_vgpu_bucket_refill(ctypes.byref(tokens), ctypes.byref(refill), ctypes.c_int64(10**15), 50,
                                    ctypes.c_int64(cap))
        assert tokens.value == cap and refill.value == 10**15
