"""Fewer coarse samples alone far below the limit (issue 18, inferalone; launch.c sample_rate). The H200's inference
loop alone at 70 % (busy 27.5 %): 0.093 event records and as many elapsed-time calls a launch, 2/3 of them the
1-in-32 coarse samples (two records each). Alone on the GPU's board and charged under 60 % of its limit, a tenant
draws HAMI_SM_SAMPLE_FAR (default 4) times fewer samples, each weighing as many in the samples' average; beside a
neighbour, or charged nearer its limit, the default rate. The limits themselves are held by the coarse tests at any
rate a tenant may set (test_interposer_coarse_jump.py at 1 in 128 and 256, _coarse_attack, _coarse_sample_tail).
Judged by the stats line's draws and the fake's driver-call counters, not by timings."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import REAL_DRIVER, Workload, run_with_bad_knob

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's call counters and shared GPU")

# the inference-shaped loop of test_interposer_launch_records.py: 5 us kernels, 20 us of busy host time after each,
# a sync every 195 launches (~20 % of the fake GPU), after a 0.4 s warm-up
WARM = ("spin", "5", "20", "0.4", "195")
LOOP = ("spin", "5", "20", "1.5", "195")
SAMPLES = re.compile(r"coarse samples 1 in (\d+) \((\d+) drawn\), 1 in (\d+) alone far below the limit \((\d+) of them\)")


def _run(w: Workload, limit: int, loop: tuple[str, ...] = LOOP, **env: str) -> dict[str, float]:
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                 HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT=str(limit), DRIVER_BUSY_GAP="1",
                 HAMI_LAUNCH_STATS="1", **env)
    r = w.run("ctx", "0", *loop[:3], "0.4", *loop[4:], "calls", *loop, "calls", timeout=60)
    assert r.returncode == 0, r.stderr
    m = SAMPLES.search(r.stderr)
    assert m, r.stderr
    s = [ln for ln in r.stderr.splitlines() if "launch stats:" in ln][0]
    launches = int(re.search(r"(\d+) measured launches", s).group(1))
    coarse = float(re.search(r"\(([\d.]+) % coarse\)", s).group(1)) / 100 * launches
    c0, c1 = ([int(x) for x in words] for words in r.values("calls"))
    n = c1[0] - c0[0]
    return {"every": int(m.group(1)), "drawn": int(m.group(2)), "far_every": int(m.group(3)),
            "far": int(m.group(4)), "coarse": coarse, "records": (c1[1] - c0[1]) / n,
            "elapsed": (c1[3] - c0[3]) / n, "stderr": r.stderr}


def test_alone_far_below_the_limit_draws_four_times_fewer_samples(workload: Workload) -> None:
    # main (4032479): no such rate; one coarse launch in 32 drawn, ~0.10-0.13 records a launch on this loop
    far = _run(workload, 70)
    print(f"sample-far: {far['drawn']} drawn ({far['far']} far) of {far['coarse']:.0f} coarse, "
          f"{far['records']:.3f} records a launch")
    assert far["every"] == 32 and far["far_every"] == 128, far["stderr"]
    assert far["coarse"] > 5000, far
    assert far["far"] >= 0.8 * far["drawn"], far  # nearly all its draws at the far rate (the start is not far)
    expect = far["coarse"] / 128
    assert far["drawn"] <= 2 * expect + 6 * expect ** 0.5, far  # 1 in 32 would draw 4 x as many
    assert far["drawn"] >= 0.5 * expect - 3 * expect ** 0.5, far  # still sampled


def test_the_knob_at_one_keeps_the_default_rate_and_costs_more_records(workload: Workload) -> None:
    far = _run(workload, 70)
    one = _run(workload, 70, HAMI_SM_SAMPLE_FAR="1")
    print(f"sample-far: records a launch far {far['records']:.3f}, default rate {one['records']:.3f}")
    assert one["far"] == 0 and one["far_every"] == 32, one["stderr"]
    expect = one["coarse"] / 32
    assert abs(one["drawn"] - expect) <= 6 * expect ** 0.5 + 2, one
    # two records a sample: 3/4 of 2/32 a coarse launch fewer (~0.047), most of the coarse path's records
    assert far["records"] <= one["records"] - 0.02, (far["records"], one["records"])
    assert far["elapsed"] <= one["elapsed"] - 0.02, (far["elapsed"], one["elapsed"])


@pytest.mark.fake_timing
def test_charged_near_its_limit_the_default_rate_applies(workload: Workload) -> None:
    # 5 us kernels 10 us apart (~30 % of the fake GPU) at a limit of 40: coarse (its credit ample), charged above 60 %
    # of its limit (24 %), so never "far below" (this VM: 0 of 2001 draws far; the same loop at 70: 37 of 2488).
    # A fake-timing bench (not in `make test`): the loop's busy share is the host's speed; on the session-24 VM it ran
    # at ~37 %, near its limit of 40, measured precisely (credit not ample), with no coarse launch to draw from
    near = _run(workload, 40, ("spin", "5", "10", "1.5", "195"))
    print(f"sample-far near: {near['drawn']} drawn ({near['far']} far) of {near['coarse']:.0f} coarse")
    if near["coarse"] <= 1000:  # the premise, not the rule: a loop that ran precise drew nothing to judge
        pytest.skip(f"premise not reached on this host: {near['coarse']:.0f} coarse launches at a limit of 40 "
                    f"(the loop's busy share near the limit kept it precise)")
    assert near["far"] <= 0.1 * max(near["drawn"], 1), near


def test_beside_a_neighbour_the_default_rate_applies(workload: Workload, second_workload: Workload) -> None:
    # another container on the same board launching (limit 30, 5 us kernels 200 us apart): not alone, every draw at
    # the default rate once it is seen (within the board's 1 ms refresh)
    second_workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                               CUDA_DEVICE_SM_LIMIT="30", DRIVER_BUSY_GAP="1")
    nb = second_workload.start("ctx", "0", "spin", "5", "200", "6", "1000000")
    time.sleep(0.5)
    try:
        beside = _run(workload, 70)
    finally:
        nb.kill()
    assert beside["drawn"] > 0 and beside["far"] <= 0.1 * beside["drawn"], beside


@pytest.mark.parametrize("bad", ["0", "9", "4x", "-1", " "])
def test_a_bad_far_factor_is_named_in_one_line_and_the_default_kept(workload: Workload, bad: str) -> None:
    stderr = run_with_bad_knob(workload, "HAMI_SM_SAMPLE_FAR", bad, "[1, 8]")
    assert "1 in 128 alone far below" in stderr, stderr


def test_the_far_rate_never_goes_below_one_sample_in_256(workload: Workload) -> None:
    workload.env.update(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="70", HAMI_LAUNCH_STATS="1",
                        HAMI_SM_SAMPLE_EVERY="128", HAMI_SM_SAMPLE_FAR="8")
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    assert "coarse samples 1 in 128 (" in r.stderr and "1 in 256 alone far below" in r.stderr, r.stderr
