"""Gated marks (gatemarks, HAMI_SM_GATE_MARKS=1; issue 18: H200 record 13's inference pair charged ~2.6 x the GPU time
its kernels used).

The cause, on the fake (bench/turns.py --cases infer2c): a 2 us kernel ends on the GPU while the host is still inside
its end mark's cuEventRecord (~3 us on the H200), the context runs out of work, the GPU switches to the neighbour, and
the end mark completes only after the neighbour's turn: the span holds that turn. With the gate a marked launch's
stream waits on a host-written word before its start mark, and the host writes it once the end mark is queued
(launch.c gate_arm, gate_release): the GPU runs start mark, kernel and end mark back to back. The fake models the wait
(cuStreamWaitValue32 on a word of cuMemHostAlloc(DEVICEMAP) memory) and, with FAKE_CUDA_GATE_HOLDS, whether a context
blocked on it keeps the GPU; these tests run the default (switched out at once)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from .conftest import REAL_DRIVER, Workload, end_spin
from .guard_runs import charged_s
from .test_interposer_share import _spin

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's time-sliced GPU model")

#: the H200's driver calls as the fake models them (issue 18: ~3 us an event record, ~1.5 us a query; a stream wait
#: taken to cost what a record does)
H200_COSTS = "launch=3000,record=3000,query=1500,elapsed=1500,sync=2000,wait=3000"
#: HAMI_TEST_GATE_MARKS=0 runs the pair test with the gate off (main's behaviour): it must then fail every case
GATE = os.environ.get("HAMI_TEST_GATE_MARKS", "1")
GATED = re.compile(r"; gated marks (\d+), (\d+) not gated(?:, gate off: ([^;]+))?")


def _gated(stderr: str) -> tuple[int, int, str | None] | None:
    """The launch stats line's gate section: (gated, not gated, why off), None when absent (knob off)."""
    m = GATED.search(stderr)
    return (int(m[1]), int(m[2]), m[3]) if m else None


def _sliced(w: Workload, gpu: str, **env: str) -> None:
    """A container on the fake's time-sliced GPU (2 ms slices, 30 us switches), the H200's driver costs modelled."""
    w.env.update(FAKE_CUDA_GPU=gpu, FAKE_CUDA_SLICE_US="2000", FAKE_CUDA_SWITCH_US="30", FAKE_CUDA_SYNC_POLL_US="10",
                 FAKE_CUDA_COSTS_NS=H200_COSTS, DRIVER_BUSY_GAP="1", HAMI_SM_PERIOD_MS="100", HAMI_LAUNCH_STATS="1",
                 **env)


def _pair(workload: Workload, second_workload: Workload, secs: str, precise: bool,
          gate: str) -> list[tuple[float, float, str]]:
    """bench/turns.py's infer2c pair: both tenants the inference loop's shape with 2 us kernels (12 us of busy-waited host
    time after each, a sync per 195), 50 + 50 under default (precise: HAMI_SM_PRECISE=1), HAMI_SM_GATE_MARKS=gate:
    (fake GPU seconds, charged seconds, stderr) each."""
    gpu = str(workload.tmp.parent / "gpu")
    for w in (workload, second_workload):
        _sliced(w, gpu, CUDA_DEVICE_SM_LIMIT="50", GPU_CORE_UTILIZATION_POLICY="default", HAMI_SM_GATE_MARKS=gate,
                **({"HAMI_SM_PRECISE": "1"} if precise else {}))
    procs = [w.start("ctx", "0", "spin", "2", "12", secs, "195") for w in (workload, second_workload)]
    out = []
    for w, p in zip((workload, second_workload), procs, strict=True):
        try:
            stdout, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"driver_app {p.args[1:]} ran past 90 s (a gate never released?)")
        words = stdout.split("spin ")[1].split()
        assert words[0] == "0", err
        out.append((float(words[3]), charged_s(w), err))
    return out


@pytest.mark.fake_timing
# gate 1 has no case: its figures depend on the host's speed (2026-12-07, this VM loaded by CI: 3.2-4.2 x with or
# without the watchdog, against 1.0-2.5 x when the helper measured it), so no bound separates it from the gate off
@pytest.mark.parametrize(("precise", "gate", "bound"), [(True, "2", 1.5), (False, "2", 1.5)],
                         ids=["precise-gate2", "default-gate2"])
def test_a_gated_launch_bound_pair_is_charged_near_its_kernels(workload: Workload, second_workload: Workload,
                                                               precise: bool, gate: str, bound: float) -> None:
    # bench/turns.py --cases infer2c --switch-us 30, this VM with other benches on its 2 cores
    # (docs/results/2026-12-07-fake-gatemarks.md): main's path (the gate off) charged each tenant 3.5-6 x the fake GPU
    # time it used under default, 3.6-4.8 x precise. Gating only the start marks the library records anyway (1) left
    # the chained precise spans holding the neighbour's turn: 1.2-2.7 x under default, 1.4-3.0 x precise (no bound
    # holds there); with chained launches gated too (2), 1.00 x under both. Judged per run on the higher of the two
    # tenants' ratios, the better of two runs (one tenant starved by the loaded host reads far off either way).
    # Bounds: coarsekey's 3.0 under default for 1 (its test on branch coarsekey), 1.5 for 2.
    gate = "0" if GATE == "0" else gate
    worst, seen = [], []
    for n in range(2):
        if n:  # a fresh fake GPU and board for the second run: each tenant's region is charged anew
            for w in (workload, second_workload):
                w.tmp = w.tmp.parent / f"{w.tmp.name}-{n}"
                w.tmp.mkdir(exist_ok=True)
        runs = _pair(workload, second_workload, "3", precise, gate)
        for g, c, err in runs:
            assert g > 0, runs
            assert c >= 0.9 * g, (g, c)  # never charged less than what ran
            if gate != "0":
                gated = _gated(err)
                assert gated and gated[0] > 0 and not gated[2], err[-2000:]  # the gate was used, never went off
        worst.append(max(c / g for g, c, _ in runs))
        seen.append([(round(g, 3), round(c, 3)) for g, c, _ in runs])
    print(f"gatemarks ({'precise' if precise else 'default'}, gate {gate}): the higher tenant's charge "
          f"{[round(r, 2) for r in worst]} x its fake GPU time; per tenant (GPU s, charged s) {seen}")
    assert min(worst) <= bound, (worst, seen)


def _neighbour(second_workload: Workload, gpu: str) -> subprocess.Popen[str]:
    """A light neighbour on the same fake GPU (5 us kernels, 200 us apart, a sync after each), so the tenant beside it
    is shared and its launches on an idle stream get gated start marks. It launches until _outlasted ends it (at most
    30 s: a bound for a loaded host, never waited out)."""
    _sliced(second_workload, gpu, CUDA_DEVICE_SM_LIMIT="50", GPU_CORE_UTILIZATION_POLICY="force")
    return second_workload.start("ctx", "0", "spin", "5", "200", "30", "1")


def _outlasted(nb: subprocess.Popen[str]) -> None:
    """Once the tenant is done: the neighbour was there for the whole of its run (still launching), and ends now
    (conftest end_spin) with its own run clean."""
    assert end_spin(nb), "the neighbour ended before the tenant did"
    _spin(nb)


def _tenant(workload: Workload, gpu: str, **env: str) -> None:
    """The gated tenant: precise, force at 50 %, the gate on (every launch synced: each finds its stream idle)."""
    _sliced(workload, gpu, **{"CUDA_DEVICE_SM_LIMIT": "50", "GPU_CORE_UTILIZATION_POLICY": "force",
                              "HAMI_SM_PRECISE": "1", "HAMI_SM_GATE_MARKS": "1", **env})


def test_a_failed_launch_still_releases_its_gate(workload: Workload, second_workload: Workload) -> None:
    # Every 1500th launch fails (the fake queues nothing and answers CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES). A gated
    # launch's start mark waits on the GPU for its ticket; had launch_end not written it on the failure's path, the
    # stream would wait forever and the next synchronize would hang (the run's 30 s timeout). Measured: with launch_end's
    # releases skipped for a failed launch (its failure path's and the last one's), the run timed out.
    gpu = str(workload.tmp.parent / "gpu")
    nb = _neighbour(second_workload, gpu)
    _tenant(workload, gpu, FAKE_CUDA_LAUNCH_FAIL_EVERY="1500")
    r = workload.run("ctx", "0", "spin", "5", "50", "2", "1", "launch", "kernel", "3", "5", "gates", timeout=30)
    _outlasted(nb)
    assert r.returncode == 0, r.stderr
    spin = r.values("spin")[0]
    assert spin[0] == "701" and int(spin[4]) == 1500, (spin, r.stderr)  # it stopped at the failed launch ...
    assert r.values("launch")[0][0] == "0", r.lines  # ... and the synchronize after it returned
    waits, blocked, _held, _capwaits = (int(x) for x in r.values("gates")[0])
    gated = _gated(r.stderr)
    assert gated and gated[0] >= 1000 and not gated[2], r.stderr  # its launches were gated, the failed one among them
    assert waits == gated[0] and blocked > 0, (waits, blocked, gated)


def test_a_launch_call_that_waits_for_the_gpu_is_released_by_the_watcher(workload: Workload,
                                                                         second_workload: Workload) -> None:
    # A launch call may itself wait for the GPU (a lazily loaded module's first launch synchronizes the context, a
    # profiler serializes kernels; FAKE_CUDA_LAUNCH_SYNCS=1: every launch returns once its stream is idle). Behind the
    # library's own gate that wait never ends: the ticket is written only after the call returns, and the launching
    # thread holds the device's lock. Measured before the watchdog (review of gatemarks, 2026-12-07): the gated pair
    # hung past 20 s. The watcher releases a wait held 20 ms (gate_watchdog; 2 ms released the waits of a launching
    # thread merely descheduled on this loaded VM: the gated pair read 1.2-1.8 x), and after 16 such releases in a row
    # the gate goes off.
    gpu = str(workload.tmp.parent / "gpu")
    nb = _neighbour(second_workload, gpu)
    _tenant(workload, gpu, FAKE_CUDA_LAUNCH_SYNCS="1")
    r = workload.run("ctx", "0", "spin", "5", "50", "1", "1", "gates", timeout=30)
    _outlasted(nb)
    assert r.returncode == 0 and r.values("spin")[0][0] == "0", r.stderr
    waits = int(r.values("gates")[0][0])
    gated = _gated(r.stderr)
    assert gated and 16 <= gated[0] and waits == gated[0], (waits, gated, r.stderr)
    assert gated[2] and "released by the watcher 16 times in a row" in gated[2], r.stderr
    assert int(r.values("spin")[0][4]) > 100, r.lines  # it went on launching once the gate was off


def test_with_cuda_launch_blocking_the_gate_stays_off(workload: Workload, second_workload: Workload) -> None:
    # CUDA_LAUNCH_BLOCKING=1 (PyTorch's usual debugging setting) makes every launch call wait for the GPU: the gate is
    # never set up, and the stats line says why.
    gpu = str(workload.tmp.parent / "gpu")
    nb = _neighbour(second_workload, gpu)
    _tenant(workload, gpu, CUDA_LAUNCH_BLOCKING="1", FAKE_CUDA_LAUNCH_SYNCS="1")
    r = workload.run("ctx", "0", "spin", "5", "50", "0.5", "1", "gates", timeout=30)
    _outlasted(nb)
    assert r.returncode == 0 and r.values("spin")[0][0] == "0", r.stderr
    assert r.values("gates")[0][0] == "0", r.lines
    gated = _gated(r.stderr)
    assert gated and gated[0] == 0 and gated[2] and "CUDA_LAUNCH_BLOCKING" in gated[2], r.stderr


def test_a_captured_stream_is_never_gated(workload: Workload, second_workload: Workload) -> None:
    # A stream being captured records its launches into the program's graph: a wait there would become one of the
    # graph's nodes, waiting on a word the library may never write again. The tenant, shared and gated, captures
    # launches on a stream of its own, then replays the graph: no wait was ever enqueued on the capturing stream
    # (the fake counts them), and the replays and its other launches were gated.
    gpu = str(workload.tmp.parent / "gpu")
    nb = _neighbour(second_workload, gpu)
    _tenant(workload, gpu)
    r = workload.run("ctx", "0", "spin", "5", "50", "0.5", "1", "capture", "0x7100", "launchon", "0x7100", "20", "10",
                     "endcapture", "0x7100", "graphlaunch", "0x7100", "5", "spin", "5", "50", "0.3", "1", "gates",
                     timeout=30)
    _outlasted(nb)
    assert r.returncode == 0, r.stderr
    assert r.values("capture")[0] == ["0"] and r.values("launchon")[0] == ["0"], r.lines
    assert r.values("endcapture")[0] == ["0", "200"], r.lines  # the 20 launches of 10 us were captured, not run
    assert r.values("graphlaunch")[0][:2] == ["0", "0"], r.lines
    waits, _blocked, _held, capwaits = (int(x) for x in r.values("gates")[0])
    assert capwaits == 0, r.lines
    gated = _gated(r.stderr)
    assert gated and gated[0] > 0 and waits == gated[0], (waits, gated, r.stderr)


def test_without_stream_waits_the_gate_stays_off(workload: Workload, second_workload: Workload) -> None:
    # A device without the V2 stream memory operations (FAKE_CUDA_NO_STREAM_WAIT=1: the wait call fails): the first
    # gated launch's wait fails, its ticket is written all the same and the gate goes off for good; today's path,
    # silently but for the stats line's reason; nothing waits, the program runs as before.
    gpu = str(workload.tmp.parent / "gpu")
    nb = _neighbour(second_workload, gpu)
    _tenant(workload, gpu, FAKE_CUDA_NO_STREAM_WAIT="1")
    r = workload.run("ctx", "0", "spin", "5", "50", "0.5", "1", "gates", timeout=30)
    _outlasted(nb)
    assert r.returncode == 0 and r.values("spin")[0][0] == "0", r.stderr
    assert r.values("gates")[0][0] == "0", r.lines
    gated = _gated(r.stderr)
    assert gated and gated[0] == 0 and gated[2] and "cuStreamWaitValue32 failed" in gated[2], r.stderr
    assert not [ln for ln in r.stderr.splitlines() if "gate" in ln.lower() and "launch stats" not in ln], r.stderr


def test_a_device_without_the_nor_condition_is_still_gated(workload: Workload, second_workload: Workload) -> None:
    # The gate waits GEQ; CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_WAIT_VALUE_NOR(_V2) says only whether the NOR condition is
    # supported, and the V2 memops need no attribute (review of gatemarks item 6; the CUDA 11.8-13 driver API's "Stream
    # Memory Operations"). A device answering 0 there (FAKE_CUDA_NO_NOR=1) whose GEQ waits work keeps its gate. main
    # (a46f1f8) asked attribute 123 and turned the gate off ("the device lacks ..._NOR").
    gpu = str(workload.tmp.parent / "gpu")
    nb = _neighbour(second_workload, gpu)
    _tenant(workload, gpu, FAKE_CUDA_NO_NOR="1")
    r = workload.run("ctx", "0", "spin", "5", "50", "0.5", "1", "gates", timeout=30)
    _outlasted(nb)
    assert r.returncode == 0 and r.values("spin")[0][0] == "0", r.stderr
    waits = int(r.values("gates")[0][0])
    gated = _gated(r.stderr)
    assert gated and gated[0] > 100 and not gated[2] and waits == gated[0], (waits, gated, r.stderr)


@pytest.mark.parametrize("bad", ["3", "yes", "-1", "1x"])
def test_a_bad_gate_knob_is_named_and_left_off(workload: Workload, second_workload: Workload, bad: str) -> None:
    # exactly 0 or 1: anything else is one warning line naming the knob and the value, and the gate stays off (its
    # stats section, printed only with the knob on, is absent; nothing waits) beside a neighbour that would gate it
    gpu = str(workload.tmp.parent / "gpu")
    nb = _neighbour(second_workload, gpu)
    _tenant(workload, gpu, HAMI_SM_GATE_MARKS=bad)
    r = workload.run("ctx", "0", "spin", "5", "50", "0.5", "1", "gates", timeout=30)
    _outlasted(nb)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "HAMI_SM_GATE_MARKS" in ln]
    assert len(lines) == 1 and f'"{bad}"' in lines[0] and "expected 0, 1 or 2" in lines[0], r.stderr
    assert _gated(r.stderr) is None and r.values("gates")[0][0] == "0", (r.lines, r.stderr)


@pytest.mark.parametrize("policy", ["force", "default"])
def test_alone_nothing_is_gated(workload: Workload, policy: str) -> None:
    # Alone no span can hold a neighbour's turn: the gate is never armed (ds->shared), whatever the mode, so alone
    # figures stay today's. The inference loop's shape with 2 us kernels, precise at force (every launch measured) and
    # coarse under default, the gate on: no wait enqueued, and the charge never below the GPU time it got.
    gpu = str(workload.tmp.parent / "gpu")
    _sliced(workload, gpu, CUDA_DEVICE_SM_LIMIT="70", GPU_CORE_UTILIZATION_POLICY=policy, HAMI_SM_GATE_MARKS="1",
            **({"HAMI_SM_PRECISE": "1"} if policy == "force" else {}))
    r = workload.run("ctx", "0", "spin", "2", "12", "1", "195", "gates", timeout=30)
    assert r.returncode == 0 and r.values("spin")[0][0] == "0", r.stderr
    assert r.values("gates")[0][:2] == ["0", "0"], r.lines
    gated = _gated(r.stderr)  # under default alone nothing is measured (uncapped): no stats line at all
    assert (gated is not None and gated[0] == 0) if policy == "force" else gated is None, r.stderr
    if policy == "force":
        gpu_s = float(r.values("spin")[0][3])
        assert charged_s(workload) >= 0.9 * gpu_s, (charged_s(workload), gpu_s)
