"""The quiet pace alone (issue 18, record 16): a process alone on the GPU and measured coarsely looks at the node board
every 4 ms instead of every millisecond (launch_int.h users_quiet: its record lock queries and publications are
system calls on the launching thread) and the watcher counts the GPU's processes through NVML every 500 ms instead of 100 whenever no neighbour is on the
GPU and neither of its last two counts found anybody else, coarse or precise (nvmlq.c: the count bounds neighbours
only; one that NVML lists and the board does not is counted at the 100 ms pace until two counts miss it, review24). On the H100 the inference loop alone at 70 % gave back ~1.5 points with each (record 16, stages 22
and 23). Beside a neighbour, near its limit, or with an explicit task priority, the 1 ms and 100 ms paces at once.

Read from the library's own stats line (HAMI_LAUNCH_STATS=1: board looks N (Q at the quiet pace), NVML process
counts M), on the fake libcuda: the paces are counts over a known wall, not timings of the fake. What tells the paces
apart is which looks were quiet; the totals are only bounded loosely (a loaded host launches less often, and a look
happens at a launch)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from .conftest import REAL_DRIVER, Workload, end_spin
from .test_interposer_nvml_bound import HOST1, HOST2, _force, _nvml, nvml_dir  # noqa: F401 - nvml_dir: a fixture
from .test_interposer_share import _spin

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="counts the library's looks on the fake's modelled launch cost")

LOOKS = re.compile(r"board looks (\d+) \((\d+) at the quiet pace\), NVML process counts (\d+)")
FORCE = dict(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="70", HAMI_LAUNCH_STATS="1",
             DRIVER_BUSY_GAP="1")
SECONDS = 1.5
# launch-bound, far below its limit (5 us kernels, 20 us of busy host time after each: ~20 % of the GPU): coarse once
# its first verification window passed (test_interposer_watcher_alone.py's loop)
LOOP = ["spin", "5", "20", str(SECONDS), "1000000"]


def _looks(stderr: str) -> tuple[int, int, int]:
    lines = [ln for ln in stderr.splitlines() if "launch stats:" in ln]
    assert len(lines) == 1, stderr
    m = LOOKS.search(lines[0])
    assert m, lines[0]
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _loop(workload: Workload, **env: str) -> tuple[int, int, int]:
    r = workload.run("ctx", "0", *LOOP, timeout=60, **(FORCE | env))
    assert r.returncode == 0, r.stderr
    return _looks(r.stderr)


def test_alone_and_coarse_it_looks_at_the_board_every_4_ms_and_counts_every_500_ms(workload: Workload) -> None:
    looks, quiet, counts = _loop(workload)
    print(f"alone: {looks} looks, {quiet} quiet, {counts} NVML counts")
    ms = SECONDS * 1000
    # the 1 ms pace would look ~1,500 times in the window; the first ~20 % of the launches (before the first window
    # verified) and the precise verification windows keep it, so at most about half of it, most at the quiet pace
    assert 0 < looks < 0.6 * ms and quiet > looks / 3, (looks, quiet)
    # 100 ms would count ~15 times in the window (+ the start); 500 ms: 3-4, a few more while not yet coarse
    assert 1 <= counts <= 8, counts


def test_measured_precisely_it_keeps_the_1_ms_board_pace_but_counts_every_500_ms(workload: Workload) -> None:
    # precise measurement (HAMI_SM_PRECISE=1, as a low credit or a neighbour's request does): its charges feed the
    # decisions, so the board is looked at about every millisecond; the NVML count bounds neighbours only, and there is
    # none: still every 500 ms (its first version followed the coarse flag, which each verification window clears, and
    # counted every 100 ms on the H100: record 16 stage 24)
    looks, quiet, counts = _loop(workload, HAMI_SM_PRECISE="1")
    alone_looks, _, _ = _loop(workload)
    # (the very first look, before the first launch was measured, may count as quiet)
    assert quiet <= 1 and looks > 0.3 * SECONDS * 1000, (looks, quiet)
    assert looks > alone_looks, (looks, alone_looks)
    assert 1 <= counts <= 8, counts


def test_an_explicit_task_priority_keeps_the_1_ms_pace(workload: Workload) -> None:
    # CUDA_TASK_PRIORITY: its level is marked active at the busy pace (the watcher's rule); not quiet
    looks, quiet, counts = _loop(workload, CUDA_TASK_PRIORITY="1")
    assert quiet <= 1 and looks > 0.3 * SECONDS * 1000 and counts >= 12, (looks, quiet, counts)


def test_a_neighbour_on_the_gpu_brings_back_the_1_ms_pace(workload: Workload, second_workload: Workload) -> None:
    # another container launching on the same GPU, started first: the process is never alone (ds->shared)
    nbr = second_workload.start("ctx", "0", "spin", "5", "300", "30", "1000000", **FORCE)
    try:
        looks, quiet, counts = _loop(workload)
    finally:
        outlasted = end_spin(nbr)  # there until the loop was done, then ended (its 30 s: a bound, never waited out)
        nbr.wait(timeout=60)
    assert outlasted, "the neighbour ended before the loop did"
    # the first look finds the neighbour (started first); every later one is at the 1 ms pace
    assert quiet <= 1 and looks > 0.3 * SECONDS * 1000, (looks, quiet)
    assert counts >= 12, counts


def test_a_process_nvml_lists_counts_at_the_100_ms_pace_until_it_left(workload: Workload, nvml_dir: Path) -> None:  # noqa: F811
    # review24: a 30 % tenant under force, GPU-bound, NVML listing one more context that the board does not show (an
    # idle neighbour, or one without the interposer: ds->shared stays 0). K = 1 while it is there; once it leaves, K
    # falls when two counts miss it, so the watcher must count at the 100 ms pace, not 500 ms (K = 1 for ~1 s, in
    # which a forged busy entry counts: 53.8 % taken against ~46 % at the 100 ms pace)
    _force(workload, 30)
    _nvml(workload, nvml_dir, HOST2)
    log = workload.tmp / "nvml-queries"
    workload.env.update(FAKE_NVML_LOG=str(log))
    p = workload.start("ctx", "0", "spin", "2000", "0", "2.5", "4")
    time.sleep(1.2)
    mine = f"{p.pid} procs"
    before = log.read_text().splitlines().count(mine)
    (workload.tmp / "nvml-procs").write_text(HOST1)  # it leaves
    at = log.read_text().splitlines().count(mine)
    time.sleep(0.45)  # at the 100 ms pace ~4 counts; at 500 ms at most 1 (0.35 s gave 1 once on a loaded CI VM)
    after = log.read_text().splitlines().count(mine)
    _spin(p)
    assert before >= 8, before  # counted every ~100 ms while it was listed (1.2 s), not every 500 ms
    assert after - at >= 2, (at, after)  # two counts within 450 ms of its exit: K back to 0

