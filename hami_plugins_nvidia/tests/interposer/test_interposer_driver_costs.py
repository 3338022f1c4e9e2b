"""The fake libcuda's modelled driver costs (FAKE_CUDA_COSTS_NS) and driver lock (FAKE_CUDA_DRIVER_LOCK), which
bench/launch_path_cost.py uses to give the fake's calls an H200's microseconds (issue 18: ~11-13 us per launch of
the inference loop's wall time lie outside the library's own sections). Judged by counts and lower bounds, never by
how fast this host is: a busy-waited cost cannot take less than its own length, and the lock is taken once per
costed call, by whichever thread makes it (the program's or the interposer's watcher)."""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="knobs of the fake libcuda")

H200_LIKE = "launch=3000,record=3000,query=1500,elapsed=1500,sync=2000"


def _ints(r, key: str) -> list[list[int]]:
    return [[int(x) for x in words] for words in r.values(key)]


def test_knobs_off_take_no_lock_and_cost_nothing(workload: Workload) -> None:
    r = workload.run("ctx", "0", "launch", "kernel", "200", "0", "calls", "drvlock", preload=False)
    assert r.returncode == 0, r.stderr
    assert _ints(r, "calls")[0][0] == 200
    assert _ints(r, "drvlock") == [[0, 0]]  # off by default: every existing test runs the fake as before
    assert "fake_cuda:" not in r.stderr


def test_a_costed_call_takes_at_least_its_cost(workload: Workload) -> None:
    # 40 launches of 0 us at 2.5 ms each: at least 100 ms of wall time on any host (a busy wait on the clock)
    r = workload.run("ctx", "0", "launch", "kernel", "40", "0", preload=False, FAKE_CUDA_COSTS_NS="launch=2500000")
    assert r.returncode == 0, r.stderr
    (words,) = r.values("launch")
    assert float(words[2]) - float(words[1]) >= 0.100, words


def test_driver_lock_is_taken_once_per_costed_call_by_every_thread(workload: Workload) -> None:
    # the library at force 70 on an inference-shaped loop (5 us kernels, 20 us of host time each, a sync per 195):
    # its event records, queries and elapsed-time calls (the program's thread and the watcher's) and the program's
    # launches and syncs each take the lock once; counts read before and after the fake's counters bound them
    workload.env.update(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="70", DRIVER_BUSY_GAP="1",
                        FAKE_CUDA_COSTS_NS=H200_LIKE, FAKE_CUDA_DRIVER_LOCK="1")
    r = workload.run("ctx", "0", "spin", "5", "20", "0.6", "195", "drvlock", "calls", "drvlock", timeout=60)
    assert r.returncode == 0, r.stderr
    (before, after), (calls,) = _ints(r, "drvlock"), _ints(r, "calls")
    launches, records, queries, elapsed, _capture, syncs, _caprec, _not_ready = calls
    costed = launches + records + queries + elapsed + syncs
    assert launches > 1000 and records > 0 and elapsed > 0, calls  # the library's marks reached the driver
    assert before[0] <= costed <= after[0], (before, calls, after)
    assert 0 <= after[1] <= after[0]


def test_a_malformed_cost_is_refused_in_one_line_and_changes_nothing(workload: Workload) -> None:
    r = workload.run("ctx", "0", "launch", "kernel", "40", "0", preload=False,
                     FAKE_CUDA_COSTS_NS="launch=abc,record=-5,bogus=3,launch=99999999999")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("fake_cuda: ignoring FAKE_CUDA_COSTS_NS")]
    assert len(lines) == 4, r.stderr
    assert '"launch=abc"' in lines[0] and '"bogus=3"' in lines[2], lines
    (words,) = r.values("launch")
    assert float(words[2]) - float(words[1]) < 5.0  # no cost applied (a 99999999999 ns cost would take 66 min)
