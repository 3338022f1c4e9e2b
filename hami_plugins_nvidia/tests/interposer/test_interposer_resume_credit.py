"""A tenant alone just above its limit under `force` runs the throttle's square wave: held until it earned the resume
credit, then spending it beyond its limit until it is held again (issue 18). Every window from a resume to the next
stop holds that credit beyond the limit. HAMI_SM_RESUME_CREDIT_MS=80 caps it at the spendable burst (50 ms) and the
in-flight bound (30 ms): 2 points of a 4 s window. Unset, it is the whole wave credit (168 ms at 70 % with the default
800 ms period): the worst 3 s window of a tenant at ~82 % demand was charged 75.3-75.5 % on the fake, the worst 2 s
window at ~77 % demand 76.6-76.9 %. The cap also shortens every on-phase alone (267 instead of 560 ms at 70 %), which
power-capped GPUs may run at other clocks: until a GPU A/B decides (bench/issue18_gpu.sh stage 6), unset stays the
default, and a bad value changes nothing. A tenant under its limit is never held: the credit does not touch it (see
test_interposer_infer_alone.py and test_interposer_launch_fastpath.py for its throughput and fast path)."""

from __future__ import annotations

import re
import statistics

import pytest

from .conftest import REAL_DRIVER, Workload

fake_gpu = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU accounting")

BURST_S = 0.050  # HAMI_BURST_NS: spendable credit beyond the limit
INFLIGHT_S = 0.030  # HAMI_INFLIGHT_NS: queued work a tenant may have ahead of its credit
SLACK_S = 0.040  # a 2-core machine: harvest and refill lags (worst windows of 0.7325 and 0.740 at 70 %, 3 s, on
#                  CI and a local run, 2026-12-05: 0.6-0.9 points over a 15 ms slack)
DEMAND_MIN = 0.74  # the loop alone must exceed the 70 % limit by this for the premise (82 / 77 % on an idle host)
FIRST = ["ctx", "0", "launch", "kernel", "20", "10", "sleep", "1000"]  # the capped state begins, then 1 s idle
HELD_RE = re.compile(r"held (\d+) times")


def worst_window(trace: list[str], win: float) -> tuple[float, float]:
    """(the highest GPU share over any window of at least `win` s between two samples, the whole trace's share) of a
    driver_app trace line's words ("0 t g t g ...")."""
    v = [float(x) for x in trace[1:]]
    t, g = v[0::2], v[1::2]
    assert len(t) > 10 and t[-1] - t[0] > 2 * win, trace[:6]
    best, j = 0.0, 0
    for i in range(len(t)):
        while j < len(t) and t[j] - t[i] < win:
            j += 1
        if j == len(t):
            break
        best = max(best, (g[j] - g[i]) / (t[j] - t[i]))
    return best, (g[-1] - g[0]) / (t[-1] - t[0])


@pytest.mark.fake_timing
@fake_gpu
@pytest.mark.parametrize(("gap_us", "win_s"), [(70, 3.0), (75, 2.0)])
def test_a_tenant_just_above_its_limit_gets_at_most_the_burst_beyond_it_from_a_resume(
        workload: Workload, gap_us: int, win_s: float) -> None:
    # 60 us kernels, 70 or 75 us of host time after each, a sync every 64: ~82 or ~77 % busy alone at a 70 % limit,
    # the library's default 800 ms period; the GPU time the fake gave, sampled every 20 ms over 7 s
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        CUDA_DEVICE_SM_LIMIT="70", DRIVER_BUSY_GAP="1", HAMI_LAUNCH_STATS="1",
                        HAMI_SM_RESUME_CREDIT_MS="80")
    # the premise (over its limit, the square wave ran, held near its limit overall) needs the host: on a loaded
    # 2-core machine the loop's own demand alone fell to ~67 % (gap 75) and a held tenant woke late (55-58 % overall
    # at ~80 % demand, knob set or not). Such a run says nothing about the bound, so it runs again (at most 3 times,
    # each with the same loop unlimited beside it); the bound is checked on a run that holds the premise, and where
    # the host never let the loop exceed its limit the test says so and skips
    tries = []
    for _ in range(3):
        r = workload.run(*FIRST, "trace", "60", str(gap_us), "7", "64", "20", timeout=60)
        assert r.returncode == 0, r.stderr
        [trace] = r.values("trace")
        assert trace[0] == "0", trace[:3]
        worst, whole = worst_window(trace, win_s)
        held = HELD_RE.search(r.stderr)
        if held and int(held.group(1)) >= 2 and whole >= 0.67:
            break
        alone = workload.run(*FIRST, "trace", "60", str(gap_us), "3", "64", "20", preload=False, timeout=60)
        assert alone.returncode == 0, alone.stderr
        demand = worst_window(alone.values("trace")[0], 1.0)[1]
        tries.append({"whole": round(whole, 3), "throttle": held and held.group(0), "demand": round(demand, 3)})
    else:
        if all(t["demand"] < DEMAND_MIN for t in tries):
            pytest.skip(f"host too loaded: the loop alone never exceeded its 70 % limit by the premise "
                        f"(demand < {DEMAND_MIN}): {tries}")
        pytest.fail(f"no run was held near its limit (overall share, throttle, the loop's demand alone): {tries}; "
                    f"{r.stderr[-300:]}")
    assert worst <= 0.70 + (BURST_S + INFLIGHT_S + SLACK_S) / win_s, (worst, whole, tries, r.stderr[-400:])


def on_phases(trace: list[str]) -> list[float]:
    """The lengths (s) of the whole on-phases in a driver_app trace line's words ("0 t g t g ..."): runs of sample
    intervals in which the process got at least half the GPU, each with an off interval before and after it."""
    v = [float(x) for x in trace[1:]]
    t, g = v[0::2], v[1::2]
    on = [g[i + 1] - g[i] >= 0.5 * (t[i + 1] - t[i]) for i in range(len(t) - 1)]
    phases, start = [], None
    for i, busy in enumerate(on):
        if busy and start is None and i > 0:
            start = i
        elif not busy and start is not None:
            phases.append(t[i] - t[start])
            start = None
        elif not busy:
            start = None
    return phases


# GPU-bound alone at 70 % under `force`, the default 800 ms period: the wave's resume credit is 168 ms, its on-phase
# s x period = 560 ms; capped at 80 ms, 80 / (1 - s) = 267 ms. Between the two: 400 ms.
LONG_ON_S, SHORT_ON_S = 0.40, 0.40
GPU_BOUND = ["ctx", "0", "trace", "2000", "0", "4", "4", "10"]  # 2 ms kernels, a sync every 4, 4 s, 10 ms samples


def wave_on_phase(workload: Workload, **env: str) -> tuple[float, list[float], str]:
    """(the median whole on-phase, all of them, stderr) of a GPU-bound tenant alone at 70 % under `force`."""
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        CUDA_DEVICE_SM_LIMIT="70", DRIVER_BUSY_GAP="1", **env)
    r = workload.run(*GPU_BOUND, timeout=60)
    assert r.returncode == 0, r.stderr
    [trace] = r.values("trace")
    assert trace[0] == "0", trace[:3]
    phases = on_phases(trace)
    assert len(phases) >= 3, (phases, r.stderr[-400:])  # the square wave ran: several whole on-phases in 4 s
    return statistics.median(phases), phases, r.stderr


@pytest.mark.fake_timing
@fake_gpu
@pytest.mark.parametrize("knob", [None, "", "80"])
def test_the_resume_credit_cap_shortens_the_on_phase_only_where_it_is_set(workload: Workload,
                                                                          knob: str | None) -> None:
    # unset (or empty, as bench/issue18_gpu.sh stage 6 runs its A arm): today's wave, 560 ms on-phases at 70 %; the
    # cap leaking into the default would halve them
    on, phases, err = wave_on_phase(workload, **({} if knob is None else {"HAMI_SM_RESUME_CREDIT_MS": knob}))
    if not knob:
        assert on >= LONG_ON_S, phases
    else:
        assert on < SHORT_ON_S, phases
    assert "HAMI_SM_RESUME_CREDIT_MS" not in err, err[-400:]


@pytest.mark.parametrize("bad", ["0", "10001", "80ms", "-5", "1e2", " ", "99999999999999999999"])
def test_a_bad_resume_credit_cap_is_named_in_one_line_and_ignored(workload: Workload, bad: str) -> None:
    workload.env.update(HAMI_SM_RESUME_CREDIT_MS=bad)
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "HAMI_SM_RESUME_CREDIT_MS" in ln]
    assert len(lines) == 1 and f'"{bad}"' in lines[0] and "[1, 10000]" in lines[0], r.stderr


@pytest.mark.fake_timing
@fake_gpu
def test_a_bad_resume_credit_cap_keeps_the_whole_wave(workload: Workload) -> None:
    on, phases, err = wave_on_phase(workload, HAMI_SM_RESUME_CREDIT_MS="80ms")
    assert on >= LONG_ON_S, phases
    assert 'HAMI_SM_RESUME_CREDIT_MS="80ms"' in err, err[-400:]
