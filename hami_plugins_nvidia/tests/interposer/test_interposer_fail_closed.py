"""Two fail-open paths of the measured launch path (issue 18: never fail open), found by reading and confirmed on
the fake libcuda (this 2-core VM; docs/results/2026-12-05-fake-fail-closed.md):

- more streams busy at once than the library has stream queues (MAXQ, 32): a launch on one more stream found no
  queue, was held for credit but neither marked nor charged (0.59 x the GPU time charged);
- the measured context lost under the same handle value (the primary reset or released and retained again, or a
  context destroyed and one made in its slot): every event record failed and every launch was charged nothing
  (300 ms of kernels at a 30 % limit ran in 0.30 s); so did every launch where the driver's events never record.

Each test judges what does not depend on the host's speed: the library's own charged total against the GPU time
the fake gave (the unmeasured path charges wall time, never less), as one-sided bounds far from the bug's figure
(0.00-0.59 x) and below the fix's (1.00-1.59 x), synchronize counts and the stats line."""

from __future__ import annotations

import re

import pytest

from .conftest import REAL_DRIVER, Run, Workload
from .guard_runs import charged_s

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU, contexts and call counters")

FORCE = dict(GPU_CORE_UTILIZATION_POLICY="force", HAMI_SM_PERIOD_MS="100", HAMI_LAUNCH_STATS="1")
# before exit: the watcher collects the last marks, so these tests judge the launch path alone, not the exit handler
# (which charges what is left uncollected at exit: test_interposer_exit_capture)
SETTLE = ("sleep", "50")


def _syncs(r: Run) -> list[int]:
    """The fake's synchronize counter (the program's own included) at each `calls` command."""
    return [int(words[5]) for words in r.values("calls")]


def _measured(r: Run) -> int:
    m = re.search(r"launch stats: (\d+) measured launches", r.stderr)
    assert m, r.stderr
    return int(m.group(1))


def test_launches_beyond_the_stream_queues_are_charged(workload: Workload) -> None:
    # 32 streams with a 2 ms kernel each hold every stream queue; 20 x 1 ms kernels on a 33rd stream are launched
    # while those are queued, then a sync. Credit saved first (200 ms idle at 90 %), so nothing waits for it and the
    # queues stay held while the 33rd stream launches. On main 5eff80c (0.9 ms kernels then) its launches were held
    # but never charged: 57.6 ms charged of 97.6 ms of GPU time (0.59 x). Now such a launch is synchronous and charged
    # its wall time (an over-charge here, 1.4-1.6 x: its wait holds the 32 streams' kernels too), and once the queues
    # drain the rest are measured as before. 2 ms, not 0.9 (session 25): with a fake pair test beside it the 32 queues
    # of 0.9 ms sometimes drained before the 33rd stream launched, no launch went beyond them, and the sync count
    # below read (1, 2, 3) in 3 of 6 full runs
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), CUDA_DEVICE_SM_LIMIT="90", **FORCE)
    burst = ("streams", "32", "2000", "20", "1000")
    r = workload.run("ctx", "0", "launch", "kernel", "1", "10", "sleep", "200", "calls", *burst, "calls",
                     "sleep", "100", *burst, "calls", *SETTLE, timeout=60)
    assert r.returncode == 0, r.stderr
    runs = r.values("streams")
    assert len(runs) == 2 and all(v[0] == "0" for v in runs), r.lines
    gpu = sum(float(v[3]) for v in runs)
    assert gpu >= 0.16, runs  # the fake ran every kernel: 2 x (32 x 2 + 20 x 1) ms
    charged = charged_s(workload)
    print(f"fail-closed queues: charged {charged * 1e3:.1f} ms of {gpu * 1e3:.1f} ms GPU ({charged / gpu:.2f} x)")
    assert charged >= 0.95 * gpu, (charged, gpu)
    s0, s1, s2 = _syncs(r)
    # the program syncs once per burst; a launch that found no queue adds its own
    assert (s1 - s0) + (s2 - s1) >= 3, (s0, s1, s2)


@pytest.mark.parametrize("lose", [("ctxreset", "0", "ctx", "0"), ("ctxrelease", "0", "ctx", "0"),
                                  ("ctxdestroy", "ctxnew", "0")], ids=["reset", "release", "destroy"])
def test_a_context_lost_under_the_same_handle_is_charged_and_measured_again(workload: Workload,
                                                                             lose: tuple[str, ...]) -> None:
    # the library sets the device up in the first context (its events are that context's); the context is lost and
    # the program goes on in a new one with the same handle value (the fake's primary keeps its handle, cuCtxCreate
    # reuses the destroyed slot). On main 5eff80c every record failed: 40 ms charged of 340 ms of GPU time, the 150
    # launches at full speed. Now the failed record drops the state, that launch is charged its wall time, and the
    # next launch adopts the new context: measured again (a sync or two, not one per launch)
    first = ("ctx", "0", "ctxnew", "0") if lose[0] == "ctxdestroy" else ("ctx", "0")
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), CUDA_DEVICE_SM_LIMIT="30", **FORCE)
    r = workload.run(*first, "launch", "kernel", "20", "2000", "calls", *lose, "launch", "kernel", "150", "2000",
                     "calls", *SETTLE, timeout=60)
    assert r.returncode == 0, r.stderr
    runs = r.values("launch")
    assert len(runs) == 2 and all(v[0] == "0" for v in runs), r.lines
    gpu = sum(float(v[3]) for v in runs)  # 20 + 150 kernels of 2 ms: the fake runs each exactly that long
    charged = charged_s(workload)
    print(f"fail-closed {lose[0]}: charged {charged * 1e3:.1f} ms of {gpu * 1e3:.1f} ms GPU ({charged / gpu:.2f} x)")
    assert charged >= 0.8 * gpu, (charged, gpu, r.stderr)  # 1.00 x with the fix; 0.03 x on main
    s0, s1 = _syncs(r)
    assert s1 - s0 <= 4, (s0, s1)  # the program's one sync, the stale launch's, not one per launch
    assert _measured(r) >= 160, r.stderr  # re-initialised in the new context: its launches measured again
    assert "timing events fail" not in r.stderr, r.stderr


def test_a_context_lost_with_marks_uncollected_does_not_hang_the_launches(workload: Workload) -> None:
    # the primary is reset right after the program's sync, before the library collected its last marks; they never
    # complete, and on main 5eff80c the throttle's in-flight bound (the oldest uncollected mark older than 30 ms)
    # then held every later launch forever: 6 of 8 such runs hung (the 2 others charged 40 ms of ~330). Now the
    # failed query drops the state: the loop runs at its limit and is charged
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), CUDA_DEVICE_SM_LIMIT="30", **FORCE)
    r = workload.run("ctx", "0", "launch", "kernel", "20", "2000", "ctxreset", "0", "ctx", "0",
                     "spin", "2000", "0", "0.5", "8", *SETTLE, timeout=20)
    assert r.returncode == 0, r.stderr
    [first] = r.values("launch")
    [spin] = r.values("spin")
    assert first[0] == "0" and spin[0] == "0", r.lines
    gpu = float(first[3]) + float(spin[3])
    charged = charged_s(workload)
    assert charged >= 0.8 * gpu, (charged, gpu, r.stderr)  # 1.00 x with the fix; 0.07 x on main, or a hang


def test_events_that_never_record_fail_closed(workload: Workload) -> None:
    # a driver whose events never record: on main 5eff80c nothing was ever charged (0 ms of 100 ms at 30 %, the
    # launches at full speed). Now the state is dropped once, fails again in the adopted context before any mark
    # was recorded, and every launch is unmeasured from then on: synchronous, charged its wall time; one warning
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), CUDA_DEVICE_SM_LIMIT="30",
                        FAKE_CUDA_RECORD_FAIL="1", **FORCE)
    r = workload.run("ctx", "0", "calls", "launch", "kernel", "50", "2000", "calls", *SETTLE, timeout=60)
    assert r.returncode == 0, r.stderr
    [run] = r.values("launch")
    assert run[0] == "0", r.lines
    charged = charged_s(workload)
    assert charged >= 0.8 * float(run[3]), (charged, run)  # wall time, 1.05-1.13 x with the fix; 0 on main
    s0, s1 = _syncs(r)
    assert s1 - s0 >= 48, (s0, s1)  # every launch but the first two (the drops) waited for its own work
    warn = [ln for ln in r.stderr.splitlines() if "timing events fail" in ln]
    assert len(warn) == 1, r.stderr


@pytest.mark.fake_timing
def test_a_lost_context_is_not_charged_the_idle_time_after_it(workload: Workload) -> None:
    # the first context's last marks are still uncollected when it is reset, then the program idles 500 ms: the
    # watcher finds the failure within a few ms and charges that work up to then, not up to the next launch (which
    # would charge the idle half second as GPU time). Measured: 140.4 ms charged of 140 ms of GPU time
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), CUDA_DEVICE_SM_LIMIT="30", **FORCE)
    r = workload.run("ctx", "0", "launch", "kernel", "20", "2000", "ctxreset", "0", "sleep", "500", "ctx", "0",
                     "launch", "kernel", "50", "2000", *SETTLE, timeout=60)
    assert r.returncode == 0, r.stderr
    gpu = sum(float(v[3]) for v in r.values("launch"))
    charged = charged_s(workload)
    assert 0.95 * gpu <= charged <= gpu + 0.25, (charged, gpu)
