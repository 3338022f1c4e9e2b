"""A capped process's first launch (issue 18: on the H100 every capped inference loop was held once at start,
~185 ms at 70 %, for a limit it never reaches). Before, the first capped launch reset the container's refill clock
to itself, so the bucket started empty, the first launches found no credit and the square wave opened with a whole
off-phase (earning the resume credit). Now only a process that launched before (an uncapped spell) resets it; a
first launch keeps the clock of the container's last refill (for a new container, its region's creation), so it
starts with what its share earned meanwhile, never more than the bucket's depth: the limit still holds."""

from __future__ import annotations

import re

import pytest

from .conftest import REAL_DRIVER, Workload

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU accounting")

HELD = re.compile(r"held (\d+) times, ([\d.]+) ms")
BURST_S = 0.050 + 0.030  # HAMI_BURST_NS + HAMI_INFLIGHT_NS: the bucket's depth for a tenant that is not stopped


def _run(workload: Workload, limit: int, *cmds: str) -> tuple[list[str], int, float]:
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                        CUDA_DEVICE_SM_LIMIT=str(limit), HAMI_LAUNCH_STATS="1")
    r = workload.run("ctx", "0", "alloc", "1000", *cmds, timeout=60)
    assert r.returncode == 0, r.stderr
    stats = [ln for ln in r.stderr.splitlines() if "launch stats:" in ln]
    assert len(stats) == 1, r.stderr
    m = HELD.search(stats[0])
    return r.lines, int(m.group(1)), float(m.group(2))


def test_a_launch_bound_loop_under_its_limit_is_never_held_at_start(workload: Workload) -> None:
    # 10 us kernels with 12 us of host time between them (~45 % busy) at 70 %: nothing to hold, from the first launch
    # (main: held once for ~186 ms in 5 of 6 runs on this VM)
    for _ in range(3):
        _, held, held_ms = _run(workload, 70, "spin", "10", "12", "1.0", "50")
        assert held == 0, (held, held_ms)


def test_the_start_credit_is_what_the_share_earned_and_the_limit_holds(workload: Workload) -> None:
    # a GPU-bound loop that starts 1 s after its container's region: it may spend what 30 % earned meanwhile, at most
    # the bucket's depth, and is then held to its limit (GPU time given by the fake's shared GPU, not the charge).
    # 3 s of launches, not 1: force keeps the square wave (800 ms period: at 30 % off-phases of 560 ms), and the window
    # ends after the last launch's wait, so a 1 s run measured 24.0 % or 35 % by the phase it stopped in (24.0 failed
    # the bound below, on a VM up 8 h and at uptime - 30000 s alike: not a clock effect); from 2.5 s every phase holds
    # 27-31 % (2026-12-07)
    lines, held, _ = _run(workload, 30, "sleep", "1000", "spin", "2000", "0", "3.0", "8")
    w = next(ln for ln in lines if ln.startswith("spin ")).split()
    window, gpu = float(w[3]) - float(w[2]), float(w[4])
    assert held >= 1, lines  # the limit applies
    assert gpu <= 0.30 * window + BURST_S + 0.030, (window, gpu)  # + a loaded VM's slack
    assert gpu >= 0.30 * window * 0.8, (window, gpu)  # work-conserving up to its limit
