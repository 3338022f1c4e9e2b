"""A tenant low on credit asks its neighbours for precise measurement only while its credit is not rising (issue 18,
task pairask; launch.c credit_falls).

A capped tenant whose credit is low marks itself held on its board slot (it lends nothing) and, until this rule, every
such mark was also a request: each neighbour measured every launch precisely while it was fresh. On the fake libcuda
(this 2-core VM, main f6d9828) every request that made a fitting launch-bound pair's tenant precise came from the
other tenant's start ramp: a capped spell starts from the credit it has (about none at a pair's start) and goes coarse
only past 80 ms of it, so a tenant charged well below its share spends its first ~0.3-0.5 s "low on credit" while it
gains credit whatever its neighbours do. Now such a tenant's mark has its lowest bit set (held, not asking); a tenant
charged within 2 points of its share, or held for credit, still asks (an even mark).

Judged by the marks a tenant writes on the board (read here from the board file every 0.5 ms) and by a neighbour's
driver calls per launch (the fake's own counters), not by wall-clock figures."""

from __future__ import annotations

import mmap
import threading
import time
from pathlib import Path

import pytest

from .conftest import REAL_DRIVER, Workload, region
from .guard_runs import charged_s

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device and its board")

# Light: 5 us kernels, 300 us of host time after each (waited on the clock), a sync every 1000 launches: busy ~1.5 %
# by the fake's accounting, charged ~1.5-6 % of the wall (up to ~4 x its GPU time where its spans start at the host
# enqueue, as alone), well below a 10 % limit: its credit rises from the ~none it starts with (force: capped from its
# first launch) and stays under the 60 ms coarse margin for ~0.7-1.7 s.
LIGHT = ("spin", "5", "300")
# The neighbour: launch-bound at 70 %, as test_interposer_share_coarse.py's (busy ~20-35 %).
LAUNCH_BOUND = ("spin", "5", "10")


def _setup(w: Workload, limit: int) -> None:
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                 HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT=str(limit), DRIVER_BUSY_GAP="1")


def _watch(board: Path, stop: threading.Event, marks: dict[int, tuple[int, int]]) -> None:
    """Collects every distinct non-zero held mark of any user slot of the fake GPU's board entry until stop, with the
    slot's published limit and charged fraction (1/100 %) as first seen beside it."""
    while not board.exists() or board.stat().st_size < region.BOARD_SIZE:
        if stop.wait(0.001):
            return
    with open(board, "rb") as f, mmap.mmap(f.fileno(), region.BOARD_SIZE, access=mmap.ACCESS_READ) as mem:
        buf = bytearray(region.BOARD_SIZE)
        while not stop.is_set():
            buf[:] = mem[:]
            g = region.ffi.cast("struct hami_board *", region.ffi.from_buffer(buf)).gpu[0]
            for i in range(region.CONST["HAMI_BOARD_USERS"]):
                if g.user_id[i] and g.user_held_ns[i]:
                    marks.setdefault(int(g.user_held_ns[i]), (int(g.user_limit[i]), int(g.user_frac_bp[i])))
            del g
            stop.wait(0.0005)


def test_a_held_tenant_still_asks(workload: Workload) -> None:
    # a GPU-bound loop (2 ms kernels, a sync after each) at 25 % is held for credit once its first credit is spent:
    # its marks ask (even)
    _setup(workload, 25)
    marks: dict[int, tuple[int, int]] = {}
    stop = threading.Event()
    t = threading.Thread(target=_watch, args=(workload.tmp.parent / "board", stop, marks))
    t.start()
    try:
        r = workload.run("ctx", "0", "spin", "2000", "0", "1.0", "1", timeout=60)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    even = sum(1 - (m & 1) for m in marks)
    print(f"pair-ask held: {len(marks)} marks, {even} asking")
    assert len(marks) >= 100, len(marks)
    assert even >= 0.8 * len(marks), (even, len(marks))  # all but those before its charges reach its share


def _marks_while(board: Path, run):
    """(run()'s result, the distinct held marks written on the board while it ran)."""
    marks: dict[int, tuple[int, int]] = {}
    stop = threading.Event()
    t = threading.Thread(target=_watch, args=(board, stop, marks))
    t.start()
    try:
        return run(), marks
    finally:
        stop.set()
        t.join()


def test_a_ramping_tenant_does_not_ask_and_its_neighbour_goes_coarse(workload: Workload,
                                                                    second_workload: Workload) -> None:
    # the pair: A, light at 10 % (LIGHT), starts with about no credit and gains 4-8.5 % of the wall a second: low on
    # credit (under 60 ms) for ~0.7-1.7 s, marked held once a ms (held for credit at
    # times in its first ~100 ms: it asks, and the request holds 200 ms). B, launch-bound at 70 %, ramps to ample
    # credit in ~0.2-0.3 s and runs its measured 0.4 s from 0.4 s on. Main f6d9828: A's
    # marks asked (plain times, odd only by chance: ~50 %) and B measured every launch precisely (a start and an end
    # mark beside a neighbour: ~2 marks per launch). Now every mark written while its slot's published charged
    # fraction is more than 2 points below its limit says "not asking" (odd), and B runs coarse (0.1-0.6 marks per
    # launch: one per >= 1 ms run, the samples, the verification windows). A, charged its spans whole beside a
    # coarse neighbour, stays below its limit: never fail-open.
    _setup(second_workload, 70)
    _setup(workload, 10)

    def pair():
        a = workload.start("ctx", "0", "ready", *LIGHT, "2.0", "1000")
        assert [a.stdout.readline().strip() for _ in range(2)] == ["ctx 0", "ready"]
        t0 = time.monotonic()
        r = second_workload.run("ctx", "0", *LAUNCH_BOUND, "0.4", "1000", "calls", *LAUNCH_BOUND, "0.4", "1000",
                                "calls", timeout=60)
        out_a, err_a = a.communicate(timeout=60)
        assert a.returncode == 0, err_a
        assert r.returncode == 0, r.stderr
        return r, time.monotonic() - t0

    (r, wall), marks = _marks_while(workload.tmp.parent / "board", pair)
    c0, c1 = ([int(x) for x in words] for words in r.values("calls"))
    n = c1[0] - c0[0]
    records_b = (c1[1] - c0[1]) / max(1, n)
    charged_a = 100 * charged_s(workload) / wall
    # A's marks from 400 ms after its first (in its first ~100 ms it is held for credit at times: it asks, as it
    # must, and a request holds for 200 ms), while its published charged fraction is more than 2 points below its share
    first = min((m for m, (limit, _) in marks.items() if limit == 10), default=0)
    below = [m for m, (limit, frac) in marks.items()
             if limit == 10 and m - first >= 400_000_000 and frac + 200 < limit * 100]
    odd = sum(m & 1 for m in below)
    print(f"pair-ask pair: B recorded {records_b:.3f} marks per launch over {n} launches; A charged {charged_a:.1f} %; "
          f"{len(marks)} held marks, {len(below)} of A's below its share, {odd} of them not asking")
    assert n > 1000, (c0, c1)
    assert charged_a <= 10 + 2, charged_a  # A within its limit (+ noise)
    assert len(below) >= 30, (len(below), len(marks), charged_a)  # A low on credit, charged below its share
    assert odd >= 0.95 * len(below), (odd, len(below))
    assert records_b <= 1.0, (records_b, charged_a, len(below))
