"""Shorter verification windows alone far below the limit (issue 18, lightpath; launch.c verify_due). On the H100
(record 15) the inference loop alone at 70 % (busy ~20 %) made 0.104 event records and elapsed-time calls a launch,
half of them the precise verification windows' end marks (24,632 precise launches for 189 verifications). In the
state that draws fewer samples (sample_rate: alone on the GPU's board, charged under 60 % of its limit) a window
closes after HAMI_SM_VERIFY_FAR (default 2) times fewer launches and less time; beside a neighbour, the full window.
The limits are held by the coarse tests (test_interposer_coarse_verify.py's phase changes, _coarse_attack,
_coarse_jump, _coarse_sample_tail, which run alone). Judged by the stats line and the fake's driver-call counters."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import REAL_DRIVER, Workload, run_with_bad_knob
from .test_interposer_sample_far import _run

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's call counters and shared GPU")


def _window(r: dict) -> float:
    """Precise launches for want of a verified window, per verification: the windows' length in launches (the
    start's precise launches before its first window count too, spread over the verifications)."""
    s = r["stderr"]
    unverified = int(re.search(r"not verified (\d+)", s).group(1))
    verified = int(re.search(r"verifications (\d+),", s).group(1))
    assert verified >= 5, s
    return unverified / verified


def test_alone_far_below_the_limit_the_windows_are_half_as_long(workload: Workload) -> None:
    # main (ff71ad5): ~130 precise launches a verification at both settings, the same records a launch
    far = _run(workload, 70)
    full = _run(workload, 70, HAMI_SM_VERIFY_FAR="1")
    print(f"verify-far: {_window(far):.0f} vs {_window(full):.0f} launches a window, records a launch "
          f"{far['records']:.4f} vs {full['records']:.4f}")
    assert _window(full) >= 120, full["stderr"]
    assert _window(far) <= 100, far["stderr"]
    # one end mark per window launch: ~64 of ~5000 launches a phase fewer (~0.013 a launch); the samples' draws
    # (~0.016 a launch at 1 in 128) vary by well under 0.003
    assert far["records"] <= full["records"] - 0.005, (far["records"], full["records"])
    assert far["elapsed"] <= full["elapsed"] - 0.005, (far["elapsed"], full["elapsed"])


def test_beside_a_neighbour_the_window_is_full(workload: Workload, second_workload: Workload) -> None:
    second_workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                               CUDA_DEVICE_SM_LIMIT="30", DRIVER_BUSY_GAP="1")
    nb = second_workload.start("ctx", "0", "spin", "5", "200", "6", "1000000")
    time.sleep(0.5)
    try:
        beside = _run(workload, 70)
    finally:
        nb.kill()
    print(f"verify-far beside: {_window(beside):.0f} launches a window")
    assert _window(beside) >= 120, beside["stderr"]


@pytest.mark.parametrize("bad", ["0", "5", "2x", "-1", " "])
def test_a_bad_verify_factor_is_named_in_one_line_and_the_default_kept(workload: Workload, bad: str) -> None:
    run_with_bad_knob(workload, "HAMI_SM_VERIFY_FAR", bad, "[1, 4]")
