"""The pair probe's bench build (issue 18, pairprobe Step 0; bench/issue18_gpu.sh stage 25): HAMI_BENCH_PAIRPROBE adds
counters to the launch path (launch_int.h: the charge by rule, the one-launch precise spans by kind, the start marks
before / after their submission, the estimate per coarse launch, the samples) and prints them on the launch stats line
("; pairprobe: ..."), which launch_cost.py keeps. Here, on the fake libcuda: the record's sliced pair
(docs/results/2026-12-07-fake-pairprobe.md, reproduction; shorter) with the probe build prints the section, its charge
by rule sums to what the region was charged, its counts hang together; the shipped build prints no such section and
carries no marker (compiled out: build.py passes no define)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Workload, _load, fake_only
from .guard_runs import charged_s

ladder = _load("hami_launch_ladder_pp_under_test", Path(__file__).resolve().parents[2] / "bench" / "launch_ladder.py")
stats_fields = ladder.stats_fields

pytestmark = [fake_only]

H100_COSTS = "launch=3500,record=1800,query=1500,elapsed=1500,sync=2000"


@pytest.fixture(scope="module")
def probe_lib(variant_libs) -> Path:
    return variant_libs({"pairprobe": ["HAMI_BENCH_PAIRPROBE"]})["pairprobe"]


def _pair(workload: Workload, second_workload: Workload, lib: Path, secs: str = "1") -> list[tuple[float, str]]:
    """The record's pair: two inference-shaped loops (5 us kernels 12 us apart, a sync per 183) at force 50 + 50 on one
    time-sliced fake GPU (2 ms slices, 10 us switches, the H100's driver costs), each in its own container, pinned to
    core 0 / 1 where there are two: (charged seconds, stderr) each."""
    gpu = str(workload.tmp.parent / "gpu")
    pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    procs = []
    for k, w in enumerate((workload, second_workload)):
        env = w.env_for(True, LD_PRELOAD=str(lib), FAKE_CUDA_GPU=gpu, FAKE_CUDA_SLICE_US="2000",
                        FAKE_CUDA_SWITCH_US="10", FAKE_CUDA_SYNC_POLL_US="10", FAKE_CUDA_COSTS_NS=H100_COSTS,
                        DRIVER_BUSY_GAP="1", CUDA_DEVICE_SM_LIMIT="50", GPU_CORE_UTILIZATION_POLICY="force",
                        HAMI_LAUNCH_STATS="1")
        args = [str(w.tc.app), "ctx", "0", "spin", "5", "12", "0.4", "183", "spin", "5", "12", secs, "183", "gpu"]
        if pin:
            args = ["taskset", "-c", str(k), *args]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    out = []
    for w, p in zip((workload, second_workload), procs, strict=True):
        try:
            _, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("the pair ran past 90 s")
        assert p.returncode == 0, err[-2000:]
        stats = next((ln for ln in err.splitlines() if "launch stats:" in ln), "")
        assert stats, err[-2000:]
        out.append((charged_s(w), stats))
    return out


def test_the_ladder_parses_the_pairprobe_section() -> None:
    line = ("launch stats: 100 launches (40.0 % coarse); board looks 3 (1 at the quiet pace), NVML process counts 2; "
            "pairprobe: charge by rule gap 1.50, deferred 2.25, estimate 30.00, precise 10.10, doubt 0.00, other 0.05 "
            "ms; one-launch precise spans chained 12/8.50 us, sub-floored 30/5.25, start-mark 7/6.00; start marks "
            "before/after submission 4/33; coarse estimate 7.75 us; samples 9/5.50 us")
    f = stats_fields(line)
    assert f["looks"] == 3 and f["coarse_pct"] == 40.0
    want = dict(pp_gap_ms=1.5, pp_deferred_ms=2.25, pp_estimate_ms=30.0, pp_precise_ms=10.1, pp_doubt_ms=0.0,
                pp_other_ms=0.05, pp_chained_n=12, pp_chained_us=8.5, pp_subfloored_n=30, pp_subfloored_us=5.25,
                pp_startmark_n=7, pp_startmark_us=6.0, pp_start_before_n=4, pp_start_after_n=33, pp_estimate_us=7.75,
                pp_samples_n=9, pp_samples_us=5.5)
    assert {k: v for k, v in f.items() if k.startswith("pp_")} == want
    # a line without the section (the shipped build) has none of its fields; a cut section is not half-read
    assert not any(k.startswith("pp_") for k in stats_fields(line[: line.index("; pairprobe")]))
    assert not any(k.startswith("pp_") for k in stats_fields(line[: line.index("; coarse estimate")]))


def test_the_shipped_library_has_no_pairprobe(toolchain, probe_lib: Path) -> None:
    assert b"HAMI_BENCH_PAIRPROBE" not in toolchain.lib.read_bytes()
    assert b"pairprobe" not in toolchain.lib.read_bytes()
    assert b"HAMI_BENCH_PAIRPROBE=1\0" in probe_lib.read_bytes()


def test_the_probe_build_prints_consistent_counters(workload: Workload, second_workload: Workload,
                                                     probe_lib: Path) -> None:
    for charged, stats in _pair(workload, second_workload, probe_lib):
        print(f"charged {charged:.3f} s; {stats[stats.find('; pairprobe'):]}")
        f = stats_fields(stats)
        assert "pp_gap_ms" in f, stats
        parts = sum(f[f"pp_{k}_ms"] for k in ("gap", "deferred", "estimate", "precise", "doubt", "other"))
        # every charge goes through consume(), which sums it by rule: the parts are the region's charge (the stats
        # line is printed at exit, after the last collection; rounding and a late settle inside 5 %)
        assert charged > 0.05 and abs(parts / 1e3 - charged) <= 0.05 * charged, (parts, charged, stats)
        # a shared pair at force 50 runs both ways: precise spans (shared: settled deferred) and a coarse estimate
        assert f["pp_precise_ms"] + f["pp_deferred_ms"] > 0 and f["pp_estimate_ms"] > 0, stats
        spans = f["pp_chained_n"] + f["pp_subfloored_n"] + f["pp_startmark_n"]
        assert spans > 0, stats
        assert f["pp_start_before_n"] + f["pp_start_after_n"] > 0, stats
        # averages of kernels of 5 us (the fake's time slices stretch some spans; none is shorter than nothing)
        for k in ("chained", "subfloored", "startmark"):
            assert f[f"pp_{k}_n"] == 0 or f[f"pp_{k}_us"] > 0, (k, stats)
        assert 0 < f["pp_estimate_us"] < 1000, stats
        assert f["pp_samples_n"] == 0 or f["pp_samples_us"] > 0, stats


def test_the_shipped_build_prints_no_pairprobe_section(workload: Workload, second_workload: Workload) -> None:
    for charged, stats in _pair(workload, second_workload, workload.tc.lib, secs="0.3"):
        assert charged > 0 and "pairprobe" not in stats, stats
        assert "pp_gap_ms" not in stats_fields(stats)
