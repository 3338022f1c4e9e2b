"""The watcher's back-off beside a neighbour (issue 18, pairhost: record 19 stage 20, H100, the inference pairs kept
80-81 % of the native pair with neither limit binding).

Each tenant's watcher runs on its loop's core (a container pinned to one core: launch_cost.py's "2;6"; the thread
inherits the process's affinity), so every wake preempts the loop. Alone and coarse the deferred wakes back off up to
4 ms and the ramp starts at the 1 ms busy ceiling (watcher.c); beside a neighbour (or measured precisely) the ceiling is
1 ms and a collection restarted the ramp at 100 us: the step's sync (0.3 ms on the H100) is collected for, and the next
wakes came 100, 200, 400 and 800 us into the next step. On the H100 each pair tenant's watcher woke ~1,450 times a
second (5,950 wakes in a 4 s run, ~1,700 of them collecting), 6.5 times a lone tenant's wakes per launch, with ~5,500
involuntary switches of the loop's thread; record 16 put a wake at ~70 us of the loop's time on its core.

HAMI_WATCHER_FLAT_RAMP=1 starts the ramp at the busy ceiling there too, as alone. The bound is the ceiling either way
(a launcher that stops is noticed within 1 ms, as at the end of the ramp), and the first wake after a collection still
comes at the collecting pace. The stats line counts the ramp's sleeps below the ceiling ("N below it ramping up after
a collection"): main has no such field, and its watcher ramps whatever the knob."""

from __future__ import annotations

import re

import pytest

from .conftest import REAL_DRIVER, Workload

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="counts the watcher's wakes on the fake's modelled launch cost")

WAKES = re.compile(r"(\d+) measured launches.*?watcher (\d+) wakes \((\d+) left to the launcher\).*?"
                   r"watcher sleeps past \d+ us: \d+ \(alone ceiling \d+ us\), (\d+) below it ramping up after a "
                   r"collection")
# an inference-like pass: 40 launches of 5 us kernels, 20 us of busy host time after each, then a 600 us kernel and the
# pass's sync, which the watcher collects for (the launcher launches nothing for longer than two harvest gaps)
PASSES = ("ctx", "0", "passes", "40*5,1*600", "20", "0.8")
BUSY_GAP = dict(DRIVER_BUSY_GAP="1", HAMI_LAUNCH_STATS="1")


def _figures(stderr: str) -> tuple[int, int, int, int]:
    """Measured launches, the watcher's wakes, those left to the launcher, its ramp's sleeps below the ceiling."""
    lines = [ln for ln in stderr.splitlines() if "launch stats:" in ln]
    assert len(lines) == 1, stderr
    m = WAKES.search(lines[0])
    assert m, lines[0]
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4))


def _precise_abab(workload: Workload) -> dict[str, list[tuple[int, int, int, int]]]:
    """Measured precisely (HAMI_SM_PRECISE=1: as a pair tenant low on credit or asked by its neighbour: the busy
    ceiling, 1 ms) without and with the knob, ABAB so the VM's load hits both arms: each run's figures, by knob."""
    env = dict(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="70", HAMI_SM_PRECISE="1", **BUSY_GAP)
    runs: dict[str, list[tuple[int, int, int, int]]] = {}
    for knob in ("", "1", "", "1"):
        r = workload.run(*PASSES, timeout=60, HAMI_WATCHER_FLAT_RAMP=knob, **env)
        assert r.returncode == 0, r.stderr
        runs.setdefault(knob, []).append(_figures(r.stderr))
    print(runs)
    return runs


def test_measured_precisely_the_flat_ramp_leaves_out_the_short_sleeps(workload: Workload) -> None:
    # What the knob decides, whatever the host's speed: the watcher's sleeps below the ceiling after a collection are
    # counted where they are chosen (watcher.c wakes_ramp), before the host runs them. The deferred wakes a launch
    # that follow are the host's figure: its own test below, in `make bench-fake`
    runs = _precise_abab(workload)
    for _, _, left, ramp in runs[""]:
        assert ramp > 0 and left > 0, runs  # main's ramp after each pass's collection
    for _, _, left, ramp in runs["1"]:
        assert ramp == 0 and left > 0, runs  # none below the ceiling; the launcher still left its collecting


@pytest.mark.fake_timing
def test_measured_precisely_the_flat_ramp_defers_fewer_wakes_a_launch(workload: Workload) -> None:
    # The ramp's sleeps (100, 200, 400, 800 us after a collection) are wakes inside the next pass, which find the
    # launcher collecting: fewer deferred wakes a launch with the knob (0.024 -> 0.017 on a quiet 2-core VM). A host
    # figure, not the knob's: it counts the wakes the host ran, and a loaded VM runs a 100 us sleep a scheduling
    # latency late (ms), so the ramp's wakes thin out before the knob takes them away. In `make test` it failed once
    # with two helpers' fake benches on the VM (launches 5-8 k a run against 15-21 k quiet; off 0.0094, on 0.0138
    # deferred wakes a launch), and 4 of 20 runs with six CPU spinners beside it (on/off 2.08, 1.00, 0.90, 0.85 x;
    # 0.27-0.78 x in the other 16; the checks of the test above held in all 20): the 0.8 x then
    # judged the host's scheduler. So it is a fake_timing check (bench/fake_timing.py), as shares and waits are;
    # the test above keeps the knob's rule in `make test`
    runs = _precise_abab(workload)
    per = {k: sum(v[2] for v in rs) / sum(v[0] for v in rs) for k, rs in runs.items()}
    assert per["1"] < 0.8 * per[""], (per, runs)  # fewer deferred wakes a launch


def test_a_launch_bound_pair_with_the_flat_ramp(workload: Workload, second_workload: Workload) -> None:
    # the pair itself (two containers on one fake GPU and node board, 30 + 70 under `default`, not pinned; on this
    # 2-core VM: wakes 1,894-1,946 a tenant on main, 1,016-1,018 with the knob): main's watchers ramp after every pass's collection; with the knob none
    # does, and each tenant still leaves its collecting to the launcher. Charges are the lend_launch_bound / trainfer
    # tests' (the knob moves no charge: a deferred wake collects nothing)
    gpu = str(workload.tmp.parent / "gpu")
    res: dict[str, list[tuple[int, int, int, int]]] = {}
    for knob in ("", "1"):
        procs = []
        for w, limit in ((workload, "30"), (second_workload, "70")):
            w.env.update(FAKE_CUDA_GPU=gpu, CUDA_DEVICE_SM_LIMIT=limit, GPU_CORE_UTILIZATION_POLICY="default",
                         HAMI_WATCHER_FLAT_RAMP=knob, **BUSY_GAP)
            procs.append(w.start(*PASSES))
        for p in procs:
            _, err = p.communicate(timeout=90)
            assert p.returncode == 0, err
            assert re.search(r"switches charged [\d.]+ ms, not [\d.]+ ms", err), err  # a neighbour seen: shared
            res.setdefault(knob, []).append(_figures(err))
    print(res)
    assert all(ramp > 0 for *_, ramp in res[""]), res
    assert all(ramp == 0 and left > 0 for _, _, left, ramp in res["1"]), res


def test_the_knob_reads_like_every_flag(workload: Workload) -> None:
    # HAMI_WATCHER_FLAT_RAMP is a flag (env.c env_true): "0" and unset keep the ramp
    env = dict(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="70", HAMI_SM_PRECISE="1", **BUSY_GAP)
    r = workload.run(*PASSES[:-1], "0.3", timeout=60, HAMI_WATCHER_FLAT_RAMP="0", **env)
    assert r.returncode == 0, r.stderr
    assert _figures(r.stderr)[3] > 0, r.stderr
