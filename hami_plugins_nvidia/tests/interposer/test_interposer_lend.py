"""Work-conserving lending under GPU_CORE_UTILIZATION_POLICY=default (issue 18): a held tenant may use what
its active neighbours leave unused of their own limits (max-min fairness with the limits as guarantees), never
under `force`, never from a forged or stale board entry, and a neighbour that wants its share back gets it.

Judged, as in test_interposer_share.py, by the GPU time the fake device's processor-sharing model says it
gave each process, with tolerances that hold on a loaded 2-core machine and still fail on the old behaviour
(each lending test runs the same pair with HAMI_SM_NO_LEND=1 beside it)."""

from __future__ import annotations

import ctypes
import mmap
import statistics
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import board_records
from .conftest import REAL_DRIVER, Toolchain, Workload, forge_board_user, region
from .test_interposer_share import _share_between, _spin, _trace

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model")

MS = 1_000_000
GPU_BOUND = ("spin", "2000", "0", "3", "4")  # 2 ms kernels, a sync every 4: demand ~100 %
LIGHT = ("spin", "300", "1000", "3", "1000000")  # 300 us kernels, ~1 ms of host time after each: ~30 %


def _lent(lib: ctypes.CDLL, own: int, rows: list[tuple[int, ...]]) -> int:
    """rows: (limit %, charged fraction in 1/100 %, its age ns, age of the last held mark ns[, share of the time
    with work on the GPU in 1/100 %; when not given, the charged fraction: a neighbour that never waited, whose
    demand is what it used])."""
    rows = [(*r, r[1]) if len(r) == 4 else r for r in rows]
    n = max(1, len(rows))
    i32, i64 = ctypes.c_int32 * n, ctypes.c_int64 * n
    cols = list(zip(*rows, strict=True)) if rows else [(0,)] * 5
    return lib.hami_vgpu_lent_share(own, i32(*cols[0]), i32(*cols[1]), i32(*cols[4]), i64(*cols[2]),
                                    i64(*cols[3]), len(rows))


def test_lent_share_is_the_unused_part_of_the_neighbours_limits_and_bounded(toolchain: Toolchain) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    fresh, free = 2 * MS, 10**12  # written 2 ms ago; never held
    assert _lent(lib, 50, []) == 50  # nobody to lend
    assert _lent(lib, 50, [(50, 3000, fresh, free)]) == 67  # the neighbour uses 30 of its 50, keeps a 3-point margin
    assert _lent(lib, 30, [(30, 1000, fresh, free), (40, 0, fresh, free)]) == 84  # 17 + 37 lent
    assert _lent(lib, 50, [(50, 6000, fresh, free)]) == 50  # over its limit: lends nothing, takes nothing
    assert _lent(lib, 50, [(50, 4800, fresh, free)]) == 50  # within the margin: nothing
    assert _lent(lib, 50, [(50, 0, fresh, 50 * MS)]) == 50  # held 50 ms ago: wants its share
    # work on the GPU 98 % of the time: a backlogged neighbour squeezed by processor sharing, not an idle one
    assert _lent(lib, 30, [(70, 6000, fresh, free, 9800)]) == 30
    # 60 % charged while waiting a further 36 % behind the neighbour (idle 4 %): it would use ~94 % alone, more
    # than its 70 %: it lends nothing (the old rule, limit - charge, lent 7 points here and 22 at the H200's
    # 45 % charge, issue 18)
    assert _lent(lib, 30, [(70, 6000, fresh, free, 9600)]) == 30
    assert _lent(lib, 30, [(70, 4500, fresh, free, 9600)]) == 30
    # 20 % charged, 40 % with work on the GPU: ~25 % alone, so 70 - 25 - 3 = 42 lent
    assert _lent(lib, 30, [(70, 2000, fresh, free, 4000)]) == 72
    assert _lent(lib, 90, [(10, 0, fresh, free)]) == 97  # all of the GPU but the margin: never more than 100
    assert _lent(lib, 100, [(50, 0, fresh, free)]) == 100  # no limit: nothing to compute
    assert _lent(lib, 50, [(100, 0, fresh, free)]) == 50  # an unlimited neighbour: limits over-commit the GPU
    assert _lent(lib, 40, [(50, 0, fresh, free), (20, 0, fresh, free)]) == 40  # 110 %: over-committed, none
    # forged or stale entries lend nothing
    assert _lent(lib, 50, [(0, 0, fresh, free)]) == 50  # limit 0
    assert _lent(lib, 50, [(-20, 0, fresh, free)]) == 50
    assert _lent(lib, 50, [(50, -500, fresh, free)]) == 50  # usage -5 %
    assert _lent(lib, 50, [(50, 20000, fresh, free)]) == 50  # usage 200 %
    assert _lent(lib, 50, [(50, 0, fresh, free, -1)]) == 50  # queued time out of range
    assert _lent(lib, 50, [(50, 0, 2000 * MS, free)]) == 50  # written 2 s ago
    assert _lent(lib, 50, [(50, 0, -500 * MS, free)]) == 50  # written in the future
    assert _lent(lib, 50, [(50, 0, fresh, -5 * MS)]) == 50  # held "in the future": counted as held
    # one bad entry does not stop a good one from lending
    assert _lent(lib, 30, [(0, 0, fresh, free), (50, 2000, fresh, free)]) == 57


def test_lend_demand_is_the_use_alone_and_bounded(toolchain: Toolchain) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    lib.hami_vgpu_lend_demand_bp.restype = ctypes.c_int64
    lib.hami_vgpu_lend_demand_bp.argtypes = [ctypes.c_int64, ctypes.c_int64]
    d = lib.hami_vgpu_lend_demand_bp
    assert d(3000, 3000) == 3000  # never waited: what it used
    assert d(4500, 9700) == 9375  # waits and runs, idle 3 %: almost the whole GPU alone
    assert d(2000, 4000) == 2500
    assert d(0, 0) == 0  # idle
    assert d(0, 10000) == 10000  # work queued all the time, nothing run: it wants the GPU
    assert d(5000, 2000) == 5000  # queued less than it ran (two processes, one counted): at least what it used
    for bad in ((-1, 5000), (10001, 5000), (5000, 10001), (5000, -1 - 2**40)):
        assert d(*bad) == 10000, bad  # out of range: lends nothing


def _lent_solo(lib: ctypes.CDLL, own: int, rows: list[tuple[int, int, int, int]]) -> int:
    """rows: (limit %, charged fraction, share of the time with work on the GPU, demand alone; all 1/100 % but the
    limit), each written 2 ms ago and never held: the share in force as lending.c computes it (with demand alone)."""
    n = len(rows)
    i32, i64 = ctypes.c_int32 * n, ctypes.c_int64 * n
    cols = list(zip(*rows, strict=True))
    return lib.hami_vgpu_lent_share_bounded(own, i32(*cols[0]), i32(*cols[1]), i32(*cols[2]), i32(*cols[3]),
                                            i64(*([2 * MS] * n)), i64(*([10**12] * n)), n, -1)


def _demand_solo(toolchain: Toolchain) -> tuple[ctypes.CDLL, ctypes._CFuncPtr]:
    lib = ctypes.CDLL(str(toolchain.lib))
    lib.hami_vgpu_lend_demand_solo_bp.restype = ctypes.c_int64
    lib.hami_vgpu_lend_demand_solo_bp.argtypes = [ctypes.c_int64] * 3
    lib.hami_vgpu_lend_demand_bp.restype = ctypes.c_int64
    lib.hami_vgpu_lend_demand_bp.argtypes = [ctypes.c_int64] * 2
    return lib, lib.hami_vgpu_lend_demand_solo_bp


def test_a_launch_ahead_neighbour_lends_by_its_demand_alone_never_below_its_charge(toolchain: Toolchain) -> None:
    # lendconf (conformance isolation/work-conserving-sharing, H100 record 9b: training 50.0 + inference 41.6 =
    # 91.6 % < 95): a loop that launches ahead has its queue outstanding through its host's own gaps, so
    # used / (used + idle) reads above its demand; its demand alone lowers the estimate, never below its charge.
    # Here its queue is outstanding 22 of the 62 points it is off the GPU (not waiting: lendguard, below)
    lib, d = _demand_solo(toolchain)
    assert lib.hami_vgpu_lend_demand_bp(3800, 6000) == 4871  # the queued estimate alone: lends nothing at 50
    assert d(3800, 6000, 4100) == 4100  # its demand alone reads lower: that
    assert d(3800, 6000, 2000) == 3800  # never below its charge: it lends at most what it left unused
    assert d(3800, 6000, 9000) == 4871  # never above the queued estimate: solo only ever lends more
    assert d(3800, 6000, 0) == 4871  # not measured (0, or not capped): the queued estimate
    for bad in (-1, 10001, 2**40):
        assert d(3800, 6000, bad) == 4871, bad  # out of range: ignored
    assert d(-1, 5000, 100) == 10000  # a charge out of range still lends nothing
    assert d(5000, 10001, 100) == 10000
    assert _lent_solo(lib, 50, [(50, 3800, 6000, 4100)]) == 56  # 50 - 41 - 3 lent
    assert _lent_solo(lib, 50, [(50, 3800, 6000, 0)]) == 50  # before: nothing (by the queued estimate)
    # CuPy's pattern (a kernel, a sync): squeezed to 45 % charged with work on the GPU 96 % of the time; its
    # waits behind the neighbour are its own sync waits, which its demand alone subtracts: it reads high too
    assert _lent_solo(lib, 30, [(70, 4500, 9600, 9000)]) == 30
    # backlogged, held and over-committed entries lend nothing whatever their demand alone says
    assert _lent_solo(lib, 30, [(70, 4500, 9800, 100)]) == 30
    assert _lent_solo(lib, 60, [(50, 2000, 3000, 100)]) == 60


def test_a_neighbour_waiting_behind_its_borrower_lends_only_once_it_gets_its_demand(toolchain: Toolchain) -> None:
    # lendguard (H100 record 10, the conformance pair at 50 + 50: the inference loop, 46.8 % alone, lent by a
    # demand alone that read a few points low to the training loop whose slices it waited behind; charged 38.6 %,
    # guarantee 41.8 missed, the pair still 91 %). Waiting: its work queued for >= 50 % of its time off the GPU and
    # its host waiting for it (charged below its demand alone); its shortfall then counts twice on top of its
    # demand alone. Main's csrc (lendconf) lent 6 and 2 points in the first two cases
    lib, d = _demand_solo(toolchain)
    # the lendconf record's fake figures (bench/turns.py trainfer 50 + 50): 38 % charged, queued 86 %, demand
    # alone 41 %: queued 48 of the 62 points off the GPU, 3 points short: 41 + 2 x 3 = 47, lends nothing
    assert d(3800, 8600, 4100) == 4700
    assert _lent_solo(lib, 50, [(50, 3800, 8600, 4100)]) == 50
    # H100-like: charged 38.6, queued ~85, demand alone reading ~44.5 (training borrowed 2.4 points): nothing
    assert d(3860, 8500, 4450) == 5630
    assert _lent_solo(lib, 50, [(50, 3860, 8500, 4450)]) == 50
    # a smaller shortfall with room under the limit still lends the rest: this repo's fake, 2026-12-06 (the
    # inference loop host-bound on a loaded 2-core VM: 31 % charged, queued 83 %, demand alone 33 %)
    assert d(3140, 8330, 3340) == 3740
    assert _lent_solo(lib, 50, [(50, 3140, 8330, 3340)]) == 59  # lendconf: 63
    # the launch-bound pair (H100 record 10, 30 + 70: the 70 % tenant charged ~48 %, published demand alone 48.8,
    # a launch-bound loop's queue open through its whole pass): at or above its demand alone it lends as before
    assert _lent_solo(lib, 30, [(70, 4900, 9500, 4880)]) == 48  # 70 - 49 - 3
    assert _lent_solo(lib, 30, [(70, 4700, 9500, 4880)]) == 44  # 0.9 short: 70 - (48.8 + 1.8) - 3 (lendconf 48)
    # a light lender, its queue empty off the GPU (test_default_policy_lends_a_light_neighbours_unused_share): as
    # before
    assert d(2900, 3000, 2920) == 2920
    assert _lent_solo(lib, 50, [(50, 2900, 3000, 2920)]) == 67  # 50 - 29.2 - 3
    # the edge: queued exactly half of its time off the GPU waits; just under it does not
    assert d(4000, 7000, 4200) == 4600
    assert d(4000, 6999, 4200) == 4200
    # never above the queued estimate, never below the charge
    assert d(3800, 8600, 6000) == 7307
    assert d(3800, 8600, 3000) == 3800


@settings(max_examples=200, deadline=None)
@given(used=st.integers(-(2**63), 2**63 - 1), queued=st.integers(-(2**63), 2**63 - 1),
       solo=st.integers(-(2**63), 2**63 - 1))
def test_demand_alone_only_lowers_the_estimate_to_the_charge(toolchain: Toolchain, used: int, queued: int,
                                                             solo: int) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    lib.hami_vgpu_lend_demand_solo_bp.restype = lib.hami_vgpu_lend_demand_bp.restype = ctypes.c_int64
    lib.hami_vgpu_lend_demand_solo_bp.argtypes = [ctypes.c_int64] * 3
    lib.hami_vgpu_lend_demand_bp.argtypes = [ctypes.c_int64] * 2
    d, base = lib.hami_vgpu_lend_demand_solo_bp(used, queued, solo), lib.hami_vgpu_lend_demand_bp(used, queued)
    assert d <= base
    assert d >= (used if 0 <= used <= 10000 else 10000)
    if 0 <= used <= 10000 and 0 <= queued <= 10000 and 0 < solo <= 10000:  # lendguard only raises lendconf's
        assert d >= min(base, max(used, solo))


_I32 = st.integers(-(2**31), 2**31 - 1)
_I64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=200, deadline=None)
@given(own=st.integers(1, 99), rows=st.lists(st.tuples(_I32, _I32, _I64, _I64, _I32), max_size=16))
def test_lent_share_is_bounded_whatever_the_board_says(toolchain: Toolchain, own: int,
                                                       rows: list[tuple[int, ...]]) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    got = _lent(lib, own, rows)
    assert own <= got <= 100
    valid = sum(r[0] for r in rows if 1 <= r[0] <= 100)
    if own + valid > 100:
        assert got == own  # over-committed: nothing lent
    # never more than the GPU time the active limits leave unguaranteed plus what the neighbours leave unused
    assert got <= own + sum(max(0, r[0] - 3) for r in rows if 1 <= r[0] <= 100)


def _setup(w: Workload, policy: str, limit: int, **env: str) -> None:
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY=policy,
                 HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT=str(limit))
    w.env.update(env)


def _pair(trainer: Workload, light: Workload, **env: str) -> tuple[float, float, int]:
    a = trainer.start("ctx", "0", *GPU_BOUND, **env)
    b = light.start("ctx", "0", *LIGHT, **env)
    share_a, _, _ = _spin(a)
    share_b, _, n_b = _spin(b)
    return share_a, share_b, n_b


@pytest.mark.fake_timing
def test_default_policy_lends_a_light_neighbours_unused_share(workload: Workload, second_workload: Workload) -> None:
    # a GPU-bound tenant at 50 % beside one using ~30 % of its 50 %: it may take the unused 20 points
    _setup(workload, "default", 50)
    _setup(second_workload, "default", 50)
    unlent = _pair(workload, second_workload, HAMI_SM_NO_LEND="1")
    lent = _pair(workload, second_workload)
    print(f"lend-a: no lending {unlent[0]:.1f} + {unlent[1]:.1f} % ({unlent[2]} light launches); "
          f"lending {lent[0]:.1f} + {lent[1]:.1f} % ({lent[2]} light launches)")
    assert unlent[0] <= 54, (unlent, lent)  # the old behaviour: held at its cap, the GPU partly idle
    assert 15 <= lent[1] <= 45 and 15 <= unlent[1] <= 45, (unlent, lent)  # the light tenant really is light
    # ideally 50 + 19 lent (50 - ~28 - the 3-point margin) = ~69; measured ~61 over a 3 s window that includes the
    # start (the lender publishes its whole limit until its average has fallen, and is low on credit for its
    # first ~0.3 s) and a small over-charge of the borrower (some of the light tenant's busy periods are
    # published after the borrower charged the span they fall in); without lending ~47
    assert lent[0] >= 57, (unlent, lent)
    assert lent[0] + lent[1] >= 85, (unlent, lent)  # closer to work-conserving (without lending ~75)
    assert lent[2] >= 0.9 * unlent[2], (unlent, lent)  # the lender's rate is kept (within 10 %)


@pytest.mark.fake_timing
def test_default_policy_gpu_bound_pair_still_splits_by_the_limits(workload: Workload,
                                                                  second_workload: Workload) -> None:
    # two GPU-bound tenants at 30 + 70 under default: the guarantees hold (on the fake the 70 % tenant is held
    # often enough; the margin and the queued test, unit-tested above, keep a split that drifts from pulling the
    # borrower further up)
    _setup(workload, "default", 30)
    _setup(second_workload, "default", 70)
    a = workload.start("ctx", "0", *GPU_BOUND)
    b = second_workload.start("ctx", "0", *GPU_BOUND)
    share_a, _, _ = _spin(a)
    share_b, _, _ = _spin(b)
    print(f"lend-e: default, GPU-bound pair 30 + 70: {share_a:.1f} + {share_b:.1f} %")
    assert abs(share_a - 30) <= 6 and abs(share_b - 70) <= 6, (share_a, share_b)


@pytest.mark.fake_timing
@pytest.mark.parametrize("sync_every", ["1", "2"], ids=["cupy-sync-per-kernel", "jax-two-per-sync"])
def test_default_policy_backlogged_lender_squeezed_by_time_slices_lends_nothing(
        workload: Workload, second_workload: Workload, sync_every: str) -> None:
    # issue 18 (H200, CuPy/JAX 30 + 70 under default ran at the native ~48 + 48): the 70 % tenant starts light
    # for 0.5 s (lending, as it should), then runs 1.5 ms kernels waiting for each (or each second) under 2 ms
    # time slices. Charged ~50 % while both are busy, it lent limit - charge to the borrower and the pair stayed
    # at the native split; measured on demand (its charge plus the waits) it lends nothing once GPU-bound.
    # Judged by the fake GPU's own time per process from 0.5 s after the lender turned GPU-bound
    for w, limit in ((workload, 30), (second_workload, 70)):
        _setup(w, "default", limit, FAKE_CUDA_SLICE_US="2000")
    a = workload.start("ctx", "0", "trace", "1500", "0", "4", sync_every, "50")
    b = second_workload.start("ctx", "0", "spin", "1500", "5000", "0.5", "1", "trace", "1500", "0", "3", sync_every,
                              "50")
    out_b, err_b = b.communicate(timeout=60)
    trace_b = _parse_trace(out_b)
    trace_a = _trace(a)
    t0, t1 = trace_b[0][0] + 0.5, trace_b[-1][0]
    share_a, share_b = _share_between(trace_a, t0, t1), _share_between(trace_b, t0, t1)
    print(f"lend-f: default, time-sliced, sync every {sync_every}, lender light then GPU-bound, 30 + 70: "
          f"{share_a:.1f} + {share_b:.1f} %")
    # the lender below its limit by at most 10 (never above it by more than 5): waiting for each kernel on a 2-core
    # machine it is host-bound; trees before and after 2026-12-05's board changes alike gave 65.1-66.0 % (unloaded)
    # and CI's 2-core runs 63.8 % and less. Lending what it wanted (the H200 bug) gives the native ~48 + 48: the
    # borrower's bound (30 ± 5) and the lender's (60 at least) both still fail it
    assert abs(share_a - 30) <= 5 and -10 <= share_b - 70 <= 5, (share_a, share_b)


@pytest.mark.fake_timing
def test_force_policy_never_lends(workload: Workload, second_workload: Workload) -> None:
    _setup(workload, "force", 50)
    _setup(second_workload, "force", 50)
    share_a, share_b, _ = _pair(workload, second_workload)
    print(f"lend-b: force {share_a:.1f} + {share_b:.1f} %")
    assert 15 <= share_b <= 45, (share_a, share_b)
    assert share_a <= 55, (share_a, share_b)


@pytest.mark.fake_timing
def test_lender_turning_gpu_bound_gets_its_share_back_within_a_few_hundred_ms(workload: Workload,
                                                                          second_workload: Workload) -> None:
    # the light tenant runs light for 1.5 s, then GPU-bound for 2 s: the borrower gives the share back
    _setup(workload, "default", 50)
    _setup(second_workload, "default", 50)
    a = workload.start("ctx", "0", "trace", "2000", "0", "4", "4", "50")
    b = second_workload.start("ctx", "0", "spin", "300", "1000", "1.5", "1000000", "trace", "2000", "0", "2", "4", "50")
    out_b, err_b = b.communicate(timeout=60)
    words = out_b.split("spin ")[1].split()
    assert words[0] == "0", err_b
    light_start, light_end = float(words[1]), float(words[2])
    trace_b = _parse_trace(out_b)
    trace_a = _trace(a)
    lent = _share_between(trace_a, light_start + 0.5, light_end)
    heavy_end = trace_b[-1][0]
    back_a = _share_between(trace_a, light_end + 0.5, heavy_end)
    back_b = _share_between(trace_b, light_end + 0.5, heavy_end)
    early_b = _share_between(trace_b, light_end + 0.1, light_end + 0.3)
    print(f"lend-c-early: lender 0.1-0.3 s after turning GPU-bound: {early_b:.1f} %")
    print(f"lend-c: borrower {lent:.1f} % while the neighbour is light; from 0.5 s after it turns GPU-bound "
          f"{back_a:.1f} + {back_b:.1f} %")
    assert lent >= 58, (lent, back_a, back_b)  # borrowing while the neighbour is light (~64, see above)
    assert abs(back_a - 50) <= 8 and abs(back_b - 50) <= 8, (lent, back_a, back_b)  # the guarantee is back
    assert early_b >= 42, (early_b, lent, back_a, back_b)  # and already 0.1-0.3 s after the change


def _parse_trace(out: str) -> list[tuple[float, float]]:
    words = out.split("trace ")[1].split()
    assert words[0] == "0", out
    vals = [float(x) for x in words[1:]]
    return list(zip(vals[0::2], vals[1::2], strict=True))


def _forge(board_path, stop: threading.Event, limit: int, frac_bp: int, frac_age_ns: int) -> None:
    """Keeps a forged lender on the fake GPU's board entry: its limit, its published fraction and its age."""
    def fill(g, slot: int, now: int) -> None:
        g.user_limit[slot] = limit
        g.user_frac_bp[slot] = frac_bp
        g.user_frac_ns[slot] = now - frac_age_ns
        g.user_held_ns[slot] = 0

    forge_board_user(board_path, stop, fill)


@pytest.mark.fake_timing
@pytest.mark.parametrize(("limit", "frac_bp", "age_ns", "record", "lends"),
                         [(0, 0, 0, True, False), (50, -500, 0, True, False), (50, 0, 3000 * MS, True, False),
                          (60, 0, 0, True, False), (50, 0, 0, False, False), (50, 0, 0, True, True)],
                         ids=["limit-0", "usage-minus-5", "stale", "over-committed", "board-only", "well-formed"])
def test_forged_board_entry_lends_nothing(workload: Workload, toolchain: Toolchain, limit: int, frac_bp: int,
                                          age_ns: int, record: bool, lends: bool) -> None:
    # a forged neighbour keeps the tenant shared (capped) under default. Out of range, stale, or limits adding
    # up to more than the GPU: the tenant stays at its own limit. An entry only on the board (no kernel record
    # lock in its lane, board v7) lends nothing. A well-formed entry with a record (the control, showing the test
    # can see lending) hands out only what no container is guaranteed: 100 - 50 - 50 = nothing of anyone's
    _setup(workload, "default", 50)
    workload.run("ctx", "0", "launch", "kernel", "1", "1000")  # creates the board and the GPU's entry
    board = workload.tmp.parent / "board"
    stop = threading.Event()
    t = threading.Thread(target=_forge, args=(board, stop, limit, frac_bp, age_ns))
    t.start()
    pack = board_records.packer(ctypes.CDLL(str(toolchain.lib)))
    rec = pack(max(limit, 1), 0, max(frac_bp, 0), max(frac_bp, 0), 0)
    h = threading.Thread(target=board_records.hold,
                         args=(board, board_records.lane(0, board_records.USERS - 1, 0), rec, stop))
    if record:
        h.start()
    try:
        time.sleep(0.05)
        share, _, _ = _spin(workload.start("ctx", "0", "spin", "2000", "0", "2", "4"))
    finally:
        stop.set()
        t.join()
        if record:
            h.join()
    print(f"lend-d: forged entry limit {limit}, usage {frac_bp / 100:g} %, age {age_ns / 1e9:g} s, "
          f"record {record}: {share:.1f} %")
    if lends:
        assert share >= 70, share
    else:
        assert share <= 58, share


def _watch_entry(board_path: Path, stop: threading.Event, rows: list[tuple[int, int, int]]) -> None:
    """Collects (time written, charged fraction, queued share) of the board's one user entry every ~1 ms."""
    while not stop.is_set() and (not board_path.exists() or board_path.stat().st_size < region.BOARD_SIZE):
        time.sleep(0.001)  # created and sized by the tenant's first launch
    if stop.is_set():
        return
    with open(board_path, "rb") as f, mmap.mmap(f.fileno(), region.BOARD_SIZE, access=mmap.ACCESS_READ) as mem:
        board = region.ffi.cast("struct hami_board *", region.ffi.from_buffer(mem))
        g = board.gpu[0]
        while not stop.is_set():
            for i in range(region.CONST["HAMI_BOARD_USERS"]):
                if g.user_id[i] and g.user_frac_ns[i] and (not rows or rows[-1][0] != g.user_frac_ns[i]):
                    rows.append((g.user_frac_ns[i], g.user_frac_bp[i], g.user_queued_bp[i]))
            time.sleep(0.001)
        del g, board


def _back_from_idle_rows(workload: Workload) -> list[tuple[int, int, int]]:
    """_watch_entry's rows of a 70 % tenant under force: 0.3 s GPU-bound, 0.8 s idle, 0.3 s GPU-bound again."""
    _setup(workload, "force", 70)
    stop, rows = threading.Event(), []
    t = threading.Thread(target=_watch_entry, args=(workload.tmp.parent / "board", stop, rows))
    t.start()
    try:
        _spin(workload.start("ctx", "0", "spin", "2000", "0", "0.3", "4", "sleep", "800",
                             "spin", "2000", "0", "0.3", "4"))
    finally:
        stop.set()
        t.join()
    return rows


@pytest.mark.fake_timing
def test_tenant_back_from_idle_publishes_its_limit_not_its_idle_average(workload: Workload) -> None:
    # issue 18 (the H200 policy timeline: B warmed up, waited ~15 s for its start, then ran; A stayed uncapped for
    # ~2 s of it): a measured tenant that comes back after going idle must not publish the average of its idle
    # gap (~0 charged, ~0 queued: its whole share lent the moment it returns) but start again from its limit, as
    # a new measured spell does. Read off its own board entry: the figures of its first 40 ms back
    rows = _back_from_idle_rows(workload)
    gaps = [k for k in range(1, len(rows)) if rows[k][0] - rows[k - 1][0] > 500 * MS]
    assert len(gaps) == 1, [(r[0] - rows[0][0]) / 1e6 for r in rows][:50]
    back = rows[gaps[0]][0]
    first = [r for r in rows[gaps[0]:] if r[0] - back <= 40 * MS]
    print(f"lend-g: back from 0.8 s idle, first 40 ms: charged {[r[1] for r in first]}, queued "
          f"{[r[2] for r in first]} (1/100 %)")
    assert first, rows[gaps[0] - 2:gaps[0] + 3]
    assert min(r[1] for r in first) >= 6500, first  # from its 70 % limit (before: 0.05 %, the idle gap's average)
    assert min(r[2] for r in first) >= 9000, first  # contending until measured otherwise (before: ~5 %)


def test_tenant_back_from_idle_first_publishes_its_limit(workload: Workload) -> None:
    # CI's guard (host-independent): the case above judged by the first entry seen after the idle gap (the
    # longest gap between the entry's writes: the 0.8 s sleep, which a slow host only lengthens), with no window
    # of wall time. Now it is the limit, 70 % charged and 100 % queued; before (a7401b3^) the idle gap's average
    # (0.5-0.7 % charged, 0.3-0.6 % queued here), rising ~0.8 point a ms: a watcher 50 ms late still sees < 50 %.
    rows = _back_from_idle_rows(workload)
    assert len(rows) >= 3, rows
    k = max(range(1, len(rows)), key=lambda i: rows[i][0] - rows[i - 1][0])
    print(f"lend back from idle: gap {(rows[k][0] - rows[k - 1][0]) / 1e6:.0f} ms, first entry back: charged "
          f"{rows[k][1]}, queued {rows[k][2]} (1/100 %)")
    assert rows[k][0] - rows[k - 1][0] > 500 * MS, rows[k - 2:k + 3]
    assert rows[k][1] >= 5000 and rows[k][2] >= 5000, rows[k - 2:k + 3]


def _return_timeline(a: Workload, b: Workload) -> tuple[float, float, float]:
    """One policy timeline: A (traced) alone; B runs 0.4 s beside it, idles, comes back at ~2 s for 2 s and exits.
    Returns A's highest 100 ms share in B's first 0.1-0.3 s back, and seconds to A capped (<= 35 %) after B's
    return and to A released (>= 90 % of its share alone) after B's exit."""
    pa = a.start("ctx", "0", "trace", *GPU_BOUND[1:3], "5", GPU_BOUND[4], "50")
    pb = b.start("ctx", "0", *GPU_BOUND[:3], "0.4", GPU_BOUND[4], "sleep", "1600", *GPU_BOUND[:3], "2", GPU_BOUND[4])
    out, err = pb.communicate(timeout=60)
    words = out.split("spin ")[-1].split()
    assert words[0] == "0", err
    back, gone = float(words[1]), float(words[2])
    trace = _trace(pa)
    win = [(tb, 100 * (gb - ga) / (tb - ta)) for (ta, ga), (tb, gb) in zip(trace, trace[2:], strict=False)]
    alone = statistics.median(v for t, v in win if back - 1.0 <= t <= back)
    spike = max(v for t, v in win if back + 0.1 <= t <= back + 0.3)
    cap = next((t - back for t, v in win if t >= back + 0.1 and v <= 35), 9.0)
    rel = next((t - gone for t, v in win if t >= gone + 0.1 and v >= 0.9 * alone), 9.0)
    return spike, cap, rel


@pytest.mark.fake_timing
def test_default_policy_caps_a_returning_neighbours_borrower_at_once(workload: Workload,
                                                                     second_workload: Workload) -> None:
    # issue 18 (the H200 policy timeline): A (30 %) alone; B (70 %) warms up beside it, idles, then returns. A is
    # capped and released within 1 s (medians of 3; the fake gives ~0.1-0.3 s), and B's first figures back lend
    # nothing: before, B published its idle gap's average (~0 % used) and A had ~49 % of the GPU in a 100 ms
    # window of B's first 300 ms back (50 % in each of 3 runs on main 635e4b1; with the fix 30-44 %, median 30;
    # docs/results/2026-12-05-fake-policy-latency.md; a local CI run on 2026-12-05 had a median of 43.1: 30.0, 43.1,
    # 44.6), so the bound sits between the fix's highest and main's lowest
    _setup(workload, "default", 30)
    _setup(second_workload, "default", 70)
    runs = [_return_timeline(workload, second_workload) for _ in range(3)]
    spike, cap, rel = (statistics.median(r[k] for r in runs) for k in range(3))
    print(f"lend-h: returning neighbour, medians of 3: A's spike {spike:.1f} %, capped after {cap:.2f} s, released "
          f"after {rel:.2f} s ({runs})")
    assert cap <= 1.0 and rel <= 1.0, runs
    assert spike <= 46, runs
