"""A precision request is read from each other user's own slot on the node board (issue 18, the launch-bound pair).

A capped tenant low on credit asks its neighbours to measure precisely. The request was one field per GPU
(waiter_since_ns), last writer wins, and a tenant ignored its own write: in a launch-bound pair both tenants wrote it
and a tenant's own write hid its neighbour's request on 45 % of its launches (fake libcuda, this 2-core VM;
docs/results/2026-12-06-fake-lbpair.md). Now each container's request is its low-credit mark in its own user slot
(user_held_ns, which also says it lends nothing), and a tenant reads the other users' slots (launch.c
precision_demanded); the per-GPU field is still written for older builds.

Judged by the launch stats line's coarse share, which a slow host does not move: a fresh request keeps a tenant
precise (0 % coarse) whatever its credit; an old or absent one leaves it coarse as alone (~88 % on this VM)."""

from __future__ import annotations

import re
import threading
import time

import pytest

from .conftest import REAL_DRIVER, Workload, forge_board_user

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device and its board")

COARSE = re.compile(r"launch stats: (\d+) measured launches \(([\d.]+) % coarse\)")
MS = 1_000_000


def _coarse_with(w: Workload, age_ns: int | None, asking: bool = True) -> float:
    """Coarse % of a launch-bound loop at 50 % force (ample credit after its first ~100 ms) while a forged neighbour
    stays on the board with its low-credit mark age_ns old (None: no mark); asking=False: the mark's lowest bit set
    (low on credit, not asking: launch.c credit_falls)."""
    w.env.update(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="50", HAMI_LAUNCH_STATS="1",
                 DRIVER_BUSY_GAP="1")
    w.run("ctx", "0", "launch", "kernel", "1", "10")  # creates the board and the GPU's entry
    board = w.tmp.parent / "board"

    def fill(g, slot: int, now: int) -> None:
        g.user_held_ns[slot] = 0 if age_ns is None else (now - age_ns) & ~1 | (not asking)  # even: a request

    stop = threading.Event()
    t = threading.Thread(target=forge_board_user, args=(board, stop, fill))
    t.start()
    try:
        time.sleep(0.05)
        r = w.run("ctx", "0", "passes", "40*5", "20", "1.5", timeout=60)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    m = COARSE.search(r.stderr)
    assert m and int(m.group(1)) > 2000, r.stderr
    return float(m.group(2))


def test_a_neighbours_request_in_its_own_slot_makes_a_tenant_precise(workload: Workload) -> None:
    # main 0ed0a95 read only the per-GPU field, which nobody wrote here: ~88 % coarse
    assert _coarse_with(workload, 0) == 0.0


@pytest.mark.parametrize("age_ns", [None, 300 * MS], ids=["no-request", "request-300ms-old"])
def test_no_fresh_request_leaves_a_tenant_coarse(workload: Workload, age_ns: int | None) -> None:
    # the control: the same forged neighbour without a fresh request (a request holds for 200 ms)
    assert _coarse_with(workload, age_ns) >= 50.0


def test_a_fresh_mark_that_does_not_ask_leaves_a_tenant_coarse(workload: Workload) -> None:
    # a neighbour low on credit but charged below its share marks itself held, not asking (the lowest bit): it
    # lends nothing, and costs nobody its coarse mode. Main f6d9828 read every fresh mark as a request: 0 % coarse
    assert _coarse_with(workload, 0, asking=False) >= 50.0
