"""The turns phase profile's own arithmetic (bench/turns_phase.py): a tenant's running time on the fake GPU, from its
ring of turn start/end points, binned by phase of the 100 ms turns period. No GPU needed."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "turns_phase.py"
MS = 1_000_000


@pytest.fixture(scope="module")
def tp(load_script):
    return load_script("hami_turns_phase_bench_under_test", BENCH)


def test_running_time_lands_in_its_phase_bins_and_flat_stretches_count_nothing(tp) -> None:
    # ran 0-5 ms, idle 5-10 ms (done flat), ran 101.5-103 ms (phase 1.5-3), ran 250-251 ms (phase 50)
    pts = {0: 0, 5 * MS: 5 * MS, 10 * MS: 5 * MS, 101 * MS + MS // 2: 5 * MS, 103 * MS: 6 * MS + MS // 2,
           250 * MS: 6 * MS + MS // 2, 251 * MS: 7 * MS + MS // 2}
    bins = tp.profile(pts, 0, 300 * MS)
    assert len(bins) == 100
    assert bins[0] == MS and bins[3] == MS and bins[4] == MS
    assert bins[1] == pytest.approx(1.5 * MS) and bins[2] == pytest.approx(2 * MS)
    assert bins[50] == MS
    assert bins[5:50] == [0.0] * 45 and sum(bins) == pytest.approx(7.5 * MS)


def test_the_measured_window_clips_the_running_time(tp) -> None:
    pts = {0: 0, 10 * MS: 10 * MS}
    bins = tp.profile(pts, 4 * MS, 6 * MS)
    assert sum(bins) == 2 * MS and bins[4] == MS and bins[5] == MS


def test_the_backlog_at_a_windows_end_is_its_last_ms_samples_mean(tp) -> None:
    # window ending at phase 30 ms: samples at phases 27.5 and 29.9 count (2 and 4 ms queued), 26.9 and 30.0 do not;
    # a window ending at the period's end (100) takes phases 97..100, and samples outside [lo, hi) never count
    p = 100 * MS
    samples = [(p + 27 * MS + MS // 2, 2 * MS), (2 * p + 29 * MS + 9 * MS // 10, 4 * MS), (p + 26 * MS + 9 * MS // 10, 50 * MS),
               (3 * p + 30 * MS, 60 * MS), (9 * p + 28 * MS, 70 * MS)]
    assert tp.window_end_backlog(samples, 0, 5 * p, 30) == 3.0
    assert tp.window_end_backlog([(p + 99 * MS, 8 * MS), (p, 9 * MS), (p + 96 * MS, 7 * MS)], 0, 5 * p, 100) == 8.0
    assert tp.window_end_backlog([], 0, p, 30) is None
