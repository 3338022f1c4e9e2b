"""Coarse measurement (issue 18, the launch-bound cost): a tenant whose credit is ample is measured with one end
mark per >= 1 ms run of launches instead of one or two per launch; a tenant near its limit is measured on
every launch; and a coarse tenant never makes its neighbours' charges too small (it publishes no busy
interval, and a capped neighbour whose credit is low asks every tenant on the GPU to measure precisely).

Judged by the fake libcuda's own counters (driver calls per process, `calls` of driver_app) and by the GPU
time the fake's shared GPU gave each process (`FAKE_CUDA_GPU`), never by tight wall-clock figures."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import REAL_DRIVER, Workload
from .guard_runs import charged_s

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's call counters and shared GPU")

# Launch-bound: 5 us kernels, ~10 us of host time after each (waited on the clock: usleep's slack would make
# it ~60 us), a sync every 1000 launches; busy ~20-35 % of the time by the fake's accounting.
LAUNCH_BOUND = ("spin", "5", "10", "2", "1000")
WARM = ("spin", "5", "10", "0.6", "1000")  # the bucket fills and a precise window verifies the estimate


def _setup(w: Workload, limit: int, **env: str) -> None:
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                 HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT=str(limit), DRIVER_BUSY_GAP="1")
    w.env.update(env)


def _calls(line: str) -> list[int]:
    words = line.split()
    assert words[0] == "calls", line
    return [int(x) for x in words[1:]]


def _per_launch(out: str) -> dict[str, float]:
    """Driver calls per launch between the two `calls` lines of a run (after the warm-up), and the spin's
    GPU share (% of its window, the fake's accounting)."""
    lines = out.splitlines()
    c0, c1 = (_calls(ln) for ln in lines if ln.startswith("calls "))
    spin = [ln.split() for ln in lines if ln.startswith("spin ")][-1]
    assert spin[1] == "0", out
    n = c1[0] - c0[0]
    assert n > 1000, out  # enough launches to judge
    secs = float(spin[3]) - float(spin[2])
    return {"records": (c1[1] - c0[1]) / n, "queries": (c1[2] - c0[2]) / n, "elapsed": (c1[3] - c0[3]) / n,
            "share": 100 * float(spin[4]) / secs, "launches": n, "per_ms": n / (1e3 * secs)}


def _run(w: Workload, *args: str, **env: str) -> dict[str, float]:
    r = w.run("ctx", "0", *WARM, "calls", *args, "calls", timeout=60, **env)
    assert r.returncode == 0, r.stderr
    res = _per_launch("\n".join(r.lines))
    res["gpu_s"] = sum(float(words[3]) for words in r.values("spin"))  # both windows: every launch of the run
    return res


@pytest.mark.fake_timing
def test_launch_bound_tenant_with_ample_credit_is_measured_coarsely(workload: Workload) -> None:
    _setup(workload, 70)
    coarse = _run(workload, *LAUNCH_BOUND, HAMI_LAUNCH_STATS="1")
    charged = charged_s(workload)
    precise = _run(workload, *LAUNCH_BOUND, HAMI_SM_PRECISE="1")
    print(f"share-coarse: coarse {coarse['records']:.3f} records/launch at {coarse['per_ms']:.1f} launches/ms, "
          f"charged {charged / coarse['gpu_s']:.2f} x; precise {precise['records']:.3f} at {precise['per_ms']:.1f}")
    # coarse marks are charged launches x the verified charge per launch: near what really ran, not the spans
    # (the spans of this program are ~3 x its GPU time)
    assert 0.8 * coarse["gpu_s"] <= charged <= 1.5 * coarse["gpu_s"], (charged, coarse)
    assert coarse["share"] <= 55, coarse  # launch-bound, well below its limit (70 %)
    # one mark per >= 1 ms run, a calibration sample per 5 ms, a precise verification window per 100 ms: marks per
    # millisecond, so per launch they grow as a loaded host launches less; and the 1-in-32 samples, per launch.
    # Measured (2026-12-05): 0.111 per launch at 94 launches/ms idle, 0.117-0.156 at 61-27 beside two busy
    # loops, about 0.094 + 1.7 / (launches per ms) (0.094: three records a sample; two since a sample's boundary
    # is one event, test_interposer_launch_records.py pins that). The bound is that 0.12 at the idle rate; per
    # launch it failed 3 of 4 loaded runs. A mark per launch (precise: ~1.0) fails it above 3 launches/ms (here
    # 27-94).
    assert coarse["records"] <= 0.10 + 2.0 / coarse["per_ms"], (coarse, precise)
    assert coarse["queries"] <= 0.15, (coarse, precise)
    assert precise["records"] >= 0.9, (coarse, precise)  # the per-launch path: an end mark on every launch


def test_launch_path_cost_is_reported_at_exit_when_asked(workload: Workload) -> None:
    _setup(workload, 70)
    r = workload.run("ctx", "0", *WARM, HAMI_LAUNCH_STATS="1")
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stderr.splitlines() if "launch stats:" in ln]
    assert len(line) == 1, r.stderr
    for part in ("measured launches", "% coarse", "event records", "host us per launch", "marks", "harvest"):
        assert part in line[0], line
    quiet = workload.run("ctx", "0", "spin", "5", "10", "0.1", "1000")
    assert "launch stats:" not in quiet.stderr  # off unless asked


@pytest.mark.fake_timing
def test_tenant_near_its_limit_is_measured_on_every_launch(workload: Workload) -> None:
    # the same program with a limit below its busy fraction: held, so its credit never becomes ample
    _setup(workload, 10)
    held = _run(workload, *LAUNCH_BOUND)
    assert held["share"] <= 16, held  # held at its limit (10 %), with room for a loaded machine
    assert held["records"] >= 0.9, held


@pytest.mark.fake_timing
def test_gpu_bound_tenant_beside_a_coarse_candidate_is_still_held_at_its_limit(workload: Workload,
                                                                               second_workload: Workload) -> None:
    # A: GPU-bound, limit 30, held (its credit is low: it asks for precise neighbours). B: launch-bound, limit
    # 70, its credit ample: it would go coarse, publish no busy interval and A would be charged as if alone
    # (measured without the requests: A got 17 % of the GPU instead of 30). With them B stays precise and A
    # gets its limit by the fake's accounting.
    _setup(workload, 30, DRIVER_BUSY_GAP="0")
    _setup(second_workload, 70, DRIVER_BUSY_GAP="0")
    a = workload.start("ctx", "0", "spin", "2000", "0", "3", "4")
    b = second_workload.start("ctx", "0", "calls", "spin", "50", "20", "3", "1000000", "calls")
    out_a, err_a = a.communicate(timeout=60)
    out_b, err_b = b.communicate(timeout=60)
    spin = out_a.split("spin ")[1].split()
    assert spin[0] == "0", err_a
    share_a = 100 * float(spin[3]) / (float(spin[2]) - float(spin[1]))
    lines = out_b.splitlines()
    c0, c1 = (_calls(ln) for ln in lines if ln.startswith("calls "))
    records_b = (c1[1] - c0[1]) / max(1, c1[0] - c0[0])
    assert abs(share_a - 30) <= 5, (share_a, records_b, err_a[-300:])
    assert records_b >= 0.9, (share_a, records_b)  # B measured every launch while A needed it


def test_coarse_candidate_measures_every_launch_while_a_held_neighbour_asks(workload: Workload,
                                                                          second_workload: Workload) -> None:
    # The pair above judged by B's driver calls alone (a CI guard, host-independent): A, GPU-bound at 30 %, is
    # held all its run once its first credit is spent, so it asks for precision at least every 200 ms whatever
    # the host's speed; B, launch-bound (LAUNCH_BOUND's loop) with ample credit at 70 %, runs its whole window
    # inside A's (started 0.5 s after A, ending ~1 s before it) and measured precisely beside a neighbour records
    # a start and an end mark per launch (2.000 on this 2-core VM, idle, loaded or pinned). Built without the
    # requests (-DHAMI_NO_PRECISION_REQUESTS) it went coarse: 0.40-0.50 marks per launch, and A, charged as if B
    # were idle, got 17 % of the GPU instead of 30 (the test above's docstring; its own B, 50 us kernels at 70 %,
    # no longer goes coarse without the requests: that test passes on such a build too).
    _setup(workload, 30, DRIVER_BUSY_GAP="0")
    _setup(second_workload, 70)
    a = workload.start("ctx", "0", "ready", "spin", "2000", "0", "2.5", "4")
    assert [a.stdout.readline().strip() for _ in range(2)] == ["ctx 0", "ready"]
    time.sleep(0.5)  # A's bucket (160 ms deep) is spent: it is held from here on
    r = second_workload.run("ctx", "0", "calls", *LAUNCH_BOUND[:3], "1", "1000", "calls", timeout=60)
    out_a, err_a = a.communicate(timeout=60)
    assert a.returncode == 0, err_a
    assert r.returncode == 0, r.stderr
    c0, c1 = ([int(x) for x in words] for words in r.values("calls"))
    records_b = (c1[1] - c0[1]) / max(1, c1[0] - c0[0])
    print(f"share-coarse guard: B recorded {records_b:.3f} marks per launch over {c1[0] - c0[0]} launches")
    assert c1[0] - c0[0] > 1000, (c0, c1)
    assert records_b >= 1.5, records_b


@pytest.mark.fake_timing
def test_fitting_launch_bound_pair_both_measured_coarsely_within_limits(workload: Workload,
                                                                        second_workload: Workload) -> None:
    # two launch-bound tenants whose busy time fits: neither is held, neither asks for precision, both coarse;
    # each still gets no more GPU time than its limit allows (the fake's accounting)
    light = ("spin", "5", "30")  # ~35 us per launch: busy well below 50 % even when the two overlap
    for w in (workload, second_workload):
        _setup(w, 50, HAMI_LAUNCH_STATS="1")
    pa = workload.start("ctx", "0", *light, "0.6", "1000", "calls", *light, "2", "1000", "calls")
    pb = second_workload.start("ctx", "0", *light, "0.6", "1000", "calls", *light, "2", "1000", "calls")
    outs = [p.communicate(timeout=60) for p in (pa, pb)]
    res = [_per_launch(out) for out, _ in outs]
    coarse = [float(re.search(r"\(([\d.]+) % coarse\)", err).group(1)) for _, err in outs]
    for r, c in zip(res, coarse, strict=True):
        assert r["share"] <= 50, (res, coarse)
        # coarse most of the time (the library's own count, warm-up included). Per launch: about one mark per
        # ms of launches plus the verification windows, so fewer launches per ms (a loaded machine) mean more
        # marks per launch; measured precisely a shared tenant makes 2 (a start and an end mark)
        assert c >= 60, (res, coarse)
        assert r["records"] <= 0.5, (res, coarse)
