"""HAMI_SM_TURNS_STEPPERS=0 (issue 18, stepslice; off by default until the H100's A/B, bench/issue18_gpu.sh stage 37): a
tenant that steps one launch at a time keeps out of turns, so a JAX-shaped pair time-slices while a training pair still
takes turns, on the fake libcuda.

bench/real_workloads.py's JAX program keeps one matmul outstanding and waits for it (~0.15-0.35 ms of host time a step).
Taking turns, each owner's drain gaps idled in its own window (H100 record 18: 88.8 % of the native pair); on the fake
the JAX pairs kept more of the GPU time-slicing (fillside: 82.5 / 86.1 % against ~80-81 taking turns), and since
jaxslice a time-sliced 30 % tenant is charged ~30 %. With the knob at 0 a tenant whose own last busy intervals (its
board ring: turns.c owner_steps on its own slot) were 1-4 ms each and at most 4 ms apart within the last second does
not take part (turn_wanted): its record carries no turn bit. A training step's interval is tens of ms: it never reads
as stepping. Judged by the library's own "turns on" figure (the time it took turns), not a host-speed figure."""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload, run_with_bad_knob
from .guard_runs import JAX_STEP, SLICED, pair_turns

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model")

# the training-like step (test_interposer_turns.py TRAIN, bench/turns.py case "train"): 150 kernels of 400 us then 600
# of 20 us, a sync, 2 ms of host time: a busy interval of ~72 ms a step
TRAIN = ("spin", "20", "0", "2", "750")
TRAIN_ENV = {"DRIVER_SPIN_MIX": "400:150:600", "DRIVER_SPIN_STEP_GAP_US": "2000"}


def _pair(a: Workload, b: Workload, limits: tuple[int, int], prog: tuple[str, ...], steppers: str | None,
          extra: dict[str, str] | None = None) -> list[float]:
    """Both tenants run prog at their limits under the default policy; each one's "turns on" (ms)."""
    for w, lim in zip((a, b), limits, strict=True):
        w.env.clear()
        w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="default",
                     HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT=str(lim), HAMI_LAUNCH_STATS="1", HAMI_SM_TURNS="1",
                     **SLICED, **(extra or {}))
        if steppers is not None:
            w.env["HAMI_SM_TURNS_STEPPERS"] = steppers
    return [float(m.group(1)) for _, m in pair_turns(a, b, prog)]


def test_a_jax_pair_time_slices_and_a_training_pair_takes_turns_with_steppers_off(workload: Workload,
                                                                                  second_workload: Workload) -> None:
    # Fake, this 2-core VM (docs/results/2026-12-07-fake-stepslice.md, bench/turns.py, 4 rounds): the JAX pairs took
    # turns ~2.97 s of their 3 s as shipped; with the knob at 0 ~0.3-0.5 s (the start, until 4 steps with no credit wait
    # between read as stepping), then time-sliced. The training pairs took turns ~2.9 s with the knob as without.
    shipped = _pair(workload, second_workload, (30, 70), JAX_STEP, None)
    off = _pair(workload, second_workload, (30, 70), JAX_STEP, "0")
    train = _pair(workload, second_workload, (50, 50), TRAIN, "0", TRAIN_ENV)
    print(f"turns on, ms: jax 30 + 70 shipped {shipped}, steppers off {off}; training 50 + 50 steppers off {train}")
    assert all(t > 1500 for t in shipped), shipped  # as shipped a JAX pair takes turns
    assert all(t < 1000 for t in off), off  # steppers off: it time-slices (after ~0.3-0.5 s taking turns at the start)
    assert all(t > 1000 for t in train), train  # a training step is no step of one launch: it still takes turns


@pytest.mark.parametrize("bad", ["2", "yes", "off", "-1", "0 ", "00"])
def test_a_bad_steppers_value_is_named_in_one_line_and_the_default_kept(workload: Workload, bad: str) -> None:
    stderr = run_with_bad_knob(workload, "HAMI_SM_TURNS_STEPPERS", bad, "expected 1 or 0")
    line = next(ln for ln in stderr.splitlines() if "HAMI_SM_TURNS_STEPPERS" in ln)
    assert line.rstrip().endswith("1 kept"), stderr


@pytest.mark.parametrize("value", [None, "0", "1"])
def test_a_steppers_value_of_0_or_1_or_none_is_taken_silently(workload: Workload, value: str | None) -> None:
    if value is not None:
        workload.env["HAMI_SM_TURNS_STEPPERS"] = value
    workload.env.update(HAMI_LAUNCH_STATS="1")
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    assert "HAMI_SM_TURNS_STEPPERS" not in r.stderr, r.stderr
