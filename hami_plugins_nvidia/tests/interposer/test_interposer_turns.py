"""HAMI_SM_TURNS (csrc/turns.c, issue 18; on unless it is 0): capped tenants that are all GPU-bound take turns instead
of time-slicing.

Judged by what does not depend on the host's speed: the windows' arithmetic; the knob's refusals; the fake GPU's
context switches (it counts the GPU time spent switching into each process: a pair that time-slices pays one on
every slice, a pair that takes turns two per 100 ms period) and the library's own counts of holds by turns (its
launch stats line). Shares and throughput are measured by bench/turns.py (docs/results/2026-12-06-fake-turns.md)."""

from __future__ import annotations

import ctypes
import json
import re
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import board_records
from .conftest import REAL_DRIVER, Toolchain, Workload, forge_board_user, region
from .guard_runs import SLICED, finish_spin, running

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model")

MS = 1_000_000
PERIOD = 100 * MS
GPU_BOUND = ("spin", "2000", "0", "2", "4")  # 2 ms kernels, a sync every 4: demand ~100 %
LAUNCH_BOUND = ("spin", "100", "300", "2", "1")  # 100 us kernels, a sync after each, 300 us of host time: ~25 %
# the H100's training loop's shape (record 7: ~750 launches a step, one sync, the host far ahead of its GPU): 60 us
# kernels launched back to back, a sync every 750; alone it keeps the fake GPU ~99.8 % busy
RING_BOUND = ("spin", "60", "0", "2", "750")
# closer to the H100's training pair (record 8 stage 12; bench/turns.py case "train"): a step of 150 kernels of 400 us
# then 600 of 20 us (the library's per-mark average misjudges the queued work), a sync, 2 ms of host time
TRAIN = ("spin", "20", "0", "2", "750")
TRAIN_ENV = {"DRIVER_SPIN_MIX": "400:150:600", "DRIVER_SPIN_STEP_GAP_US": "2000"}
# the H100's CUDA-graphs program (record 9 stage 15) scaled up (bench/turns.py case "graphs-long"): a graph of 2 ms on
# each of 2 streams, a sync after every step, 1.2 ms of host time (below turns' 1.5 ms fill gap); alone the fake GPU
# ~74 % busy, little of it the host's speed (the 400 us graphs' busy fraction fell from 86 to 35-80 % on a loaded VM)
# 2 ms graphs on 2 streams, 600 us of host time a step: ~80-85 % busy alone, as the H100's CUDA-graphs program (88 %)
# and clear of turns' stay bound in its own windows (TURN_BOUND_BP, 70 %); with 1200 us (~74 %) it read 78-84 % there
# under load, at the bound's edge once both rules were merged (turnsgraphs, turnsbound)
GRAPHS = ("graphs", "2000", "2", "600", "2")
TURN = region.CONST["HAMI_BREC_TURN"]
# the small-batch inference loop of the conformance behaviour isolation/work-conserving-sharing (bench/turns.py case
# "mixed", bench/fake_sharing_cases.py lbpair): 10 us kernels, 12 us of host time after each (busy-waited), a sync per
# 195: launch-bound, ~60-75 % busy alone on the fake natively, less under the library
INFER = ("spin", "10", "12", "3", "195")
INFER_ENV = {"DRIVER_BUSY_GAP": "1", "FAKE_CUDA_SYNC_POLL_US": "10"}
# a CUDA-graphs-like program (H100 record 9: 88 % busy alone): 1 ms kernels, a sync and 150 us of host time after each
GRAPHS_LIKE = ("spin", "2000", "100", "2", "2")


def _owner(lib: ctypes.CDLL, limits: list[int], phase: int, period: int = PERIOD) -> tuple[int, int]:
    fn = lib.hami_vgpu_turn_owner
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                   ctypes.POINTER(ctypes.c_int64)]
    end = ctypes.c_int64(-1)
    arr = (ctypes.c_int * max(1, len(limits)))(*limits)
    return fn(arr, len(limits), period, phase, ctypes.byref(end)), end.value


def test_windows_follow_the_limits_in_board_order(toolchain: Toolchain) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    assert _owner(lib, [30, 70], 0) == (0, 30 * MS)
    assert _owner(lib, [30, 70], 30 * MS - 1) == (0, 30 * MS)
    assert _owner(lib, [30, 70], 30 * MS) == (1, PERIOD)
    assert _owner(lib, [50, 50], 50 * MS) == (1, PERIOD)
    assert _owner(lib, [20, 30], 39 * MS) == (0, 40 * MS)  # limits under 100 %: the windows fill the period
    # no turns: one tenant, limits out of range or over-committed (a forged board), a phase outside the period
    for limits, phase in (([100], 0), ([30, 71], 0), ([0, 50], 0), ([101, 1], 0), ([-5, 50], 0), ([30, 70], -1),
                          ([30, 70], PERIOD), ([], 0)):
        assert _owner(lib, limits, phase)[0] == -1, (limits, phase)
    assert _owner(lib, [30, 70], 0, period=0)[0] == -1


@settings(max_examples=200, deadline=None)
@given(limits=st.lists(st.integers(1, 60), min_size=2, max_size=16).filter(lambda x: sum(x) <= 100),
       phase=st.integers(0, PERIOD - 1))
def test_every_window_is_at_least_its_limit_and_they_tile_the_period(toolchain: Toolchain, limits: list[int],
                                                                    phase: int) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    w, end = _owner(lib, limits, phase)
    assert 0 <= w < len(limits) and phase < end <= PERIOD
    # the window's start is the previous one's end: a window is never shorter than its owner's limit share
    start = _start_of(lib, limits, w)
    assert start <= phase and end - start >= PERIOD * limits[w] // 100 - 1


def _start_of(lib: ctypes.CDLL, limits: list[int], w: int) -> int:
    """The start of window w: the end of window w - 1 (walked from the period's start)."""
    t = 0
    for _ in range(w):
        t = _owner(lib, limits, t)[1]
    return t


def _stats(stderr: str) -> dict[str, float]:
    m = re.search(r"; turns on ([\d.]+) ms, held (\d+) times, ([\d.]+) ms, longest ([\d.]+) ms, (\d+) cut", stderr)
    assert m, stderr
    out = {"on_ms": float(m.group(1)), "holds": int(m.group(2)), "held_ms": float(m.group(3)),
           "longest_ms": float(m.group(4)), "cuts": int(m.group(5))}
    # since turnsbound: the busy share in its own windows (0 = never measured) and the times it was judged out
    j = re.search(r", busy in its windows ([\d.]+) %, judged out (\d+)", stderr)
    if j:
        out.update(window_busy=float(j.group(1)), outs=int(j.group(2)))
    return out


def _spin(proc) -> tuple[float, float, str]:
    """(share of the fake GPU %, switch time into it %, stderr) of a finished spin."""
    s = finish_spin(proc)
    return s.share_pct, s.switch_pct, s.err


def _setup(w: Workload, policy: str, limit: int, turns: str | None) -> None:
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY=policy, HAMI_SM_PERIOD_MS="100",
                 CUDA_DEVICE_SM_LIMIT=str(limit), HAMI_LAUNCH_STATS="1", **SLICED)
    if turns is not None:
        w.env["HAMI_SM_TURNS"] = turns


def _pair(a: Workload, b: Workload, prog: tuple[str, ...]) -> list[tuple[float, float, str]]:
    procs = [a.start("ctx", "0", *prog), b.start("ctx", "0", *prog)]
    return [_spin(p) for p in procs]


@pytest.mark.parametrize("bad", ["2", "yes", "true", "off", "false", "-1", "0 ", " ", "00", "0x"])
def test_a_bad_knob_value_is_named_in_one_line_and_the_default_kept(workload: Workload, bad: str) -> None:
    # the default is on: a value that is neither 1 nor 0 (a misspelt "off" among them) is named and turns stay on
    _setup(workload, "force", 50, bad)
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "HAMI_SM_TURNS" in ln]
    assert len(lines) == 1 and f'"{bad}"' in lines[0] and "expected 1 or 0" in lines[0], r.stderr
    assert "turns are on" in lines[0], r.stderr
    assert "; turns on " in r.stderr, r.stderr  # on: the stats line carries the turns figures


@pytest.mark.parametrize("bad", ["299", "2501", "0", "-1", "1.5", "abc"])
def test_a_bad_fill_gap_is_named_in_one_line_and_the_default_kept(workload: Workload, bad: str) -> None:
    # HAMI_SM_TURN_GAP_US (turnloss, an A/B knob): bounded above the owner's own mark refreshes (300 us) and under
    # TURN_IDLE_NS (2500 us); a value outside, or not an integer, is named once and 1500 (TURN_GAP_NS) kept
    _setup(workload, "force", 50, None)
    workload.env["HAMI_SM_TURN_GAP_US"] = bad
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "HAMI_SM_TURN_GAP_US" in ln]
    assert len(lines) == 1 and f'"{bad}"' in lines[0] and "[300, 2500]" in lines[0] and "using 1500" in lines[0], r.stderr


@pytest.mark.parametrize("good", ["300", "1500", "2500"])
def test_a_fill_gap_in_its_bounds_is_taken_silently(workload: Workload, good: str) -> None:
    _setup(workload, "force", 50, None)
    workload.env["HAMI_SM_TURN_GAP_US"] = good
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0 and "HAMI_SM_TURN_GAP_US" not in r.stderr, r.stderr


@pytest.mark.parametrize("bad", ["0", "9", "-1", "2.5", "abc"])
def test_a_bad_misses_value_is_named_in_one_line_and_the_default_kept(workload: Workload, bad: str) -> None:
    # HAMI_SM_TURN_MISSES (trainloss, an A/B knob): the stay test's misses in a row that judge a tenant out, 1..8; a
    # value outside, or not an integer, is named once and 2 (TURN_MISSES) kept
    _setup(workload, "force", 50, None)
    workload.env["HAMI_SM_TURN_MISSES"] = bad
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "HAMI_SM_TURN_MISSES" in ln]
    assert len(lines) == 1 and f'"{bad}"' in lines[0] and "[1, 8]" in lines[0] and "using 2" in lines[0], r.stderr


@pytest.mark.parametrize("good", ["1", "2", "3", "8"])
def test_a_misses_value_in_its_bounds_is_taken_silently(workload: Workload, good: str) -> None:
    _setup(workload, "force", 50, None)
    workload.env["HAMI_SM_TURN_MISSES"] = good
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0 and "HAMI_SM_TURN_MISSES" not in r.stderr, r.stderr


@pytest.mark.parametrize(("value", "on"), [("1", True), ("0", False), (None, True), ("", True)],
                         ids=["1", "0", "unset", "empty"])
def test_turns_are_on_unless_the_knob_is_0(workload: Workload, value: str | None, on: bool) -> None:
    _setup(workload, "force", 50, value)
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    assert ("; turns on " in r.stderr) == on and "ignoring HAMI_SM_TURNS" not in r.stderr, r.stderr


@pytest.mark.parametrize("limits", [(50, 50), (30, 70)])
def test_a_contended_pair_takes_turns_and_stops_time_slicing(workload: Workload, second_workload: Workload,
                                                             limits: tuple[int, int]) -> None:
    # Knob off (HAMI_SM_TURNS=0), both GPU-bound tenants have work queued most of the time: the fake GPU switches
    # between them on (nearly) every 2 ms slice, 200 us each (~10 % of the GPU). Knob unset (the default: on), each
    # runs in its own window: a switch at the windows' edges (two per 100 ms) and where a window's owner had nothing
    # queued. Counted in the fake's switch time (host-independent: a count of switches times 200 us), with a wide
    # margin (measured ~10x less).
    switches = {}
    for turns in ("0", None):
        for w, lim in zip((workload, second_workload), limits, strict=True):
            w.env.clear()
            _setup(w, "force", lim, turns)
        res = _pair(workload, second_workload, GPU_BOUND)
        switches[turns or "unset"] = sum(sw for _, sw, _ in res)
        if turns is None:
            st_ = [_stats(err) for _, _, err in res]
            assert all(s["holds"] > 0 and s["on_ms"] > 500 and s["cuts"] == 0 for s in st_), st_
            assert all(s["longest_ms"] < 200 for s in st_), st_
    print(f"turns {limits}: switch time off {switches['0']:.2f} %, on (unset) {switches['unset']:.2f} %")
    assert switches["0"] > 4, switches  # the pair did time-slice with the knob off
    assert switches["unset"] < 0.4 * switches["0"], switches


@pytest.mark.fake_timing  # an estimate from the host's own times: a loaded host's preemptions read as host time
def test_a_loop_waiting_on_a_full_mark_ring_counts_as_gpu_bound(workload: Workload, second_workload: Workload) -> None:
    # Record 7 (H100, stage 12): the training pairs' demand alone read 33-68 %, near their charged shares, so turns were
    # on 0.2-0.7 s of each run. Time-slicing, the loop runs ~127 launches ahead of its GPU: each launch waits in the
    # library for a free slot in its full mark ring (push_mark), for its own work, and that wait was taken for host
    # time. Turns' estimate (lending.c turn_bp) counts it as held. Only A takes part (B says HAMI_SM_TURNS=0: one
    # participant takes no turns), so the pair time-slices and no hold by turns raises A's estimate. The margin is wide: the shape keeps the fake
    # GPU ~99.8 % busy alone; paired, A's estimate reads 92-98 % with the ring waits counted, 55-76 % without (main).
    _setup(workload, "force", 50, "1")
    _setup(second_workload, "force", 50, "0")
    for w in (workload, second_workload):  # one mark a launch: deep runs (the default since session 18) rarely fill
        w.env["HAMI_SM_DEEP_RUN"] = "1"    # the ring, and this guards what a full ring's waits count for
    (share, _, err), _ = _pair(workload, second_workload, RING_BOUND)
    m = re.search(r"demand alone ([\d.]+) %.*; turns on ([\d.]+) ms.*, demand for turns ([\d.]+) %, full-ring waits "
                  r"([\d.]+) ms", err)
    assert m, err
    alone, on_ms, turns, full_ms = (float(x) for x in m.groups())
    print(f"ring-bound 50+50, time-slicing: share {share:.1f} %, demand alone {alone} %, for turns {turns} %, "
          f"full-ring waits {full_ms} ms")
    assert on_ms == 0, err  # one participant: no turns
    assert full_ms > 200, err  # the shape: it waited on its full ring a tenth of its 2 s and more
    # GPU-bound: well above turns' entry condition (>= its limit, 50), and above what the estimate without the ring
    # waits read in the same runs (demand alone 55-76 %; turns' 92-98 %)
    assert turns >= 85, err


@pytest.mark.fake_timing
@pytest.mark.parametrize("limits", [(50, 50), (30, 70)])
def test_a_ring_bound_pair_taking_turns_keeps_the_gpu_busy(workload: Workload, second_workload: Workload,
                                                         limits: tuple[int, int]) -> None:
    # In its own window an owner holds back once its queued work would run past the window's end. Counted with the
    # completed spans whose charge waits (deferred_charge, ~5 ms: inflight_ns), an owner that keeps ~127 launches
    # queued stopped ~5 ms early in every window while its neighbour stayed held: taking turns this pair kept
    # 89.7-91.1 % of the fake GPU, no better than time-slicing (89.3-92.5 %, native 90.8 %); with the queued work
    # only, ~97 %. A share of the fake GPU: host-speed dependent (fake_timing), the bound well below what it measured.
    for w, lim in zip((workload, second_workload), limits, strict=True):
        _setup(w, "force", lim, "1")
    res = _pair(workload, second_workload, RING_BOUND)
    useful = sum(share for share, _, _ in res)
    st_ = [_stats(err) for _, _, err in res]
    print(f"ring-bound {limits} taking turns: shares {[round(s, 1) for s, _, _ in res]}, useful {useful:.1f} %, {st_}")
    assert all(s["on_ms"] > 1000 and s["cuts"] == 0 for s in st_), st_  # it took turns most of its 2 s
    assert useful >= 94, (useful, [err for _, _, err in res])


def test_a_training_like_pair_taking_turns_hands_over_without_time_slicing(workload: Workload,
                                                                          second_workload: Workload) -> None:
    # Record 8 (H100, stage 12): with turns the training pairs kept 88-92 % of the GPU, no better than time-slicing.
    # On the fake's training-like shape (TRAIN) the owner's end-of-window test misjudged its queue (long kernels
    # after short ones) and it spilled into the next window, where the new owner's launches time-sliced with it:
    # turns cut the 50 + 50 pair's switch time only to 0.64-0.75 of time-slicing's (main 0ed0a95, interleaved runs of
    # docs/results/2026-12-06-fake-turns-fill.md); this tree 0.39-0.52. A new owner now waits for the spill to drain
    # (at most half its window). Switch time: a count of the fake's switches times 200 us, not a host-speed figure.
    # (30 + 70 gains less: 0.82 before, 0.57 now, medians: too close to a bound.) Every hold by turns stays under
    # 200 ms, none cut (record 8 read "longest 245.6 ms": a credit wait counted into the hold).
    limits = (50, 50)
    switches = {}
    for turns in ("0", "1"):
        for w, lim in zip((workload, second_workload), limits, strict=True):
            w.env.clear()
            _setup(w, "default", lim, turns)
            w.env.update(TRAIN_ENV)
        res = _pair(workload, second_workload, TRAIN)
        switches[turns] = sum(sw for _, sw, _ in res)
        if turns == "1":
            st_ = [_stats(err) for _, _, err in res]
            assert all(s["on_ms"] > 1000 and s["cuts"] == 0 and s["longest_ms"] < 200 for s in st_), st_
    print(f"training-like {limits}: switch time off {switches['0']:.2f} %, on {switches['1']:.2f} %")
    assert switches["0"] > 4, switches  # the pair did time-slice with the knob off
    assert switches["1"] < 0.6 * switches["0"], switches


def test_a_shorter_fill_gap_fills_an_owners_short_host_gap(workload: Workload, second_workload: Workload) -> None:
    # turnloss: a step's host gap after its sync (here 0.8 ms) shorter than the fill gap (HAMI_SM_TURN_GAP_US, default
    # 1.5 ms) is never filled: the neighbour stays held. At 300 us the neighbour fills it, and each fill costs the
    # fake GPU a switch in and one back (200 us each): the pair's switch time rises (fake, bench/turns.py train-g08,
    # docs/results/2026-12-07-fake-turnloss.md: 0.5-1.0 % at the default, 2.7-3.7 % at 500 us; the useful time fell
    # 1.4-2.7 points, so the default stays). Switch time: a count of switches times 200 us, not a host-speed figure.
    switches = {}
    for gap in ("1500", "300"):
        for w, lim in zip((workload, second_workload), (50, 50), strict=True):
            w.env.clear()
            _setup(w, "default", lim, "1")
            w.env.update({**TRAIN_ENV, "DRIVER_SPIN_STEP_GAP_US": "800", "HAMI_SM_TURN_GAP_US": gap})
        res = _pair(workload, second_workload, TRAIN)
        switches[gap] = sum(sw for _, sw, _ in res)
        st_ = [_stats(err) for _, _, err in res]
        assert all(s["on_ms"] > 1000 and s["cuts"] == 0 for s in st_), st_  # both arms take turns
    print(f"training-like 50 + 50, 0.8 ms host gap: switch time at 1500 us {switches['1500']:.2f} %, "
          f"at 300 us {switches['300']:.2f} %")
    assert switches["300"] > 1.5 * switches["1500"] + 0.5, switches


@pytest.mark.fake_timing
@pytest.mark.parametrize("limits", [(50, 50), (30, 70)])
def test_a_training_like_pair_taking_turns_keeps_the_gpu_busy(workload: Workload, second_workload: Workload,
                                                              limits: tuple[int, int]) -> None:
    # The H100's second loss (record 8): an owner waiting for credit with nothing in flight, or in its host's step
    # work after a sync, still held its neighbour, and the GPU idled in its window. Now a neighbour with credit fills
    # it (a short queue), and a new owner waits for the spill. Fake, TRAIN shape, 2 s, default policy, interleaved
    # (docs/results/2026-12-06-fake-turns-fill.md): main 0ed0a95 kept 89.9-94.0 % of the fake GPU with turns (medians
    # 91.0-92.5), this tree 92.0-94.7 % (medians 92.6-93.8): a floor, the A/B is the record's. Each tenant at most 2
    # points above its limit and within 8 below (the 70 % tenant of 30 + 70 reads 62.5-66.2 %, as with turns off:
    # 63.2-64.7 %, the throttle's shortfall on this shape, not turns'). Host-speed dependent (fake_timing).
    for w, lim in zip((workload, second_workload), limits, strict=True):
        _setup(w, "default", lim, "1")
        w.env.update(TRAIN_ENV)
    res = _pair(workload, second_workload, TRAIN)
    shares = [share for share, _, _ in res]
    print(f"training-like {limits} taking turns: shares {[round(x, 1) for x in shares]}, useful {sum(shares):.1f} %")
    assert sum(shares) >= 91.5, (shares, [err for _, _, err in res])
    assert all(x <= lim + 2 for x, lim in zip(shares, limits, strict=True)), shares  # limits hold
    assert all(x >= lim - 8 for x, lim in zip(shares, limits, strict=True)), shares


def test_a_launch_bound_tenant_beside_a_gpu_bound_one_is_judged_out(workload: Workload,
                                                                    second_workload: Workload) -> None:
    # H100 record 9 stage 16: the conformance pair (training loop + small-batch inference loop, 50 + 50, default) with
    # turns on charged the inference tenant 36.1 % (target 45): its demand estimate (50.4 %) reached its limit, so it
    # took part, and the stay test (half its limit) kept it in, though in its window it left most of the GPU idle and
    # outside it it was held. Now a tenant taking turns is judged by its busy share inside its own windows (turns.c
    # turn_judged): below TURN_BOUND_BP it leaves and backs off (1 s, then 2 s, ...). At 30 % the inference loop's
    # estimate (30-50 % paired) is always at least its limit, so it does take part first: before the change it took
    # turns nearly all of its 3 s (stayed in), now it is judged out within a period or two of its windows each time
    # it gets in. Turns on is the library's own count (the stats line), not a host-speed figure; the bound is wide.
    _setup(workload, "default", 70, "1")
    _setup(second_workload, "default", 30, "1")
    second_workload.env.update(INFER_ENV)
    procs = [workload.start("ctx", "0", "spin", "2000", "0", "3", "4"), second_workload.start("ctx", "0", *INFER)]
    (_, _, err_a), (share_b, _, err_b) = [_spin(p) for p in procs]
    a, b = _stats(err_a), _stats(err_b)
    print(f"GPU-bound 70 + inference 30: A {a}, B {b}, B's share {share_b:.1f} %")
    assert a["cuts"] == 0 and b["cuts"] == 0, (a, b)
    # at most 60 % of its 3 s (before: 2.36-2.39 s, its share 14-16 %; now 0.46-0.66 s, under load once 1.2 s)
    assert b["on_ms"] < 1800, (b, err_b)
    # it got in and was judged out, or it left by the stay test before a judgement, or it never got in: once the
    # GPU-bound tenant takes part first, its limit counts in the sum a newcomer must fill (turns.c turn_wanted: 2 x
    # ~40 % < 30 + 70 + 10). Which enters first is a race of their estimates: since trainfer (no resume credit while
    # shared under default) both orders come on the fake (8 runs: never on in 7, judged out in 1); the trainfer
    # bench pair at 50 + 50 still shows the judge (1-3 outs a run). In for longer than a few windows' judging: out.
    if b["on_ms"] >= 600:
        assert b.get("outs", 0) >= 1, b


@pytest.mark.parametrize("limits", [(50, 50), (30, 70)])
def test_a_graphs_like_pair_still_takes_turns(workload: Workload, second_workload: Workload,
                                              limits: tuple[int, int]) -> None:
    # The programs that gained by taking turns on the H100 were busy 87-100 % alone (CUDA graphs 88, JAX 87 %): a
    # tenant ~85-90 % busy in its windows stays above TURN_BOUND_BP (75 %) and keeps taking turns. 1 ms kernels, a
    # sync and 150 us of host time (busy-waited) after each: the library's own counts (turns on, judged out).
    for w, lim in zip((workload, second_workload), limits, strict=True):
        _setup(w, "force", lim, "1")
        w.env["DRIVER_BUSY_GAP"] = "1"
    res = _pair(workload, second_workload, GRAPHS_LIKE)
    st_ = [_stats(err) for _, _, err in res]
    print(f"graphs-like {limits}: {st_}")
    assert all(s["on_ms"] > 1000 and s["cuts"] == 0 and s.get("outs", 0) == 0 for s in st_), st_


def test_a_launch_bound_pair_never_takes_turns(workload: Workload, second_workload: Workload) -> None:
    # two programs ~25 % busy alone fit the GPU together: not contended, so they keep overlapping (turn-taking once
    # cost an inference pair 61 % of its throughput); the library counts no hold and no time with turns on
    for w in (workload, second_workload):
        _setup(w, "default", 50, "1")
    res = _pair(workload, second_workload, LAUNCH_BOUND)
    st_ = [_stats(err) for _, _, err in res]
    assert all(s["holds"] == 0 and s["on_ms"] == 0 for s in st_), st_


@pytest.mark.parametrize("turn_bit", [True, False], ids=["taking-turns", "not-taking-turns"])
def test_a_neighbour_taking_turns_counts_at_least_its_limit(workload: Workload, toolchain: Toolchain,
                                                            turn_bit: bool) -> None:
    # Record 7 (H100): the 70 % training tenant published a demand alone of 56-68 % (the older estimate, without its
    # full-ring waits) and its 30 % neighbour, 33-50 % itself, read the GPU as not contended (< 100 %), so it did not
    # take part. A neighbour that takes turns said its turns estimate is at least its limit: it counts at least that.
    # Here a neighbour's record (80 %, demand alone 30 %) with or without the turn bit, its marks kept fresh, beside a
    # tenant at 20 % whose turns estimate reads ~35-40 % (1 ms kernels, a sync and 0.5 ms of host time after each):
    # with the bit 35 + 80 >= 100, the tenant takes part and the two take turns; without it 35 + 30 < 100, no turns
    # (before: none either way). The verdict holds for any estimate of the tenant's from 20 to 70 %.
    _setup(workload, "force", 20, "1")
    workload.env["DRIVER_BUSY_GAP"] = "1"
    workload.run("ctx", "0", "launch", "kernel", "1", "1000")  # creates the board and the GPU's entry
    board = workload.tmp.parent / "board"
    pack = board_records.packer(ctypes.CDLL(str(toolchain.lib)))
    rec = pack(80, 0, 8000, 10000, 3000) + (TURN if turn_bit else 0)
    last_lane = board_records.lane(0, board_records.USERS - 1, 0)  # the forged entry's slot (forge_board_user)
    with running(lambda stop: _forge_turns(board, stop, False),
                 lambda stop: board_records.hold(board, last_lane, rec, stop)):
        time.sleep(0.05)
        share, _, err = _spin(workload.start("ctx", "0", "spin", "1000", "500", "2", "1"))
    s = _stats(err)
    demand = re.search(r"demand for turns ([\d.]+) %", err)
    print(f"neighbour taking turns {turn_bit}: {share:.1f} %, {s}, demand for turns {demand and demand.group(1)}")
    if turn_bit:
        assert s["on_ms"] > 500 and s["cuts"] == 0, s
    else:
        assert s["on_ms"] == 0 and s["holds"] == 0, s


def _forge_turns(board, stop: threading.Event, future: bool) -> None:
    """A forged neighbour on the board entry: active now (or a time 0.9 s ahead, written every 2 ms)."""
    def fill(g, slot: int, now: int) -> None:
        g.user_limit[slot] = 70
        if future:
            g.user_active_ns[slot] = now + 900 * MS

    forge_board_user(board, stop, fill)


@pytest.mark.parametrize(("record", "future", "held"), [(True, False, True), (False, False, False),
                                                         (True, True, False)],
                         ids=["record-and-fresh-marks", "board-only", "marks-in-the-future"])
def test_a_forged_window_cannot_hold_a_tenant_past_200_ms(workload: Workload, toolchain: Toolchain, record: bool,
                                                          future: bool, held: bool) -> None:
    # A forged neighbour taking turns at 70 % beside a GPU-bound tenant at 30 %. With a record lock that says it takes
    # turns (what a live tenant holds) and marks kept fresh, its window holds the tenant, but never for longer than
    # the window (70 ms), nor past 200 ms in any case. An entry only on the board takes no window (records are kernel
    # locks of live processes), and marks written ahead of the clock count as idle (bounded), so neither holds it.
    _setup(workload, "force", 30, "1")
    workload.run("ctx", "0", "launch", "kernel", "1", "1000")  # creates the board and the GPU's entry
    board = workload.tmp.parent / "board"
    pack = board_records.packer(ctypes.CDLL(str(toolchain.lib)))
    rec = pack(70, 0, 7000, 10000, 10000) + TURN  # solo 100 %: the GPU is contended
    last_lane = board_records.lane(0, board_records.USERS - 1, 0)  # the forged entry's slot (forge_board_user)
    jobs = [lambda stop: _forge_turns(board, stop, future)]
    if record:
        jobs.append(lambda stop: board_records.hold(board, last_lane, rec, stop))
    with running(*jobs):
        time.sleep(0.05)
        share, _, err = _spin(workload.start("ctx", "0", *GPU_BOUND))
    s = _stats(err)
    print(f"turns forged record {record} future {future}: {share:.1f} %, {s}")
    assert s["longest_ms"] < 200 and s["cuts"] == 0, s
    if held:
        assert s["holds"] > 0 and s["held_ms"] >= 5 and s["on_ms"] > 500, s  # the control: a window that can hold did
    else:
        # no window of the forged entry holds it (one would be up to 70 ms); with a record taking part, the tenant's own
        # window end may hold it for a fraction of a ms where its queued work would spill past it (CI, once: 0.3 ms)
        assert s["held_ms"] < 5, s


def _turns_tail(stderr: str) -> tuple[float, float, int]:
    """(demand for turns %, first on after ms, times turns went off) of the stats line's turns section."""
    m = re.search(r", demand for turns ([\d.]+) %, full-ring waits [\d.]+ ms, first on after (-?[\d.]+) ms, off (\d+) "
                  r"times", stderr)
    assert m, stderr
    return float(m.group(1)), float(m.group(2)), int(m.group(3))


def test_a_graphs_pair_taking_turns_stays_in_turns(workload: Workload, second_workload: Workload) -> None:
    # H100 record 9 stage 15: taking turns, the graphs and JAX pairs' turns estimates read about their charged shares
    # (graphs 30 + 70: 39.7 and 61.5 %), as a window spent held by the other's turn gave a 0 sample (lending.c
    # turn_bp), near the stay test's edge (the estimate plus the neighbour's limit >= 90 %); JAX was on 2.1-3.0 s of
    # 4 s. On the fake this pair (~74 % busy alone, so in turns ~37 % of the wall: 37 + 50 < 90) went off 6 times each
    # in 2 s and time-sliced between (switch time 3.6-4.0 % summed, load average 4). Weighed by the time it would have
    # run alone, a held window counts for nothing and the estimate reads the program's busy fraction (67-72 %): off
    # 0-1 times (once where the neighbour leaves first), switch time 1.4-1.6 % summed. Judged by counts (the fake's switch time is a count of switches x 200 us).
    for w in (workload, second_workload):
        _setup(w, "default", 50, "1")
    procs = [workload.start("ctx", "0", *GRAPHS), second_workload.start("ctx", "0", *GRAPHS)]
    res = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        words = out.split("graphs ")[1].split()
        assert words[0] == "0", err
        wall = float(words[2]) - float(words[1])
        res.append((100 * float(words[5]) / wall, err))
    tails = [_turns_tail(err) for _, err in res]
    switch = sum(sw for sw, _ in res)
    print(f"graphs 50+50 taking turns: switch time {switch:.2f} %, (demand for turns, first on ms, offs) {tails}")
    for (_, err), (demand, first, offs) in zip(res, tails, strict=True):
        s = _stats(err)
        assert s["holds"] > 0 and s["cuts"] == 0 and s["longest_ms"] < 200, s
        assert 0 <= first < 1000, tails  # turns came on, and soon
        assert offs <= 2, tails
        assert demand >= 55, tails  # its busy fraction alone, not its charged share (~40 %)
        assert s.get("outs") == 0, s  # it fills its own windows: never judged out (turns.c turn_judged)
    assert sum(t[2] for t in tails) <= 3, tails
    assert switch < 3.5, switch  # 0.7-1.6 % unloaded, 2.8 % at load 6 (the offs above are the sharper test)


# the bench's pairs (bench/real_workloads.py): each warms up, then idles until the pair's common start (~0.5-1 s on
# the H100), then measures: here 0.2 s of GRAPHS' steps, 600 ms of sleep, then GRAPHS (its 2 s window)
GRAPHS_AFTER_IDLE = ("graphs", "2000", "2", "600", "0.2", "sleep", "600", *GRAPHS)
# how long after the pair's return its turns are watched for coming back on: past main's climb back (0.2-0.4 s)
BACK_WINDOW_S = 0.5


def _turns_edges(path: str) -> list[tuple[float, bool]]:
    """A tenant's turns' edges (s, on) from its HAMI_SM_TURNS_LOG (turns.c turns_log_edge, read by bench/turns_log.py's
    parser), on CLOCK_MONOTONIC as driver_app's lines."""
    parse_edge = _turns_log_mod().parse_edge
    return [(e["t_ns"] / 1e9, e["turns"] == "on") for ln in Path(path).read_text().splitlines()
            if (e := parse_edge(ln))]


def _off_until_on_s(edges: list[tuple[float, bool]], a: float, b: float) -> float:
    """Seconds turns were off from a (or from their first edge off after a) until they were next on, by b."""
    before = [on for t, on in edges if t < a]
    off_since = None if before and before[-1] else a
    for t, on in edges:
        if a <= t < b and not on and off_since is None:
            off_since = t
        elif a <= t < b and on and off_since is not None:
            return t - off_since
    return 0.0 if off_since is None else b - off_since


def test_a_graphs_pair_back_from_an_idle_stretch_takes_turns_again_at_once(workload: Workload,
                                                                           second_workload: Workload) -> None:
    # H100 record 12: the graphs pairs kept 91.5-92 % of solo taking turns, the JAX pairs 99.3-99.6 %; turns were on
    # ~3.5 s of each 4 s window. A tenant still capped after the ~0.5-1 s wait for its start took that wait as one
    # window of its demand estimate (below the estimate's 1 s restart): turn_bp ~0, out of turns, and ~0.2 s (fake)
    # to climb back over the entry bound, time-slicing meanwhile (the graphs pair's native pair: 59 % of solo on the
    # H100). lending.c now skips such a quiet window for turns (TURN_QUIET_NS). Judged by how long each tenant's turns
    # were off after the pair came back (the later tenant's first step after the sleep) until they were on again, from
    # the turns log's edges. With six CPU spinners beside it: 0-120 ms a tenant with the skip (median 36; 40 pairs),
    # 163-307 ms without it (median 218; the skip turned off locally, 20 pairs, all failing).
    # Until session 29 it judged the exit line's "turns on" over the process's life (main 185-304 ms, the skip 37-67,
    # bound 130), which failed under load for three reasons none of them the return: (1) the life held the idle
    # stretch, counted as on or off by the last update before it (nothing launches, so nothing updates turns), which
    # hung on which tenant went idle first: a tenant whose turns went off a moment before its own sleep (its
    # neighbour idle first) counted all 600 ms as off, as CI's failure reads (off 26 and 647 ms); (2) it held the first run's warm-up, which a
    # loaded VM stretched past the 200 ms run (380-396 ms in 2 of 12 pairs, with the skip or without); (3) it held the
    # stay test's verdicts later in the run, and asked for none: under load the graphs' host time stretches, a tenant
    # read 64-67 % busy in its own windows (< TURN_BOUND_BP) and was judged out, 0.25-1.1 s after the return, with a
    # back-off of ~1 s off. The stay test judging the host's pace is test_a_graphs_pair_taking_turns_stays_in_turns'
    # question, not the return's. The old measure failed 12 and 19 of two batches of 40 pairs with the skip there
    for w in (workload, second_workload):
        _setup(w, "default", 50, "1")
        w.env["HAMI_SM_TURNS_LOG"] = str(w.tmp / "turns")
    procs = [workload.start("ctx", "0", *GRAPHS_AFTER_IDLE), second_workload.start("ctx", "0", *GRAPHS_AFTER_IDLE)]
    backs, edges = [], []
    for w, p in zip((workload, second_workload), procs, strict=True):
        out, err = p.communicate(timeout=60)
        lines = [ln.split() for ln in out.splitlines() if ln.startswith("graphs ")]
        assert len(lines) == 2 and all(ln[1] == "0" for ln in lines), (out, err)
        assert _stats(err)["cuts"] == 0, err
        backs.append(float(lines[1][2]))  # its return: the second run's first step
        edges.append(_turns_edges(f"{w.tmp / 'turns'}.{p.pid}"))
    back = max(backs)  # turns need both tenants
    off = [_off_until_on_s(e, back, back + BACK_WINDOW_S) * 1000 for e in edges]
    print(f"graphs 50+50 back from 600 ms idle (returns {abs(backs[0] - backs[1]) * 1000:.0f} ms apart): turns off "
          f"{[round(x) for x in off]} ms until on again")
    assert all(x < 130 for x in off), off


def test_a_tenant_busy_under_half_the_limits_sum_stays_out_of_turns(workload: Workload,
                                                                   second_workload: Workload) -> None:
    # In turns a tenant gets its window (its limit over the limits' sum) at its own busy fraction. A tenant at 30 %
    # that keeps the GPU ~43 % busy alone (300 us kernels, a sync and 200 us of host time after each) beside a
    # GPU-bound 70 % one got 15.1-15.7 % of the fake GPU time-slicing and 10.9-12.1 % taking turns (its window x its
    # busy fraction). The wall-weighted estimate read ~its window share x its busy fraction while in turns, so the
    # stay test (2 x estimate >= limit) let it out at once; reading its busy fraction (43 %), it stayed in for the
    # whole run. turn_wanted now asks 2 x busy >= the limits' sum (+5 points to enter): it stays out, or leaves soon
    # (2 s runs: turns on 0 ms in 4 of 5, 492 ms once; without the bound 1.96-1.98 s in 3 of 4, 0.63 s once).
    _setup(workload, "default", 30, "1")
    _setup(second_workload, "default", 70, "1")
    procs = [workload.start("ctx", "0", "spin", "300", "200", "2", "1"), second_workload.start("ctx", "0", *GPU_BOUND)]
    res = [_spin(p) for p in procs]
    st_ = [_stats(err) for _, _, err in res]
    print(f"43 % busy at 30 beside GPU-bound 70: shares {[round(x, 1) for x, _, _ in res]}, {st_}, "
          f"{[_turns_tail(err) for _, _, err in res]}")
    assert all(s["on_ms"] < 1000 for s in st_), st_


def test_the_stats_line_says_turns_never_came_on(workload: Workload, second_workload: Workload) -> None:
    # a launch-bound pair never takes turns: its warm-up figure says never (-1) and nothing went off
    for w in (workload, second_workload):
        _setup(w, "default", 50, "1")
    res = _pair(workload, second_workload, LAUNCH_BOUND)
    for _, _, err in res:
        assert _turns_tail(err)[1:] == (-1.0, 0), err
        assert _stats(err)["on_ms"] == 0, err


def test_the_turns_bench_reads_both_forms_of_the_stats_lines_turns_section() -> None:
    """bench/turns.py reads the exit line's turns figures (launch.c launch_stats_report); the demand for turns and the
    full-ring waits came with turnsreal, so a line from before has none and one without the section gives {}."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "turns.py"
    spec = importlib.util.spec_from_file_location("hami_turns_bench_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    before = "launch stats: ...; turns on 725.7 ms, held 52 times, 219.9 ms, longest 62.5 ms, 0 cut; charges deferred"
    now = ("launch stats: ...; turns on 2650.0 ms, held 131 times, 1210.5 ms, longest 48.0 ms, 2 cut, demand for "
           "turns 93.4 %, full-ring waits 812.0 ms; charges deferred 3.0 ms")
    assert mod.turn_stats(before) == {"turns_on_ms": 725.7, "turn_holds": 52, "turn_held_ms": 219.9,
                                      "turn_longest_ms": 62.5, "turn_cuts": 0}
    got = mod.turn_stats(now)
    assert (got["turns_on_ms"], got["turn_cuts"], got["turn_demand"], got["full_ring_ms"]) == (2650.0, 2, 93.4, 812.0)
    assert "turn_window_busy" not in got
    # since turnsbound: the busy share in its own windows and the times it was judged out (turns.c turn_judged)
    bound = now.replace("812.0 ms;", "812.0 ms, busy in its windows 41.5 %, judged out 3;")
    got = mod.turn_stats(bound)
    assert (got["turn_demand"], got["turn_window_busy"], got["turn_outs"]) == (93.4, 41.5, 3)
    assert mod.turn_stats("launch stats: no turns section; charges deferred 1.0 ms") == {}
    # the credit waits (outside the turns section) come along when present
    credit = "launch stats: ...; verifications 0; held 41 times, 1094.3 ms; coarse samples 1 in 32; " + now[15:]
    got = mod.turn_stats(credit)
    assert (got["credit_holds"], got["credit_held_ms"], got["turn_holds"]) == (41, 1094.3, 131)
    assert "turn_first_ms" not in got  # a line from before turnsgraphs: no warm-up figure
    # since turnsgraphs: the warm-up (from the first update shared and capped to the first window; -1: never) and the
    # times turns went off again
    later = now.replace("812.0 ms;", "812.0 ms, first on after 38.5 ms, off 2 times;")
    got = mod.turn_stats(later)
    assert (got["turn_demand"], got["turn_first_ms"], got["turn_offs"]) == (93.4, 38.5, 2)
    never = now.replace("812.0 ms;", "812.0 ms, first on after -1.0 ms, off 0 times;")
    assert (mod.turn_stats(never)["turn_first_ms"], mod.turn_stats(never)["turn_offs"]) == (-1.0, 0)
    # since trainfer: the wall's accounting at the line's end (credit capped, and while held; held with nothing queued)
    acc = now + "; precise by choice 9: ...; credit capped 93.1 ms (0.5 ms held), held with nothing queued 594.4 ms"
    got = mod.turn_stats(acc)
    assert (got["capped_ms"], got["capped_held_ms"], got["held_idle_ms"], got["turn_cuts"]) == (93.1, 0.5, 594.4, 2)
    assert "held_idle_ms" not in mod.turn_stats(now)
    # since gatemarks: the gate's section (printed only with HAMI_SM_GATE_MARKS on), and why it went off if it did
    gated = acc + "; kernel table priced 1 of 2 keyed launches, 1 keys; gated marks 812, 3 not gated"
    got = mod.turn_stats(gated)
    assert (got["gated"], got["ungated"], got["held_idle_ms"]) == (812, 3, 594.4) and "gate_off" not in got
    off = gated.replace("3 not gated", "0 not gated, gate off: no host-mapped word")
    assert mod.turn_stats(off)["gate_off"] == "no host-mapped word"
    assert "gated" not in mod.turn_stats(acc)
    # since gatefix: the stream-destroy hook's section (before the gate's)
    sd = gated.replace("1 keys;", "1 keys; streams destroyed 4, runs closed by event 2, with no event 1, stale 0;")
    got = mod.turn_stats(sd)
    assert (got["streams_destroyed"], got["destroy_closed_event"], got["destroy_closed_host"],
            got["destroy_stale"], got["gated"]) == (4, 2, 1, 0, 812)
    assert "streams_destroyed" not in mod.turn_stats(gated)
    # judgedout: the line's head, the share of its measured launches measured coarsely (absent from "..." heads)
    head = "launch stats: 18373 measured launches (17.3 % coarse); 4.4 % on the throttle's fast path" + now[15:]
    got = mod.turn_stats(head)
    assert (got["coarse_pct"], got["turns_on_ms"], got["full_ring_ms"]) == (17.3, 2650.0, 812.0)
    assert "coarse_pct" not in mod.turn_stats(now)


# ------------------------------------------------------------------ judgeab: HAMI_SM_TURNS_COUNT_COARSE, HAMI_SM_TURNS_LOG


def _turns_log_mod():
    """bench/turns_log.py (the turns log's parser), loaded as the bench runs it."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "turns_log.py"
    spec = importlib.util.spec_from_file_location("hami_turns_log_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("bad", ["2", "yes", "true", "on", "-1", "1 ", " ", "01", "0x1"])
def test_a_bad_count_coarse_value_is_named_in_one_line_and_off_kept(workload: Workload, bad: str) -> None:
    # HAMI_SM_TURNS_COUNT_COARSE (judgeab, an A/B knob, off by default): exactly 0 or 1; anything else is named once
    # and the stay test keeps its rule (precise kernels only), which the turns log's head and lines say
    _setup(workload, "force", 50, None)
    workload.env.update(HAMI_SM_TURNS_COUNT_COARSE=bad, HAMI_SM_TURNS_LOG=str(workload.tmp / "turns"))
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "HAMI_SM_TURNS_COUNT_COARSE" in ln]
    assert len(lines) == 1 and f'"{bad}"' in lines[0] and "expected 1 or 0" in lines[0], r.stderr
    assert lines[0].endswith("; off"), r.stderr
    logs = list(workload.tmp.glob("turns.*"))
    assert len(logs) == 1 and "HAMI_SM_TURNS_COUNT_COARSE=0," in logs[0].read_text().splitlines()[0], logs


@pytest.mark.parametrize(("value", "rule"), [("1", 1), ("0", 0), (None, 0), ("", 0)], ids=["1", "0", "unset", "empty"])
def test_count_coarse_is_off_unless_the_knob_is_1_and_is_taken_silently(workload: Workload, value: str | None,
                                                                         rule: int) -> None:
    _setup(workload, "force", 50, None)
    workload.env["HAMI_SM_TURNS_LOG"] = str(workload.tmp / "turns")
    if value is not None:
        workload.env["HAMI_SM_TURNS_COUNT_COARSE"] = value
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0 and "HAMI_SM_TURNS_COUNT_COARSE" not in r.stderr, r.stderr
    log = _turns_log_mod().read_log(next(workload.tmp.glob("turns.*")))
    assert log["coarse_rule"] == rule and log["judgements"] == [], log  # alone: nothing judged, the head only


@pytest.mark.parametrize("bad", ["turns", "./turns", "/" + "x" * 420, "/nonexistent-dir-judgeab/turns"])
def test_a_turns_log_that_cannot_be_written_is_named_in_one_line_and_nothing_else_changes(workload: Workload,
                                                                                         bad: str) -> None:
    # a relative or over-long path, or one whose folder does not exist: one line naming it, no log, the run as before
    _setup(workload, "force", 50, None)
    workload.env["HAMI_SM_TURNS_LOG"] = bad
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "HAMI_SM_TURNS_LOG" in ln]
    assert len(lines) == 1 and "ignoring HAMI_SM_TURNS_LOG=" in lines[0] and "no turns log" in lines[0], r.stderr
    assert "; turns on " in r.stderr, r.stderr


@pytest.mark.parametrize("rule", ["0", "1"])
def test_the_turns_log_has_a_line_per_judgement_a_file_per_process(workload: Workload, second_workload: Workload,
                                                                   rule: str) -> None:
    # A GPU-bound pair taking turns (test_a_contended_pair_takes_turns_and_stops_time_slicing's) with the log on: each
    # process writes <path>.<pid>, its head naming the rule, then a line per stay-test judgement at its windows' starts.
    # Checked by what does not depend on the host's speed: the lines parse, their terms are the rule's (knob off: the
    # figure is its precise kernels over its windows' time, the other rule's counts the coarse estimates too; on: the
    # other way round), the figure is its terms' ratio, the counts match the exit line's "judged out"
    for w in (workload, second_workload):
        _setup(w, "force", 50, None)
        w.env.update(HAMI_SM_TURNS_LOG=str(w.tmp / "turns"), HAMI_SM_TURNS_COUNT_COARSE=rule)
    res = _pair(workload, second_workload, GPU_BOUND)
    tl = _turns_log_mod()
    for w, (_, _, err) in zip((workload, second_workload), res, strict=True):
        files = list(w.tmp.glob("turns.*"))
        assert len(files) == 1, files
        pid = int(files[0].name.split(".")[-1])
        assert f"HAMI_SM_TURNS_LOG: a line per stay-test judgement into {files[0]}" in err, err
        log = tl.read_log(files[0])
        js = log["judgements"]
        assert log["pid"] == pid and log["coarse_rule"] == int(rule) and log["bad_lines"] == 0 and js, log
        assert all(j["pid"] == pid and j["lim"] == 50 and j["n"] == 2 and j["coarse_rule"] == int(rule) for j in js)
        assert [j["t_ns"] for j in js] == sorted(j["t_ns"] for j in js)
        for j in js:
            assert j["own_ns"] >= 20 * MS and j["busy_bp"] == j["k_ns"] * 10000 // j["own_ns"], j  # TURN_JUDGE_NS
            assert j["alt_own_ns"] <= 0 or j["alt_bp"] == j["alt_k_ns"] * 10000 // j["alt_own_ns"], j
            assert 0 <= j["prec_bp"] <= 10000 and j["kp_ns"] >= 0 and j["kc_ns"] >= 0, j
            precise, both = (j["k_ns"], j["alt_k_ns"]) if rule == "0" else (j["alt_k_ns"], j["k_ns"])
            scaled, whole = (j["own_ns"], j["alt_own_ns"]) if rule == "0" else (j["alt_own_ns"], j["own_ns"])
            assert precise == j["kp_ns"] and both >= precise and scaled <= whole, j
            assert (j["verdict"] == "in") == (j["busy_bp"] >= 7000), j  # TURN_BOUND_BP
        outs = tl.summarise(log)["out"]
        assert outs == _stats(err)["outs"], (outs, err)
        # trainloss: a line each time turns came on or went off (turns.c turns_log_edge), on first, then alternating;
        # the offs are the exit line's "off N times" (the same condition), a judgement only while on
        edges = log["edges"]
        assert edges and edges[0]["turns"] == "on" and edges[0]["t_ns"] <= js[0]["t_ns"], edges
        assert all(a["turns"] != b["turns"] and a["t_ns"] <= b["t_ns"]
                   for a, b in zip(edges, edges[1:], strict=False)), edges
        # on: it wants turns and a neighbour takes part; off: nobody with it (it stopped wanting, or its neighbour did)
        assert all(e["pid"] == pid and (e["n"] >= 2 and e["want"] if e["turns"] == "on" else e["n"] == 0)
                   for e in edges), edges
        offs = re.search(r", off (\d+) times", err)
        assert offs and int(offs.group(1)) == sum(e["turns"] == "off" for e in edges), (edges, err)


def test_the_turns_log_parser_summarises_per_tenant(tmp_path) -> None:
    tl = _turns_log_mod()
    head = "# hami-vgpu turns log: pid 41, HAMI_SM_TURNS_COUNT_COARSE=0, at most 20000 lines; ...\n"

    def line(t: int, busy: int, alt: int, kp: int, kc: int, verdict: str, misses: int) -> str:
        return (f"t_ns={t} pid=41 dev=0 slot=1 lim=50 n=2 busy_bp={busy} k_ns={kp} own_ns=40000000 alt_bp={alt} "
                f"alt_k_ns={kp + kc} alt_own_ns=50000000 kp_ns={kp} kc_ns={kc} prec_bp=8000 verdict={verdict} "
                f"misses={misses} coarse_rule=0\n")

    text = (head + line(1_000_000_000, 9500, 9000, 38_000_000, 7_000_000, "in", 0)
            + line(1_200_000_000, 6000, 9800, 24_000_000, 25_000_000, "miss", 1)
            + line(1_400_000_000, 5000, 9900, 20_000_000, 29_500_000, "out", 2)
            + "t_ns=1 pid=41 cut sho\n" + "# capped at 20000 lines: no more judgements logged\n")
    (tmp_path / "turns.41").write_text(text)
    (tmp_path / "notes.txt").write_text("not a log\n")
    (tmp_path / "other.7").write_text("no head\n")
    assert tl.log_files([tmp_path]) == [tmp_path / "turns.41"]
    s = tl.summarise(tl.read_log(tmp_path / "turns.41"))
    assert (s["pid"], s["coarse_rule"], s["lim"], s["judgements"], s["in"], s["miss"], s["out"]) == (41, 0, 50, 3, 1,
                                                                                                     1, 1)
    assert s["capped"] and s["bad_lines"] == 1
    assert round(s["coarse_at_out"]["median"], 1) == 59.6 and round(s["coarse_at_in"]["median"], 1) == 15.6
    assert (s["busy_at_out"]["median"], s["alt_at_out"]["median"], s["alt_at_miss"]["median"]) == (50.0, 99.0, 98.0)
    assert tl.main([str(tmp_path), "--json", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())  # an object of its own kind: what the issue-18 judge notes
    assert summary["kind"] == "TurnsLogSummary" and [t["pid"] for t in summary["tenants"]] == [41]
    assert tl.main([str(tmp_path / "notes.txt")]) == 0  # a file given by name is read as one (no judgements)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert tl.main([str(empty)]) == 1


# loop-g20 (bench/turns.py, judgedout): 60 us kernels, a sync every 200 and 2 ms of host time after it (~86 % busy alone);
# with switches never charged and a fill gap of 2.5 ms its credit piles up and it measures part of its launches coarsely
LOOP_G20 = ("spin", "60", "0", "3", "200")
LOOP_G20_ENV = {"DRIVER_SPIN_STEP_GAP_US": "2000", "HAMI_SM_CHARGE_SWITCHES": "0", "HAMI_SM_TURN_GAP_US": "2500"}


@pytest.mark.fake_timing  # how much of a run goes coarse, and when, is the host's speed
def test_counting_coarse_marks_keeps_a_coarse_gpu_bound_loop_over_the_stay_bound(workload: Workload,
                                                                                  second_workload: Workload) -> None:
    # judgeab (HAMI_SM_TURNS_COUNT_COARSE): the loop-g20 pair at 50 + 50 with the turns log, the knob off and on, A B B A.
    # Off, the stay test leaves its coarse marks' kernels out while its windows' time is kept at the precise share, and
    # its judgements fell under 70 % in every one of 12 bench runs (30 of 342, 4 runs judged out; on: 0 of 376,
    # docs/results/2026-12-07-fake-judgeab.md). Judged by the log's verdicts: fewer below the bound with the knob on
    tl = _turns_log_mod()
    below = {"0": 0, "1": 0}
    for rule in ("0", "1", "1", "0"):
        for w in (workload, second_workload):
            w.env.clear()
            _setup(w, "force", 50, None)
            for f in w.tmp.glob("turns.*"):
                f.unlink()
            w.env.update(LOOP_G20_ENV, HAMI_SM_TURNS_COUNT_COARSE=rule, HAMI_SM_TURNS_LOG=str(w.tmp / "turns"))
        _pair(workload, second_workload, LOOP_G20)
        for w in (workload, second_workload):
            js = [j for f in w.tmp.glob("turns.*") for j in tl.read_log(f)["judgements"]]
            assert js and all(j["coarse_rule"] == int(rule) for j in js), js[:2]
            below[rule] += sum(j["verdict"] != "in" for j in js)
    print(f"loop-g20 50+50 nosw-gap25: judgements below 70 %: knob off {below['0']}, on {below['1']}")
    assert below["0"] > 0 and below["1"] < below["0"], below


# ------------------------------------------------------------------ trainloss: HAMI_SM_TURN_MISSES


@pytest.mark.parametrize("misses", [None, "1", "3"], ids=["unset", "1", "3"])
def test_the_misses_knob_sets_how_many_misses_in_a_row_judge_a_tenant_out(workload: Workload,
                                                                          second_workload: Workload,
                                                                          misses: str | None) -> None:
    # A GPU-bound pair taking turns at 50 + 50 (force), then tenant B turns half-busy: 2 ms kernels with 1.5 ms of host
    # time after each (~57 % busy alone), so its demand estimate keeps it wanting turns (turn_wanted: 2 x 57 >= 50 + 50)
    # while its busy share in its own windows reads under TURN_BOUND_BP, and the stay test judges it out. On the H100
    # (record 19 stage 29) every GPU-bound training tenant judged out was out after exactly two misses in a row, each
    # out a 1 s back-off of time-slicing; HAMI_SM_TURN_MISSES sets that count (unset: 2, TURN_MISSES). Checked by what
    # does not depend on the host's speed: in each log an out comes exactly at the knob's count of misses in a row and
    # a miss below it (with 1 there is no miss line at all), and the outs are the exit line's "judged out"
    want = int(misses or 2)
    for w in (workload, second_workload):
        _setup(w, "force", 50, "1")
        w.env["HAMI_SM_TURNS_LOG"] = str(w.tmp / "turns")
        if misses is not None:
            w.env["HAMI_SM_TURN_MISSES"] = misses
    procs = [workload.start("ctx", "0", "spin", "2000", "0", "3", "4"),
             second_workload.start("ctx", "0", "spin", "2000", "0", "0.8", "4", "spin", "2000", "1500", "2.2", "1")]
    res = [_spin(p) for p in procs]
    tl = _turns_log_mod()
    outs_b = 0
    for w, (_, _, err) in zip((workload, second_workload), res, strict=True):
        files = list(w.tmp.glob("turns.*"))
        assert len(files) == 1, files
        log = tl.read_log(files[0])
        assert log["bad_lines"] == 0, log
        print(f"HAMI_SM_TURN_MISSES={misses}: {files[0].name} "
              + "".join(j["verdict"][0] if j["verdict"] != "in" else "." for j in log["judgements"]))
        run = 0  # misses in a row since the last in or out (turns off and on again may restart the library's count)
        for j in log["judgements"]:
            run = 0 if j["verdict"] == "in" else run + 1
            assert 0 <= j["misses"] <= min(run, want), (want, j, log["judgements"])
            assert j["verdict"] == ("in" if j["misses"] == 0 else "out" if j["misses"] == want else "miss"), (want, j)
            run = 0 if j["verdict"] == "out" else run  # judged out: the count restarts (turns.c turns_update)
        outs = tl.summarise(log)["out"]
        assert outs == _stats(err)["outs"], err
        outs_b = outs
    assert outs_b >= 1, "tenant B, half-busy while taking turns, was never judged out"


def test_the_readers_place_turns_edges_in_the_measured_window(tmp_path) -> None:
    # bench/turns_log.py keeps the turns-on / turns-off lines (a '#' line: not a bad judgement line) and
    # bench/train_pairs_read.py clips the on-spells to the worker's window [t0_mono, t0_mono + seconds)
    import importlib.util
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench"
    tl = _turns_log_mod()
    f = tmp_path / "turns.42"
    edge = "# edge t_ns={t} pid=42 dev=0 turns={x} n={n} want={w} capped=1 shared=1 turn_bp=9000 nbr_bp=9500 nbr_lim=70 backoff=0\n"
    f.write_text("# hami-vgpu turns log: pid 42, HAMI_SM_TURNS_COUNT_COARSE=0, at most 20000 lines; ...\n"
                 + edge.format(t=1_000_000_000, x="on", n=2, w=1) + edge.format(t=2_500_000_000, x="off", n=0, w=0)
                 + edge.format(t=3_500_000_000, x="on", n=2, w=1) + "# edge t_ns=x turns=on\n")
    log = tl.read_log(f)
    assert log["bad_lines"] == 0 and log["judgements"] == [], log
    assert [(e["t_ns"], e["turns"], e["nbr_lim"]) for e in log["edges"]] == [
        (1_000_000_000, "on", 70), (2_500_000_000, "off", 70), (3_500_000_000, "on", 70)]
    spec = importlib.util.spec_from_file_location("hami_train_pairs_read", bench / "train_pairs_read.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # window 2.0-6.0 s: on 2.0-2.5 (already on at its start), off, on again 3.5 to the end
    w = mod.window_turns(log["edges"], 2_000_000_000, 6_000_000_000)
    assert abs(w["on_in_window_s"] - 3.0) < 1e-9 and w["first_on_in_window_s"] == 0.0, w
    assert w["edges_in_window"] == [[0.5, "off"], [1.5, "on"]], w
    # window 0.0-0.9 s: turns never on in it
    w = mod.window_turns(log["edges"], 0, 900_000_000)
    assert w["on_in_window_s"] == 0.0 and w["first_on_in_window_s"] is None, w
