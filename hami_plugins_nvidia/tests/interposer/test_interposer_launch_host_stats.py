"""The launch stats line's host figures (issue 18: on the H100 an inference loop lost 4.4 us a launch under a limit
while the library's own sections took 0.65 us): the driver's own launch call timed on the outer samples, the
watcher's wake-ups and CPU time, the exiting thread's CPU time and context switches, so one GPU run says whether the
driver, the watcher or the core is where the time goes. Also the watcher's back-off while the launching thread collects
and its ceiling HAMI_WATCHER_BUSY_POLL_US and the bench-only wrap build (-DHAMI_BENCH_WRAP_ONLY), which times the driver's
call through the library with none of the library's work around it."""

from __future__ import annotations

import re

import pytest

from .conftest import REAL_DRIVER, Workload

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="times the fake's modelled launch cost")

HOST = re.compile(r"driver's launch call ([\d.]+) us; watcher (\d+) wakes \((\d+) left to the launcher\), ([\d.]+) ms "
                  r"CPU; this thread ([\d.]+) ms CPU, (\d+) voluntary \+ (\d+) involuntary switches")
SECTIONS = re.compile(r"before the launch ([\d.]+), after the launch ([\d.]+)")
LAUNCH_NS = 20000  # the fake's modelled cost of one cuLaunchKernel (FAKE_CUDA_COSTS_NS)


def _stats(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if "launch stats:" in ln]
    assert len(lines) == 1, stderr
    return lines[0]


def test_the_driver_call_is_timed_apart_from_the_library(workload: Workload) -> None:
    # 3,200 launches that each cost the fake 20 us of host time: the driver's call is reported at >= 20 us, the
    # library's own time before and after it far below (on main the line had no driver figure at all)
    workload.env.update(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="90", HAMI_LAUNCH_STATS="1",
                        FAKE_CUDA_COSTS_NS=f"launch={LAUNCH_NS}")
    r = workload.run("ctx", "0", "launch", "kernel", "3200", "0", timeout=60)
    assert r.returncode == 0, r.stderr
    line = _stats(r.stderr)
    m = HOST.search(line)
    assert m, line
    driver = float(m.group(1))
    assert LAUNCH_NS / 1e3 <= driver < 10 * LAUNCH_NS / 1e3, line
    before, after = (float(x) for x in SECTIONS.search(line).groups())
    assert before + after < driver, line
    cpu = float(m.group(5))
    assert cpu >= 3200 * LAUNCH_NS / 1e6 * 0.9, line  # the fake's cost is spent on this thread's CPU


def test_the_sections_are_reported_to_the_nanosecond_and_every_launch_counted(workload: Workload) -> None:
    # the library's own sections on the fake are tens of nanoseconds: at two decimals of a microsecond (before) they
    # read 0.01-0.02 and a 30 % change hid in the rounding (bench/launch_path_cost.py --stats). The per-launch counts
    # (measured, coarse, fast path) are kept per device under its lock and summed at exit: still every launch
    workload.env.update(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="70", HAMI_LAUNCH_STATS="1")
    r = workload.run("ctx", "0", "launch", "kernel", "3200", "0", "spin", "0", "20", "0.3", "1000000000", timeout=60)
    assert r.returncode == 0, r.stderr
    line = _stats(r.stderr)
    sections = re.search(r"host us per launch \([^)]*\): ([^;]+);", line)
    assert sections, line
    values = re.findall(r"[a-z' ]+ (\d+\.\d+)", sections.group(1))
    assert len(values) == 7 and all(len(v.split(".")[1]) == 3 for v in values), line
    spun = int(next(w for w in r.lines if w.startswith("spin ")).split()[5])
    counts = re.search(r"launch stats: (\d+) measured launches \(([\d.]+) % coarse\); ([\d.]+) % on the throttle's "
                       r"fast path", line)
    assert counts and int(counts.group(1)) == 3200 + spun, (line, spun)
    assert 0 < float(counts.group(3)) <= 100 and float(counts.group(2)) <= 100, line


def _wakes(workload: Workload, poll: str | None) -> tuple[int, int, str]:
    env = dict(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="90", HAMI_LAUNCH_STATS="1")
    if poll is not None:
        env["HAMI_WATCHER_BUSY_POLL_US"] = poll
    r = workload.run("ctx", "0", "spin", "20", "20", "0.8", "1000000", timeout=60, **env)
    assert r.returncode == 0, r.stderr
    line = _stats(r.stderr)
    m = HOST.search(line)
    assert m, line
    return int(m.group(2)), int(m.group(3)), r.stderr


def test_the_watcher_backs_off_while_the_launcher_collects(workload: Workload) -> None:
    # a launch loop of 0.8 s that never syncs: the launcher collects itself, so every wake after the first leaves it
    # the collecting. By default those wakes back off to one a millisecond (watcher.c; before: every 100 us, ~4,000 a
    # second on this VM, each preempting a launcher on its core); HAMI_WATCHER_BUSY_POLL_US=100 keeps that old poll
    wakes, deferred, _ = _wakes(workload, None)
    assert deferred > 0.5 * wakes, (wakes, deferred)
    assert wakes <= 0.8 / 1e-3 * 1.25 + 20, wakes  # at most one wake a millisecond (and the ramp from 100 us)
    fast, fast_left, _ = _wakes(workload, "100")
    assert fast_left > 0.5 * fast, (fast, fast_left)
    assert fast > 1600, fast  # > 2,000 a second, however loaded the VM (every 100 us would be 8,000)
    assert wakes * 2 < fast, (wakes, fast)


def test_a_pause_is_still_collected_under_the_back_off(workload: Workload) -> None:
    # 160 cycles of 100 launches that each cost the fake 20 us of host time (2 ms of launching: the launcher collects,
    # the watcher backs off towards 1 ms) and 3 ms of host time with no launch and no sync: the watcher must still
    # collect in each pause (closing the burst's last coarse run, keeping the board fresh), not sleep through it (on
    # this VM: ~3.5 collecting wakes a cycle). The back-off's saving itself is judged by the steady loop above: here
    # the old 100 us poll's deferred wakes shrink under load (1,219 wakes, 747 deferred in one loaded run)
    env = dict(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="90", HAMI_LAUNCH_STATS="1",
               FAKE_CUDA_COSTS_NS="launch=20000")
    cycles = 160
    r = workload.run("ctx", "0", *(["burst", "kernel", "100", "5", "sleep", "3"] * cycles), timeout=60, **env)
    assert r.returncode == 0, r.stderr
    m = HOST.search(_stats(r.stderr))
    assert m, r.stderr
    wakes, left = int(m.group(2)), int(m.group(3))
    assert wakes - left >= cycles, (wakes, left)  # at least one collecting wake a pause, on average
    assert left > 0, (wakes, left)  # and the launching stretches were left to the launcher


def test_the_poll_holds_while_a_launch_holds_the_lock(workload: Workload) -> None:
    # launches that each cost 18 us of host time (an inference loop's, on the H100) hold the device's lock most of the
    # time, so the watcher mostly finds it taken: that wake too waits the busy poll (before: every 100 us whatever the
    # knob, 6,500 wakes in 1.4 s on this VM, each preempting the launcher when they share a core)
    env = dict(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="90", HAMI_LAUNCH_STATS="1",
               FAKE_CUDA_COSTS_NS="launch=18000")
    counts = {}
    for poll in ("100", "1000"):
        r = workload.run("ctx", "0", "launch", "kernel", "30000", "0", timeout=60, HAMI_WATCHER_BUSY_POLL_US=poll, **env)
        assert r.returncode == 0, r.stderr
        w = next(ln for ln in r.lines if ln.startswith("launch ")).split()
        m = HOST.search(_stats(r.stderr))
        assert m, r.stderr
        counts[poll] = (int(m.group(2)), int(m.group(3)), float(w[3]) - float(w[2]))
    (fast, fast_left, _), (slow, _, secs) = counts["100"], counts["1000"]
    assert fast_left > 0.5 * fast, counts  # the launcher held the lock at most wakes
    assert slow <= secs / 1e-3 * 1.25 + 20, counts  # about one wake a millisecond, not one per 100 us
    assert slow * 2 < fast, counts


@pytest.mark.parametrize("bad", ["50", "1001", "abc", "-1"])
def test_a_bad_poll_is_refused_in_one_line_and_the_default_kept(workload: Workload, bad: str) -> None:
    wakes, _, stderr = _wakes(workload, bad)
    warn = [ln for ln in stderr.splitlines() if "HAMI_WATCHER_BUSY_POLL_US" in ln]
    assert len(warn) == 1 and f'"{bad}"' in warn[0] and "using 1000" in warn[0], stderr
    assert wakes <= 0.8 / 1e-3 * 1.25 + 20, wakes  # the default's 1 ms ceiling, not the value asked for (50: more)


def test_the_wrap_build_times_the_driver_call_and_does_nothing_else(workload: Workload, variant_libs) -> None:
    # no limit at all: the shipped library hands out the driver's own launch entry (no stats line); the wrap build
    # hands out its wrapper, which times the driver's call and holds, marks and charges nothing
    lib = variant_libs({"wrap": ["HAMI_BENCH_WRAP_ONLY"]})["wrap"]
    env = dict(HAMI_LAUNCH_STATS="1", FAKE_CUDA_COSTS_NS=f"launch={LAUNCH_NS}", LD_PRELOAD=str(lib))
    r = workload.run("ctx", "0", "launch", "kernel", "3200", "0", timeout=60, **env)
    assert r.returncode == 0, r.stderr
    line = _stats(r.stderr)
    assert re.search(r"launch stats: 3200 measured launches", line), line
    assert "0.000 event records" in line, line
    m = HOST.search(line)
    assert m and float(m.group(1)) >= LAUNCH_NS / 1e3, line
    assert int(m.group(2)) == 0, line  # no watcher: nothing to collect
    shipped = workload.run("ctx", "0", "launch", "kernel", "3200", "0", timeout=60, HAMI_LAUNCH_STATS="1",
                           FAKE_CUDA_COSTS_NS=f"launch={LAUNCH_NS}")
    assert shipped.returncode == 0 and "launch stats:" not in shipped.stderr, shipped.stderr


HELD = re.compile(r"; sampled launches held: before the launch ([\d.]+), throttle ([\d.]+) us per launch;")


def _held(workload: Workload, *args: str, **extra: str) -> tuple[float, float, float, float, str]:
    """(before the launch, throttle, and the sampled launches' held sleeps in each, us per launch; the stats line)."""
    r = workload.run("ctx", "0", *args, timeout=60, **extra)
    assert r.returncode == 0, r.stderr
    line = _stats(r.stderr)
    m, t = HELD.search(line), re.search(r", throttle ([\d.]+),", line)
    assert m and t, line
    return float(SECTIONS.search(line).group(1)), float(t.group(1)), float(m.group(1)), float(m.group(2)), line


def test_the_sampled_launches_sleeps_while_held_are_reported_apart(workload: Workload) -> None:
    # pausegap (issue 18 record 14): a held tenant's "before the launch" read 59 us a launch, 58 of them the throttle's
    # sleeps, which the judge took for the launch path's cost. The sleeps of the sampled launches are reported apart,
    # inside their section: the cost read without them stays the path's own. 300 us kernels queued with no sync at 95 %:
    # the in-flight bound and the limit hold it (tens of holds; a sample catches one or more most runs)
    workload.env.update(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="95", HAMI_LAUNCH_STATS="1")
    before, throttle, held_b, held_t, line = _held(workload, "spin", "300", "0", "2", "100000000")
    assert re.search(r"; held [1-9]\d* times", line), line
    assert held_b <= before + 0.01 and held_t <= throttle + 0.01, line  # inside their sections
    assert before - held_b < 20, line  # the path's own cost on the fake: a few us (a caught hold: hundreds)
    # never held (a fresh container far below its limit): nothing reported held
    _, _, held_b, held_t, line = _held(workload, "spin", "5", "20", "0.3", "64", CUDA_DEVICE_SM_LIMIT="90",
                                       CUDA_DEVICE_MEMORY_SHARED_CACHE=str(workload.tmp / "region-2"))
    assert re.search(r"; held 0 times", line) and held_b == 0 and held_t == 0, line
