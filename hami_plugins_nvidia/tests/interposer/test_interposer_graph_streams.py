"""CUDA graphs replayed on two streams of one context (issue 18, the graphs program of the H200 bench): each step
replays one graph per stream, then syncs. A tenant measured coarsely (its credit ample) is charged, per coarse
mark, launches x its verified charge per launch, bounded by the mark's span. The two streams' coarse spans
overlap (their launches alternate), and the bound was the part of the span left after the streams charged
before it (the union of the streams' busy time, which precise marks are charged by): the second stream's
launches were cut to the few us its span outlasted the first's. Measured on this fake (2 ms slices, 30 us
switches, graphs of 50 us on 2 streams, a sync and 20 us of host time per step, pair 50 + 50 under default):
before, each tenant charged 0.71-0.77 x the GPU time the fake gave it; after, 0.99-1.00
(docs/results/2026-12-04-fake-graphs-and-pairs.md). Judged by the fake's own accounting of each process's GPU
time, never by wall-clock figures.

The context switches between two such programs: charged to the tenant switched into while the pair contends
(each one's demand alone, estimated from its launches, plus the other's >= 100 %), so a graphs pair splits by its
limits, and not to a fitting pair of launch-bound tenants (docs/results/2026-12-05-fake-graph-switches.md)."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import REAL_DRIVER, Workload
from .test_interposer_share import _charged_ms, _shared

pytestmark = [
    pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model"),
]


def _graphs(proc) -> tuple[float, float, int, float, float, float]:
    """(% of the window the fake GPU gave the process, window s, steps, % of launches measured coarsely, % of the
    window spent switching into its context, GPU s it got once a neighbour's work had run, -1 = never) of a `graphs`
    command run with HAMI_LAUNCH_STATS=1."""
    out, err = proc.communicate(timeout=60)
    words = out.split("graphs ")[1].split()
    assert words[0] == "0", err
    t0, t1, gpu, n, sw = float(words[1]), float(words[2]), float(words[3]), int(words[4]), float(words[5])
    coarse = re.search(r"\(([\d.]+) % coarse\)", err)
    assert coarse, err
    return 100 * gpu / (t1 - t0), t1 - t0, n, float(coarse.group(1)), 100 * sw / (t1 - t0), float(words[6])


def _coarse_graphs_pair(a: Workload, b: Workload, seconds: str, policy: str = "default",
                        lag_s: float = 0.0) -> list[tuple[float, int, int, int, int, float]]:
    """Graphs of 50 us on 2 streams, a sync and 20 us of host time per step, two tenants at 50 + 50 under POLICY
    with switches never charged, for SECONDS, the second started LAG_S after the first: per tenant (share %, GPU ms
    the fake gave it, GPU ms of those once the other's work had run, ms charged, steps, % coarse)."""
    for w in (a, b):
        _shared(w, FAKE_CUDA_SLICE_US="2000", FAKE_CUDA_SWITCH_US="30", FAKE_CUDA_SYNC_POLL_US="10",
                GPU_CORE_UTILIZATION_POLICY=policy, CUDA_DEVICE_SM_LIMIT="50", DRIVER_BUSY_GAP="1",
                HAMI_LAUNCH_STATS="1", HAMI_SM_CHARGE_SWITCHES="0")
    prog = ("graphs", "50", "2", "20", seconds)
    first = a.start("ctx", "0", *prog)
    time.sleep(lag_s)
    runs = [_graphs(p) for p in (first, b.start("ctx", "0", *prog))]
    seen = []
    for w, (share, secs, steps, coarse, _sw, paired_s) in zip((a, b), runs, strict=True):
        ran_ms = share * secs * 10  # GPU time the fake gave it, ms
        seen.append((round(share, 1), round(ran_ms), round(paired_s * 1e3), round(_charged_ms(w)), steps, coarse))
    return seen


@pytest.mark.fake_timing
@pytest.mark.parametrize("lag_s", [0.0, 0.15])
def test_graphs_on_two_streams_are_charged_what_ran_when_measured_coarsely(workload: Workload,
                                                                         second_workload: Workload,
                                                                         lag_s: float) -> None:
    # each program is busy ~75 % alone, so the pair contends and by default would be charged its context switches
    # too (and measured precisely for them: the next tests); here the coarse marks' bound alone is under test.
    # Judged from where the neighbour's work first ran: under default a tenant alone is neither capped nor charged,
    # and a loaded host can start the second tenant late (the lag here: at 150 ms the first tenant's charge over all
    # the GPU time it got falls to 0.86-0.89 x in this 2 s window, docs/results/2026-12-05-fake-load-charge.md)
    seen = _coarse_graphs_pair(workload, second_workload, "2", lag_s=lag_s)
    print(f"graph_streams coarse pair (default), lag {lag_s} s: (share, ran ms, paired ms, charged ms, steps, "
          f"coarse %) {seen}")
    for share, ran_ms, paired_ms, charged_ms, steps, coarse in seen:
        # the pair fits under its limits: not held, and mostly measured coarsely (the case under test)
        assert steps > 1000 and share < 50 and coarse >= 25, seen
        assert 0.92 * paired_ms <= charged_ms <= 1.25 * ran_ms, seen


@pytest.mark.parametrize("lag_s", [0.0, 0.15])
def test_graphs_on_two_streams_are_charged_most_of_what_ran(workload: Workload, second_workload: Workload,
                                                            lag_s: float) -> None:
    # CI's guard (host-independent): the pair above, shorter, under force, judged by each tenant's charge over all
    # the GPU time the fake gave it. Bounded by the union's remainder the second stream's coarse launches were cut
    # (bd76b0b^, then: 0.70-0.79 x; restored on today's csrc the samples' verification charges it back, 0.98 x).
    # Under default this guard failed under load (0.71 x): a loaded host can start the second tenant late, and the
    # first runs alone meanwhile, uncapped and by design uncharged (a 150 ms lag: 0.72-0.74 x; its charge over the
    # GPU time it got once its neighbour's work ran 0.98-1.03). Under force every launch is capped and measured,
    # alone or not: the lag (given here, as load gives it) only adds a spell measured alone, whose coarse spans hold
    # its host gaps: 0.98-1.07 x with or without it (docs/results/2026-12-05-fake-load-charge.md).
    seen = _coarse_graphs_pair(workload, second_workload, "1", policy="force", lag_s=lag_s)
    print(f"graph_streams coarse pair, lag {lag_s} s: (share, ran ms, paired ms, charged ms, steps, coarse %) {seen}")
    for _share, ran_ms, _paired_ms, charged_ms, _steps, _coarse in seen:
        assert charged_ms >= 0.88 * ran_ms, seen


@pytest.mark.fake_timing
@pytest.mark.parametrize(("policy", "knob"), [("default", ""), ("force", "1")])
def test_switch_charging_holds_a_graphs_pair_to_its_limits_when_switches_are_costly(
        workload: Workload, second_workload: Workload, policy: str, knob: str) -> None:
    # The fake calibrated to the H200's graphs pair (75 us graphs on 2 streams, a sync per step, 130 us context
    # switches): natively each tenant's kernels take ~26 % of the GPU and switching into its context ~23 %,
    # stepping in lockstep. Charged its kernels only (before 2026-12-05, by default), the 30 % tenant was never
    # held (26 %, its kernels + switches 45-48 %) and the pair split 50/50 whatever the limits. Each program is busy
    # ~75 % alone, so the pair contends (demands 150 %): by default now (and always with HAMI_SM_CHARGE_SWITCHES=1)
    # each tenant is charged the switch into its context too and held at its limit: its kernels + switches
    # <= 30 + 6 %, each tenant's charge within 15 % of the GPU time it held (kernels + switch-ins; 0.54 x before),
    # and the 70 % tenant gets more kernel time than the 30 % one. Under default the 70 % tenant, busy ~75 %
    # alone, lends nothing.
    # HAMI_SM_TURNS=0: the pair time-slices, the switches this rule charges (taking turns, the default, the pair
    # contending takes turns and switches little: csrc/turns.c)
    for w, limit in ((workload, 30), (second_workload, 70)):
        _shared(w, FAKE_CUDA_SLICE_US="2000", FAKE_CUDA_SWITCH_US="130", FAKE_CUDA_SYNC_POLL_US="10",
                CUDA_DEVICE_SM_LIMIT=str(limit), GPU_CORE_UTILIZATION_POLICY=policy, HAMI_LAUNCH_STATS="1",
                HAMI_SM_TURNS="0")
        if knob:
            w.env["HAMI_SM_CHARGE_SWITCHES"] = knob
    prog = ("graphs", "75", "2", "0", "2")
    a, b = workload.start("ctx", "0", *prog), second_workload.start("ctx", "0", *prog)
    runs = [_graphs(a), _graphs(b)]
    seen = []
    for w, (share, secs, _steps, _coarse, sw, _paired) in zip((workload, second_workload), runs, strict=True):
        held_ms = (share + sw) * secs * 10  # kernels + switches into its context, ms
        seen.append((round(share, 1), round(sw, 1), round(held_ms), round(_charged_ms(w))))
    (lo_share, lo_sw, _, _), (hi_share, _, _, _) = seen
    for _share, _sw, held_ms, charged_ms in seen:
        assert 0.85 * held_ms <= charged_ms <= 1.15 * held_ms, seen
    assert lo_share + lo_sw <= 36, seen
    assert hi_share >= lo_share + 10, seen


@pytest.mark.fake_timing
def test_graphs_pair_on_eight_streams_is_charged_its_switches(workload: Workload, second_workload: Workload) -> None:
    # The pair above with its graphs on 8 streams (600 us of GPU work a step; each program busy ~95 % alone). A
    # launch that found every stream idle collects the step's marks so the host's wait is known (the demand alone
    # switch charging judges contention by); a mark found running earlier was left to a later collection
    # (ask_later), the period stayed open across the sync, the wait was lost, and each demand came out as the share
    # it got (37 + 49 %): "not contended", its switch-ins uncharged, each tenant charged 0.82-0.90 x its kernels +
    # switch-ins on the fake (docs/results/2026-12-06-fake-charge-accounting.md). Judged from where the neighbour's
    # work first ran (under default a tenant alone is not charged, and a loaded host can start one late).
    for w, limit in ((workload, 30), (second_workload, 70)):  # time-slicing (HAMI_SM_TURNS=0): its switches
        _shared(w, FAKE_CUDA_SLICE_US="2000", FAKE_CUDA_SWITCH_US="130", FAKE_CUDA_SYNC_POLL_US="10",
                CUDA_DEVICE_SM_LIMIT=str(limit), GPU_CORE_UTILIZATION_POLICY="default", HAMI_LAUNCH_STATS="1",
                HAMI_SM_TURNS="0")
    prog = ("graphs", "75", "8", "0", "1.5")
    a, b = workload.start("ctx", "0", *prog), second_workload.start("ctx", "0", *prog)
    runs = [_graphs(a), _graphs(b)]
    seen = []
    for w, (_share, secs, _steps, _coarse, sw, paired_s) in zip((workload, second_workload), runs, strict=True):
        held_ms = paired_s * 1e3 + sw * secs * 10  # kernels once paired + switches into its context, ms
        seen.append((round(paired_s * 1e3), round(sw * secs * 10), round(held_ms), round(_charged_ms(w))))
    print(f"graphs pair on 8 streams: (paired GPU ms, switch-in ms, held ms, charged ms) {seen}")
    for paired_ms, _sw_ms, held_ms, charged_ms in seen:
        assert paired_ms > 0 and charged_ms >= 0.93 * held_ms, seen


def _fitting_pair(a: Workload, b: Workload, seconds: str) -> list[tuple[list[str], tuple[float, float]]]:
    """The inference loop's shape run by two tenants at 50 + 50 under default for SECONDS: per tenant the words of
    its `spin` line and the ms of switches into its context its stats line says were charged and not."""
    for w in (a, b):
        _shared(w, FAKE_CUDA_SLICE_US="2000", FAKE_CUDA_SWITCH_US="30", FAKE_CUDA_SYNC_POLL_US="10",
                CUDA_DEVICE_SM_LIMIT="50", GPU_CORE_UTILIZATION_POLICY="default", DRIVER_BUSY_GAP="1",
                HAMI_LAUNCH_STATS="1")
    prog = ("spin", "5", "20", seconds, "195")
    procs = [a.start("ctx", "0", *prog), b.start("ctx", "0", *prog)]
    rows = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        words = out.split("spin ")[1].split()
        assert words[0] == "0", err
        sw = re.search(r"switches charged ([\d.]+) ms, not ([\d.]+) ms", err)
        assert sw, err
        rows.append((words, (float(sw.group(1)), float(sw.group(2)))))
    return rows


@pytest.mark.fake_timing
def test_fitting_launch_bound_pair_is_not_charged_its_switches(workload: Workload,
                                                               second_workload: Workload) -> None:
    # The other side of the rule: the inference loop's shape (5 us kernels, 20 us of host time after each, a sync
    # per 195; busy ~20-25 % alone), two of them at 50 + 50 under default. On this fake they switch about as much
    # GPU time as they run kernels (30 us switches), yet keep their native throughput: the switches fill GPU time
    # nobody would have used, and charged them each tenant was charged ~2.2 x its kernels (the experiment's
    # figure, docs/results/2026-12-04-fake-graphs-and-pairs.md). The pair fits (demands ~50 %): charged its kernels.
    seen = []
    for w, (words, (sw_charged, sw_free)) in zip((workload, second_workload),
                                                 _fitting_pair(workload, second_workload, "2"), strict=True):
        ran_ms = float(words[3]) * 1e3  # its kernels' GPU time, as the fake accounts it
        seen.append((round(ran_ms), round(_charged_ms(w)), sw_charged, sw_free))
    for ran_ms, charged_ms, sw_charged, sw_free in seen:
        assert ran_ms > 100, seen  # it ran
        # switches into its context were seen (and left uncharged), none charged; the charge stays near its
        # kernels (loose: coarse estimates of tiny kernels run over on a loaded machine, 1.0-1.5 x measured)
        assert sw_free > 0 and sw_charged <= 0.02 * ran_ms, seen
        assert charged_ms <= 1.6 * ran_ms, seen


def test_fitting_launch_bound_pair_leaves_its_switches_uncharged(workload: Workload, second_workload: Workload) -> None:
    # CI's guard (host-independent): the fitting pair above, shorter, judged by the library's own stats line alone.
    # Charging every switch (HAMI_SM_CHARGE_SWITCHES=1, the rule before the contended-only one) charges all of
    # them: "not" is 0 ms, whatever the host. Now the pair, demanding ~50 %, is not contended: at most a few
    # switches are charged. A loaded host only slows each program's launches, lowering the demands the library
    # estimates from them: the pair fits all the more.
    seen = [sw for _words, sw in _fitting_pair(workload, second_workload, "1")]
    print(f"graph_streams fitting pair: switches (charged, not) ms {seen}")
    # a loaded host can keep the pair from overlapping at all (0.1-2 ms of switches seen beside two busy loops,
    # ~20-50 ms idle): with no switch there is nothing to judge either way
    if sum(charged + free for charged, free in seen) == 0:
        pytest.skip(f"the pair never switched contexts: {seen}")
    for charged, free in seen:
        assert charged <= 0.25 * (charged + free), seen
