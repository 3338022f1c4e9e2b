"""Several processes of one container on one GPU (issue 18, #18's multiproc gap): the SM limit is the container's,
its processes share one token bucket, and their GPU time must be counted once.

Before, each process charged the GPU time of its own kernels as if it had the GPU alone: on a GPU without MPS the
processes' contexts time-slice, so while two siblings both had work each got half of the GPU and each was charged
all of it (audit4, fake: 3 processes at 30 % got 20-23 % together, charged 1.5-1.7 x). Now each process publishes
its busy intervals in the container's region and is charged processor sharing over its siblings' contexts too.

Run on the fake device's shared GPU (FAKE_CUDA_GPU: a fluid processor-sharing model of a GPU time-sliced between
contexts); every share is the GPU time the fake itself says it gave each process, every charge the process's own
slot in the region (what it consumed from the container's bucket)."""

from __future__ import annotations

import subprocess
import time

import pytest

from .conftest import REAL_DRIVER, Workload, region

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model")


def _container(w: Workload, limit: int) -> None:
    # a 100 ms square wave, as the pair tests use: the 800 ms default is for power-capped GPUs
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                 HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT=str(limit),
                 CUDA_DEVICE_CONTEXT_RESERVE="64m")  # each process holds memory on the GPU, as a real context does


def _wait_line(proc: subprocess.Popen[str], word: str, timeout: float = 60) -> str:
    """The first stdout line of proc starting with word (the others are skipped)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line:
            break
        if line.split() and line.split()[0] == word:
            return line
    proc.kill()
    _, err = proc.communicate()
    pytest.fail(f"driver_app {proc.args[1:]} printed no {word!r} line: {err[-2000:]}")


def run_siblings(w: Workload, progs: list[tuple[str, ...]]) -> list[tuple[float, float, float]]:
    """Starts one process per program in container w at once, each a `spin` followed by a hang (so its slot, with
    what it was charged, stays in the region until read); returns (share % of the fake GPU in its window, GPU
    seconds the fake gave it, seconds it was charged) per process."""
    procs = [w.start("ctx", "0", "spin", *p, "ready", "hang") for p in progs]
    spins = []
    for p in procs:
        words = _wait_line(p, "spin").split()[1:]
        assert words[0] == "0", words
        t0, t1, gpu = float(words[1]), float(words[2]), float(words[3])
        spins.append((100 * gpu / (t1 - t0), gpu))
        _wait_line(p, "ready")
    time.sleep(0.3)  # the watcher collects the last marks
    with region.SharedRegion(w.region_path) as reg:
        charged = {u.pid: u.busy_ns[0] / 1e9 for u in reg.processes()}
    w.kill_all()
    return [(share, gpu, charged.get(p.pid, 0.0)) for (share, gpu), p in zip(spins, procs, strict=True)]


GPU_BOUND = ("2000", "0", "3", "4")  # 2 ms kernels, a sync every 4, for 3 s


@pytest.mark.parametrize("limit", [30, 60])
@pytest.mark.parametrize("nproc", [2, 3])
def test_gpu_bound_siblings_share_their_container_limit(workload: Workload, nproc: int, limit: int) -> None:
    _container(workload, limit)
    rows = run_siblings(workload, [GPU_BOUND] * nproc)
    total = sum(share for share, _, _ in rows)
    assert abs(total - limit) <= 5, rows  # the container's share is its limit, not 2/3 of it
    for share, gpu, charged in rows:
        assert 0.85 <= charged / gpu <= 1.15, rows  # each charged what it got, not as if alone
        assert share >= 0.5 * limit / nproc, rows  # none starved by its siblings


def test_gpu_bound_and_launch_bound_siblings(workload: Workload) -> None:
    # one process GPU-bound, one launch-bound (100 us kernels, 400 us of host time after each: busy ~20 % alone)
    _container(workload, 60)
    rows = run_siblings(workload, [GPU_BOUND, ("100", "400", "3", "1000000")])
    total = sum(share for share, _, _ in rows)
    assert abs(total - 60) <= 5, rows
    for _share, gpu, charged in rows:
        assert 0.8 <= charged / gpu <= 1.2, rows
