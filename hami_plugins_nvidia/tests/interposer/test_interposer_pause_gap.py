"""A tenant alone far below its limit whose host pauses between bursts of work (issue 18, record 14, pausegap): the
H100's inference loop at 70 %, 25 % busy, alone in bench/launch_cost.py's paired windows (SIGSTOPped between them),
was charged 12.5 s of coarse doubt and held 23 times for 15.5 s. A coarse run left open at the step's sync got its
closing mark only after the pause (the watcher stops with the process), and its span, from the run's first launch to
that mark, held the pause; the verification charged it as doubt the window's host gaps did not explain. On the fake
(main fe358aa): 6-40 x its GPU time charged, held for seconds. Since pausegap a host wait closes the open coarse
runs it covers (launch.c wait_close_runs). A pause after a sync costs nothing, whatever kind; a GPU-bound tenant that
pauses with its work queued is still charged all of it (limits never fail open)."""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload, region

fake_gpu = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU accounting")

# the first launches and an idle spell: a fresh container's start (its first credit) is not what is judged
FIRST = ["ctx", "0", "launch", "kernel", "20", "10", "sleep", "300"]


def _bursts(w: Workload, policy: str, *args: str) -> tuple[float, float, int, float, str]:
    """(GPU s the fake gave the bursts, s charged, launch calls over 5 ms, their s, stats line) of FIRST + bursts."""
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY=policy,
                 CUDA_DEVICE_SM_LIMIT="70", DRIVER_BUSY_GAP="1", HAMI_LAUNCH_STATS="1")
    r = w.run(*FIRST, "bursts", *args, timeout=90)
    assert r.returncode == 0, r.stderr
    [first] = r.values("launch")
    [b] = r.values("bursts")
    assert first[0] == "0" and b[0] == "0", r.lines
    with region.SharedRegion(w.region_path) as reg:
        charged = reg.busy_ns(0) / 1e9 - float(first[3])  # less the first launches' GPU time (0.2 ms)
    stats = [ln for ln in r.stderr.splitlines() if "launch stats:" in ln]
    return float(b[3]), charged, int(b[6]), float(b[7]), stats[-1] if stats else r.stderr[-600:]


# the inference loop's shape (record 13/14: ~195 tiny kernels a step, host gaps, a sync each step): 5 us kernels,
# 12 us of host time after each, 195 a step; 4 bursts of 250 ms, each followed by a 400 ms pause: ~30 % busy
LOOP = ["5", "12", "195", "250", "400"]


@fake_gpu
def test_a_stopped_tenant_far_below_its_limit_is_never_held_nor_charged_the_pause(workload: Workload) -> None:
    # main fe358aa: charged 6-40 x the fake's GPU time, held 3-8 times for 1.5-3.8 s (the pauses as doubt). Bounds
    # far from both builds' figures, for make test on a loaded host; the fake_timing test below judges within 15 %
    gpu, charged, slow, slow_s, stats = _bursts(workload, "force", *LOOP, "stop", "4")
    assert slow_s < 0.1, (slow, slow_s, gpu, charged, stats)  # never held (a loaded host: a few ms at most)
    assert 0.7 * gpu <= charged <= 1.5 * gpu + 0.05, (gpu, charged, stats)
    assert gpu > 0.1, (gpu, stats)  # it ran its loop (~0.3 s of kernels)


@pytest.mark.fake_timing
@fake_gpu
@pytest.mark.parametrize("mode", ["stop", "sleep", "busy"])
def test_a_tenant_paused_between_bursts_is_charged_its_gpu_time(workload: Workload, mode: str) -> None:
    # stop: pausegap's case (record: 0.98 x, main 6-14 x); sleep and busy: the watcher runs through these pauses and
    # closed the run within its 4 ms alone ceiling on main too (0.98-0.99 x on both builds)
    gpu, charged, slow, slow_s, stats = _bursts(workload, "force", *LOOP, mode, "4")
    assert slow_s < 0.05, (slow, slow_s, gpu, charged, stats)
    assert abs(charged - gpu) <= 0.15 * gpu + 0.02, (gpu, charged, stats)


@fake_gpu
def test_under_default_a_stopped_tenant_alone_is_not_capped(workload: Workload) -> None:
    # alone under default nothing caps nor measures it (the header of launch.c): no hold, no charge, pauses or not
    gpu, charged, slow, slow_s, stats = _bursts(workload, "default", *LOOP, "stop", "2")
    assert gpu > 0.05 and slow_s < 0.05, (gpu, slow, slow_s, stats)
    assert charged < 0.01, (gpu, charged, stats)


@fake_gpu
@pytest.mark.parametrize("mode", ["stop", "stopq"])
def test_a_gpu_bound_tenant_that_pauses_is_still_charged_its_gpu_time(workload: Workload, mode: str) -> None:
    # 1 ms kernels, 32 queued a step (32 ms of work per host round trip): stop pauses after the step's sync (the mark
    # the wait pushes completes behind the queue), stopq with the burst's last step still queued and no sync (the run
    # stays open across the pause, as on main). Never charged less than the GPU time it got (both builds: 1.0 and 1.5-2.6 x)
    gpu, charged, _, _, stats = _bursts(workload, "force", "1000", "0", "32", "60", "300", mode, "4")
    assert gpu > 0.1, (gpu, stats)
    assert charged >= 0.95 * gpu, (gpu, charged, stats)
