"""Compute sharing between containers on one GPU (issue 18): each tenant is charged its processor-sharing
GPU time, so contending tenants split the GPU by their limits, an idle neighbour costs nothing and a
launch-bound program below its limit is never held.

The two-container tests run on the fake device's shared GPU (FAKE_CUDA_GPU: a fluid processor-sharing
model of a GPU time-sliced between contexts) and judge each tenant by the GPU time the fake itself says it
gave that process, not by the library's own accounting and not by tight wall-clock figures, so a loaded
CI machine moves the windows, not the verdict."""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from .conftest import REAL_DRIVER, Toolchain, Workload

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model")

MS = 1_000_000


def _ps(lib: ctypes.CDLL, a: int, b: int, others: list[tuple[int, int]]) -> int:
    arr = ctypes.c_int64 * max(1, len(others))
    since, until = arr(*[s for s, _ in others]), arr(*[u for _, u in others])
    return lib.hami_vgpu_ps_charge_ns(ctypes.c_int64(a), ctypes.c_int64(b), since, until, len(others))


def test_processor_sharing_charge_is_the_integral_of_one_over_n(toolchain: Toolchain) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    lib.hami_vgpu_ps_charge_ns.restype = ctypes.c_int64
    assert _ps(lib, 0, 10 * MS, []) == 10 * MS  # alone: all of it
    assert _ps(lib, 0, 10 * MS, [(0, 10 * MS)]) == 5 * MS  # both queued throughout: half
    assert _ps(lib, 0, 10 * MS, [(4 * MS, 20 * MS)]) == 4 * MS + 3 * MS  # 4 ms alone, 6 ms shared
    assert _ps(lib, 0, 12 * MS, [(0, 12 * MS)] * 3) == 3 * MS  # four tenants: a quarter
    assert _ps(lib, 0, 10 * MS, [(20 * MS, 30 * MS), (-5 * MS, -1)]) == 10 * MS  # disjoint intervals
    assert _ps(lib, 10 * MS, 10 * MS, [(0, 20 * MS)]) == 0  # empty interval
    assert _ps(lib, 10 * MS, 5 * MS, []) == 0  # reversed: nothing, never negative


def _fake_gpu_of(pid: int | str) -> str | None:
    """The FAKE_CUDA_GPU file a running process names (its environment), or None."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((e[len(b"FAKE_CUDA_GPU="):].decode() for e in env if e.startswith(b"FAKE_CUDA_GPU=")), None)


def _lock_holder(gpu: str) -> str:
    """The fake GPU's lock word (the holder's pid, 0 = free) and the holder's state (Z: exited, not reaped)."""
    try:
        holder = struct.unpack("<i", Path(gpu).read_bytes()[:4])[0]
    except (OSError, struct.error):
        return f"fake GPU {gpu}: unreadable"
    try:
        state = Path(f"/proc/{holder}/stat").read_text().rsplit(")", 1)[1].split()[0] if holder > 0 else "-"
    except OSError:
        state = "gone"
    return f"fake GPU {gpu}: lock held by pid {holder} (state {state})"


def _threads_of_hung_apps(proc) -> str:
    """The hung driver_app's and its neighbours' threads (the driver_apps on its fake GPU; gdb, where installed)
    and the fake GPU's lock holder: a pair test that hangs says where, the next time."""
    gpu = _fake_gpu_of(proc.pid)
    head = _lock_holder(gpu) if gpu else "(no fake GPU named)"
    if not shutil.which("gdb"):
        return head + "\n(gdb not installed: no backtraces)"
    pids = subprocess.run(["pgrep", "-f", "driver_app"], capture_output=True, text=True).stdout.split()
    pids = [p for p in pids if p == str(proc.pid) or (gpu and _fake_gpu_of(p) == gpu)]
    dumps = [head]
    for pid in pids[:4]:
        r = subprocess.run(["gdb", "-p", pid, "-batch", "-ex", "thread apply all bt"], capture_output=True,
                           text=True, timeout=60)
        dumps.append(f"== driver_app {pid}\n" + "\n".join(ln for ln in r.stdout.splitlines() if ln.startswith("#")))
    return "\n".join(dumps)[:12000]


def _spin(proc) -> tuple[float, float, int]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        where = _threads_of_hung_apps(proc)
        proc.kill()
        proc.communicate()
        pytest.fail(f"driver_app {proc.args[1:]} ran past 60 s; its threads and its neighbours':\n{where}")
    words = out.split("spin ")[1].split()
    assert words[0] == "0", err
    t0, t1, gpu, n = float(words[1]), float(words[2]), float(words[3]), int(words[4])
    return 100 * gpu / (t1 - t0), t1 - t0, n


def _shared(w: Workload, **env: str) -> None:
    # a 100 ms square wave: the default 800 ms one is meant for power-capped GPUs and would leave a few
    # seconds' window with a phase error of several points
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                 HAMI_SM_PERIOD_MS="100")
    w.env.update(env)


@pytest.mark.fake_timing
@pytest.mark.parametrize(("lo", "hi"), [(30, 70), (50, 50)])
def test_contending_tenants_split_gpu_time_by_their_limits(workload: Workload, second_workload: Workload,
                                                           lo: int, hi: int) -> None:
    _shared(workload, CUDA_DEVICE_SM_LIMIT=str(lo))
    _shared(second_workload, CUDA_DEVICE_SM_LIMIT=str(hi))
    # GPU-bound: 2 ms kernels, a host sync every 4, for 3 s each, started together
    a = workload.start("ctx", "0", "spin", "2000", "0", "3", "4")
    b = second_workload.start("ctx", "0", "spin", "2000", "0", "3", "4")
    share_a, _, _ = _spin(a)
    share_b, _, _ = _spin(b)
    assert abs(share_a - lo) <= 6, (share_a, share_b)
    assert abs(share_b - hi) <= 6, (share_a, share_b)
    assert share_a + share_b >= 90, (share_a, share_b)  # work-conserving: the GPU was kept busy


@pytest.mark.fake_timing
def test_unlimited_neighbour_takes_what_a_limited_tenant_leaves(workload: Workload,
                                                               second_workload: Workload) -> None:
    _shared(workload, CUDA_DEVICE_SM_LIMIT="30")
    _shared(second_workload, CUDA_TASK_PRIORITY="1")  # on the board, no SM limit
    a = workload.start("ctx", "0", "spin", "2000", "0", "3", "4")
    b = second_workload.start("ctx", "0", "spin", "2000", "0", "3", "4")
    share_a, _, _ = _spin(a)
    share_b, _, _ = _spin(b)
    assert abs(share_a - 30) <= 6, (share_a, share_b)
    assert share_b >= 60, (share_a, share_b)


@pytest.mark.fake_timing
def test_idle_neighbour_costs_nothing(workload: Workload, second_workload: Workload) -> None:
    _shared(workload, CUDA_DEVICE_SM_LIMIT="50")
    _shared(second_workload, CUDA_DEVICE_SM_LIMIT="50")
    # the neighbour launched once (it is on the node board's user list) and then sits idle
    idle = second_workload.start("ctx", "0", "launch", "kernel", "1", "1000", "ready", "hang")
    assert idle.stdout.readline().strip() == "ctx 0"
    idle.stdout.readline()
    assert idle.stdout.readline().strip() == "ready"
    share, _, _ = _spin(workload.start("ctx", "0", "spin", "2000", "0", "2.5", "4"))
    assert abs(share - 50) <= 6, share  # its own limit, not half of it
    idle.kill()


@pytest.mark.fake_timing
def test_default_policy_alone_with_an_idle_neighbour_is_not_capped(workload: Workload,
                                                                   second_workload: Workload) -> None:
    _shared(workload, CUDA_DEVICE_SM_LIMIT="30", GPU_CORE_UTILIZATION_POLICY="default")
    _shared(second_workload, CUDA_DEVICE_SM_LIMIT="30", GPU_CORE_UTILIZATION_POLICY="default")
    idle = second_workload.start("ctx", "0", "launch", "kernel", "1", "1000", "ready", "hang")
    assert idle.stdout.readline().strip() == "ctx 0"
    idle.stdout.readline()
    assert idle.stdout.readline().strip() == "ready"
    share, _, _ = _spin(workload.start("ctx", "0", "sleep", "600", "spin", "2000", "0", "2", "4"))
    assert share >= 80, share  # the neighbour's last launch is older than the share window
    idle.kill()


@pytest.mark.fake_timing
def test_launch_bound_program_below_its_limit_is_not_held(workload: Workload) -> None:
    # 100 us kernels with ~400 us of host time between them: busy ~20 % of the time, limit 50 %
    _shared(workload)
    free = _spin(workload.start("ctx", "0", "spin", "100", "400", "2", "1000000"))
    limited = _spin(workload.start("ctx", "0", "spin", "100", "400", "2", "1000000", CUDA_DEVICE_SM_LIMIT="50"))
    assert free[0] <= 35, free  # the program really is launch-bound
    # a charge of wall time instead of GPU time would hold it to ~half of its launches
    assert limited[2] >= 0.75 * free[2], (free, limited)


def _charged_ms(w: Workload) -> float:
    from .conftest import region
    with region.SharedRegion(w.region_path) as reg:
        return reg.busy_ns(0) / MS


def _pair(a: Workload, b: Workload, *args: str, **env: str) -> list[tuple[float, float, int]]:
    pa, pb = a.start("ctx", "0", *args, **env), b.start("ctx", "0", *args, **env)
    return [_spin(pa), _spin(pb)]


@pytest.mark.fake_timing
def test_launch_bound_fitting_pair_is_charged_execution_not_waiting(workload: Workload,
                                                                    second_workload: Workload) -> None:
    # A GPU without MPS time-slices contexts (here 2 ms slices, each switch to another context costing 30 us);
    # with kernels far shorter than a slice that is FIFO between contexts: a launch waits for the neighbour's
    # kernel and a context switch. Each program: 20 us kernels, a sync and ~40 us on the host after each
    # (busy < 15 % alone); the pair fits. Charging the time a tenant's queue is non-empty would charge the
    # waiting too (measured: 2.3 x the execution) and hold both at a 15 % limit; charging from the GPU start of
    # each busy period charges what ran.
    prog = ("spin", "20", "40", "3", "1")
    for w in (workload, second_workload):
        _shared(w, FAKE_CUDA_SLICE_US="2000", FAKE_CUDA_SWITCH_US="30")
    free = _pair(workload, second_workload, *prog)
    limited = _pair(workload, second_workload, *prog, CUDA_DEVICE_SM_LIMIT="15")
    for w, (share, secs, _n) in zip((workload, second_workload), limited, strict=True):
        ran_ms = share * secs * 10  # GPU time the fake gave it, ms
        assert 0.75 * ran_ms <= _charged_ms(w) <= 1.25 * ran_ms, (ran_ms, _charged_ms(w), free, limited)
    assert free[0][0] <= 14 and free[1][0] <= 14, free  # the pair really fits under its limits
    assert limited[0][2] + limited[1][2] >= 0.9 * (free[0][2] + free[1][2]), (free, limited)


def _trace(proc) -> list[tuple[float, float]]:
    out, err = proc.communicate(timeout=60)
    words = out.split("trace ")[1].split()
    assert words[0] == "0", err
    vals = [float(x) for x in words[1:]]
    return list(zip(vals[0::2], vals[1::2], strict=True))


def _share_between(trace: list[tuple[float, float]], t0: float, t1: float) -> float:
    """% of the wall time in [t0, t1] that the fake GPU gave the traced process (nearest samples inside)."""
    inside = [(t, g) for t, g in trace if t0 <= t <= t1]
    assert len(inside) >= 2, (t0, t1, trace[:3], trace[-3:])
    (ta, ga), (tb, gb) = inside[0], inside[-1]
    return 100 * (gb - ga) / (tb - ta)


@pytest.mark.fake_timing
def test_default_policy_caps_within_a_second_of_a_neighbour_and_releases_within_a_second(
        workload: Workload, second_workload: Workload) -> None:
    # A (limit 30) runs GPU-bound throughout; neighbour B (limit 70) runs from ~1 s to ~3 s. Judged by the GPU
    # time the fake gave A per window: capped from 1 s after B's first launch, back to the whole GPU from 0.5 s
    # after B's work ended (the target is 1 s; the design releases 100 ms after B's measured busy end, the
    # earlier 500 ms presence window gave ~40 % in the 0.2-0.6 s window here).
    _shared(workload, CUDA_DEVICE_SM_LIMIT="30", GPU_CORE_UTILIZATION_POLICY="default")
    _shared(second_workload, CUDA_DEVICE_SM_LIMIT="70", GPU_CORE_UTILIZATION_POLICY="default")
    a = workload.start("ctx", "0", "trace", "2000", "0", "5.5", "4", "50")
    b = second_workload.start("ctx", "0", "sleep", "1000", "spin", "2000", "0", "2", "4")
    out, err = b.communicate(timeout=60)
    words = out.split("spin ")[1].split()
    assert words[0] == "0", err
    b_start, b_end = float(words[1]), float(words[2])  # CLOCK_MONOTONIC, the clock of A's trace too
    trace = _trace(a)
    before = _share_between(trace, trace[0][0] + 0.1, b_start)
    capped = _share_between(trace, b_start + 1.0, b_end)
    released = _share_between(trace, b_end + 0.5, trace[-1][0])
    assert before >= 85, (before, capped, released)  # alone: not capped
    assert capped <= 45, (before, capped, released)  # its 30 %, with room for a loaded machine
    assert released >= 85, (before, capped, released)
