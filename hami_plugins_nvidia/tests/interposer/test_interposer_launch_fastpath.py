"""The launch path's own cost (issue 18). The throttle's fast path: while a tenant's credit is far above what
its next launch could need, a launch skips the throttle (no refill, no harvest, no wait); the refill is deferred
by at most a millisecond, never lost or doubled. The property pinned here: however long a tenant ran on the fast
path, it never gets more GPU time than its limit's share of the wall time plus the bucket's depth and the
in-flight bound - judged by the GPU time the fake's shared GPU really gave it (`FAKE_CUDA_GPU`), and its
charged time stays close to that GPU time (the accounting is exact, not only bounded). And the precise path's
harvest queries a drained stream once, not once per mark, still charging every mark."""

from __future__ import annotations

import re

import pytest

from .conftest import REAL_DRIVER, Workload, region

pytestmark = [
    pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU accounting"),
    pytest.mark.fake_timing,
]

CAP_S = 0.160  # HAMI_COARSE_CAP_NS: the bucket's depth (the square wave's 2 x resume credit is below it here)
INFLIGHT_S = 0.030  # HAMI_INFLIGHT_NS: queued work the tenant may have ahead of its credit


def _spin(out: str) -> list[tuple[float, float]]:
    """(window seconds, GPU seconds the fake gave) of each spin of a run."""
    res = []
    for line in out.splitlines():
        w = line.split()
        if w and w[0] == "spin":
            assert w[1] == "0", out
            res.append((float(w[3]) - float(w[2]), float(w[4])))
    return res


@pytest.mark.parametrize("limit", [30, 60])
def test_fast_path_never_lends_more_than_the_bucket_depth(workload: Workload, limit: int) -> None:
    # a launch-bound phase fills the bucket and runs on the fast path; then a GPU-bound phase (2 ms kernels, no
    # gap) tries to spend everything at once. Over the GPU-bound phase and over the whole run the GPU time is
    # at most limit x wall + the bucket depth + the in-flight bound (+10 ms for a loaded machine).
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT=str(limit), DRIVER_BUSY_GAP="1",
                        HAMI_LAUNCH_STATS="1")
    r = workload.run("ctx", "0", "spin", "2", "20", "1.0", "1000", "spin", "2000", "0", "1.2", "8", timeout=60)
    assert r.returncode == 0, r.stderr
    (w1, g1), (w2, g2) = _spin("\n".join(r.lines))
    share = limit / 100
    slack = CAP_S + INFLIGHT_S + 0.010
    assert g1 < share * w1, (w1, g1)  # the first phase is launch-bound: below its limit, never held
    assert g2 <= share * w2 + slack, (w2, g2, limit)
    assert g1 + g2 <= share * (w1 + w2) + slack, (w1, g1, w2, g2, limit)
    assert g2 >= share * w2 * 0.8, (w2, g2, limit)  # still work-conserving up to its limit
    stats = [ln for ln in r.stderr.splitlines() if "launch stats:" in ln]
    assert len(stats) == 1, r.stderr
    fast = float(re.search(r"([\d.]+) % on the throttle's fast path", stats[0]).group(1))
    assert fast >= 30, stats  # most of the launch-bound phase's launches took the fast path
    # the measured charge is the GPU time given: all of it but what the launch-bound phase's failed verifications
    # added on purpose (the doubt they charged, which the stats report). That part is the coarse phases'
    # policy, not the fast path's accounting, and grows with the host's load: preempted between launches, the
    # phase's host gaps stop explaining its spans (under two busy loops 4-71 ms, 1.02-1.15 x the whole run's GPU
    # time; counted in, 10 of 19 runs failed this bound on main, 0 of 17 since). A fast path that skipped charging its
    # launches leaves the measured part short, however much of it a verification then charges as doubt.
    doubt = float(re.search(r"charged the doubt \(([\d.]+) of", stats[0]).group(1)) / 1e3
    with region.SharedRegion(workload.region_path) as reg:
        charged = reg.busy_ns(0) / 1e9
    # Short is the bug; over by up to 20 % is the host (two local CI runs on 2026-12-05: 1.15 and 1.16 x over the
    # measured part, the doubt counted out, with nothing but the suite running)
    given = g1 + g2
    assert 0.9 * given - 0.02 <= charged - doubt <= 1.2 * given + 0.02, (charged, doubt, given)


def test_fast_path_stops_when_the_credit_runs_low(workload: Workload) -> None:
    # GPU-bound from the start at 20 %: the credit never becomes ample, so (almost) nothing takes the fast path
    # and the tenant is held at its limit
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT="20", HAMI_LAUNCH_STATS="1")
    r = workload.run("ctx", "0", "spin", "1000", "0", "1.5", "8", timeout=60)
    assert r.returncode == 0, r.stderr
    [(w, g)] = _spin("\n".join(r.lines))
    assert g <= 0.2 * w + CAP_S + INFLIGHT_S + 0.01, (w, g)
    stats = [ln for ln in r.stderr.splitlines() if "launch stats:" in ln][0]
    fast = float(re.search(r"([\d.]+) % on the throttle's fast path", stats).group(1))
    assert fast <= 20, stats


def test_precise_harvest_queries_a_drained_stream_once(workload: Workload) -> None:
    # measured precisely, a launch-bound stream has a mark per launch; its marks complete in order, so a harvest
    # that finds the newest completed takes all of them with one event query (it was one query per mark), and
    # every mark is still converted to a completion time (an elapsed-time call per mark) and charged
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        CUDA_DEVICE_SM_LIMIT="70", DRIVER_BUSY_GAP="1", HAMI_SM_PRECISE="1")
    r = workload.run("ctx", "0", "spin", "5", "20", "0.3", "1000", "calls", "spin", "5", "20", "0.6", "1000",
                     "calls", timeout=60)
    assert r.returncode == 0, r.stderr
    (c0, c1) = ([int(x) for x in words] for words in r.values("calls"))
    n = c1[0] - c0[0]
    assert n > 5000, r.lines
    records, queries, elapsed = ((c1[k] - c0[k]) / n for k in (1, 2, 3))
    assert records >= 0.95, (records, queries, elapsed)  # an end mark per launch
    assert elapsed >= 0.95 * records, (records, queries, elapsed)  # each one converted
    assert queries <= 0.5, (records, queries, elapsed)  # ~0.003 (each conversion is its query: mark_done), 0.2 before
    (_, g1), (_, g2) = _spin("\n".join(r.lines))
    with region.SharedRegion(workload.region_path) as reg:
        charged = reg.busy_ns(0) / 1e9
    assert abs(charged - (g1 + g2)) <= 0.15 * (g1 + g2) + 0.01, (charged, g1 + g2)
