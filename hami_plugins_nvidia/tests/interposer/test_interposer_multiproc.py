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

import ctypes
import mmap
import os
import subprocess
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import REAL_DRIVER, Toolchain, Workload, region
from .guard_runs import sibling_ratios

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


MS = 1_000_000
Spans = list[tuple[int, int]]


def _charge(lib: ctypes.CDLL, a: int, b: int, others: Spans, k: int, sibs: Spans, sk: int) -> int:
    def arrs(xs: Spans) -> tuple[ctypes.Array, ctypes.Array]:
        t = ctypes.c_int64 * max(1, len(xs))
        return t(*[s for s, _ in xs]), t(*[u for _, u in xs])
    (os_, ou), (ss, su) = arrs(others), arrs(sibs)
    f = lib.hami_vgpu_ps_charge_sib_ns
    f.restype = ctypes.c_int64
    return f(ctypes.c_int64(a), ctypes.c_int64(b), os_, ou, len(others), k, ss, su, len(sibs), sk)


def test_sibling_charge_counts_the_container_contexts(toolchain: Toolchain) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    assert _charge(lib, 0, 10 * MS, [], -1, [(0, 10 * MS)], 1) == 5 * MS  # two siblings busy throughout: half each
    assert _charge(lib, 0, 12 * MS, [(0, 12 * MS)], 1, [(0, 12 * MS)], 1) == 4 * MS  # + one other container: a third
    assert _charge(lib, 0, 10 * MS, [], -1, [(0, 10 * MS)] * 3, 1) == 5 * MS  # at most sk siblings count
    assert _charge(lib, 0, 10 * MS, [], -1, [(0, 10 * MS)], 0) == 10 * MS  # no proven sibling: charged as alone
    assert _charge(lib, 0, 10 * MS, [(0, 10 * MS)], 0, [(4 * MS, 20 * MS)], 2) == 4 * MS + 3 * MS  # others capped by k
    assert _charge(lib, 10 * MS, 5 * MS, [], -1, [(0, 20 * MS)], 1) == 0  # reversed: nothing


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 20)), min_size=1, max_size=4))
def test_siblings_alone_pay_their_union_once(toolchain: Toolchain, spans: list[tuple[int, int]]) -> None:
    """With no other container, the charges of a container's processes over their busy intervals add up to the union
    of those intervals (each instant once), whatever their overlap."""
    lib = ctypes.CDLL(str(toolchain.lib))
    ivs = [(s * MS, (s + d) * MS) for s, d in spans]
    total = sum(_charge(lib, a, b, [], -1, ivs[:i] + ivs[i + 1:], len(ivs) - 1) for i, (a, b) in enumerate(ivs))
    covered = {t for a, b in ivs for t in range(a // MS, b // MS)}
    # each charge is a sum of (hi - lo) // n pieces: at most one nanosecond short per piece
    assert 0 <= len(covered) * MS - total <= 16 * len(ivs) ** 2


GPU_BOUND = ("2000", "0", "3", "4")  # 2 ms kernels, a sync every 4, for 3 s
#: The over-charge GPU-bound siblings may carry: each needs a CPU at every sync, and on CI-like 2-core runs two of
#: them at 60 % were charged 1.12-1.17 x what they got (2026-12-05); over-charge is the side errors must fall on.
MOST_CHARGED = 1.2


@pytest.mark.parametrize("limit", [30, 60])
def test_gpu_bound_siblings_are_not_each_charged_as_if_alone(workload: Workload, limit: int) -> None:
    # The pair of the test below judged by each sibling's charge against the GPU time the fake gave it, with
    # margins far from both figures (a CI guard): two GPU-bound siblings time-slice the GPU, so each is busy the
    # whole time and gets half of it; charged as if alone (before the sibling table) each paid ~2 x what it got.
    # Counted once, each pays what it got: 1.0-1.2 x on this 2-core VM idle, loaded or pinned to one core (a
    # loaded host only over-charges: a sibling waiting for a CPU at its sync keeps its busy span open).
    _container(workload, limit)
    ratios, rows = sibling_ratios(workload)
    print(f"multiproc guard: 2 siblings at {limit} %: charged / got {[round(x, 2) for x in ratios]}, {rows}")
    assert all(x <= 1.5 for x in ratios), rows


@pytest.mark.fake_timing
@pytest.mark.parametrize("limit", [30, 60])
@pytest.mark.parametrize("nproc", [2, 3])
def test_gpu_bound_siblings_share_their_container_limit(workload: Workload, nproc: int, limit: int) -> None:
    if nproc > len(os.sched_getaffinity(0)):
        # each fake tenant needs a CPU at every sync. On this project's 2-core CI machine the 3-process case got
        # 24-28 % at 30 (charged ~1.2 x what it got: held, never over), on main and on the multiproc branch alike;
        # whether that is the host's scheduler or the sibling count is not settled (closing note, 2026-12-05).
        # The 2-process cases and the bench (bench/multiproc_share.py) run on 2 cores.
        pytest.skip(f"{nproc} GPU-bound processes need {nproc} CPUs, this machine gives {len(os.sched_getaffinity(0))}")
    _container(workload, limit)
    rows = run_siblings(workload, [GPU_BOUND] * nproc)
    total = sum(share for share, _, _ in rows)
    print(f"{nproc} processes at {limit} %: {total:.1f} %, {rows}")
    # the container's share is its limit, not 1/n of it (before the sibling table: 14.9 % at 30, 30.6 % at 60): what
    # the throttle charged is the limit within 5 points, and the GPU time follows within the charge's bound. On a
    # 2-core machine two GPU-bound tenants and the fake GPU share the CPUs: at 60 % the container got 52.2-56.7 %
    # charged 1.06-1.17 x what it got (charged 60.1 % in the lowest), on trees before and after 2026-12-05's
    # sibling and board changes alike (the safe side: over-charged, held)
    charged_total = sum(share * charged / gpu for share, gpu, charged in rows)
    assert limit - 5 <= charged_total <= limit + 5, (round(charged_total, 1), rows)
    assert (limit - 5) / MOST_CHARGED <= total <= limit + 5, rows
    for share, gpu, charged in rows:
        assert 0.85 <= charged / gpu <= MOST_CHARGED, rows  # each charged what it got, not as if alone
        assert share >= 0.5 * limit / nproc, rows  # none starved by its siblings


@pytest.mark.fake_timing
def test_gpu_bound_and_launch_bound_siblings(workload: Workload) -> None:
    # one process GPU-bound, one launch-bound (100 us kernels, 400 us of host time after each: busy ~20 % alone)
    _container(workload, 60)
    rows = run_siblings(workload, [GPU_BOUND, ("100", "400", "3", "1000000")])
    total = sum(share for share, _, _ in rows)
    print(f"GPU-bound + launch-bound at 60 %: {total:.1f} %, {rows}")
    assert abs(total - 60) <= 5, rows
    for _share, gpu, charged in rows:
        assert 0.8 <= charged / gpu <= 1.2, rows


@pytest.mark.fake_timing
def test_sibling_killed_mid_interval_neither_frees_nor_burdens_the_survivor(workload: Workload) -> None:
    # two GPU-bound siblings; one is SIGKILLed 1 s in, with work on the GPU (its interval open): from then on the
    # survivor is alone, so it gets the container's limit (its dead sibling's interval, counted on, would halve its
    # charge: fail open) and is charged what it gets (one counted as gone too early would be over-charged only)
    _container(workload, 30)
    survivor = workload.start("ctx", "0", "spin", "2000", "0", "1", "4", "spin", "2000", "0", "2.5", "4", "ready",
                              "hang")
    victim = workload.start("ctx", "0", "spin", "2000", "0", "10", "4")
    _wait_line(survivor, "spin")
    victim.kill()
    victim.wait()
    words = _wait_line(survivor, "spin").split()[1:]
    after = 100 * float(words[3]) / (float(words[2]) - float(words[1]))
    print(f"survivor after the kill: {after:.1f} %")
    assert abs(after - 30) <= 5, after
    _wait_line(survivor, "ready")
    time.sleep(0.3)
    with region.SharedRegion(workload.region_path) as reg:
        charged = {u.pid: u.busy_ns[0] / 1e9 for u in reg.processes()}[survivor.pid]
    print(f"survivor charged {charged:.3f} s")
    assert charged > 0.75 * 0.3 * 2.5, charged  # at least what it ran after the kill, at about 1 x


def _forge_busy_sibling(path: str, stop: threading.Event) -> None:
    """Keeps a sibling entry of the region claimed and busy (an open interval seen running just now), as any process
    of the container could write it without running anything."""
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), region.REGION_SIZE) as mem:
        r = region.ffi.cast("struct hami_region *", region.ffi.from_buffer(mem))
        e, start = r.sib[0].e[region.CONST["HAMI_SIBLINGS"] - 1], time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        while not stop.is_set():
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            e.owner, e.beat_ns, e.since_ns, e.until_ns, e.open_ns = 0x5151, now, start, 0, now
            r.sib[0].mask |= 1 << (region.CONST["HAMI_SIBLINGS"] - 1)
            stop.wait(0.001)
        del e, r


@pytest.mark.fake_timing
@pytest.mark.parametrize("lanes", [True, False], ids=["with-a-second-process", "alone"])
def test_forged_busy_sibling_counts_only_as_far_as_the_container_has_processes(workload: Workload,
                                                                               lanes: bool) -> None:
    # A forged busy sibling entry halves a process's charge only where the container really has a second process
    # that measured its launches on the GPU (its presence lock, a kernel record lock: what it writes cannot make
    # more); alone, nothing (test_interposer_sibling_edges.py: one process locking many counts once).
    _container(workload, 30)
    idle = None
    if lanes:  # a real second process that launched once and idles
        idle = workload.start("ctx", "0", "launch", "kernel", "1", "10", "ready", "hang")
        _wait_line(idle, "ready")
    workload.run("ctx", "0")  # the region exists
    stop = threading.Event()
    t = threading.Thread(target=_forge_busy_sibling, args=(str(workload.region_path), stop))
    t.start()
    try:
        rows = run_siblings(workload, [GPU_BOUND])
    finally:
        stop.set()
        t.join()
    share = rows[0][0]
    print(f"beside a forged busy sibling ({'with' if lanes else 'without'} a second process): {rows}")
    if lanes:
        assert share <= 2 * 30 + 5, rows  # at most what one real sibling could be worth
    else:
        assert abs(share - 30) <= 5, rows


def test_region_of_the_older_layout_is_not_trusted(workload: Workload) -> None:
    # layout 1 had no sibling table: a process of this version never reads or writes one as its own
    workload.run("ctx", "0", CUDA_DEVICE_MEMORY_LIMIT="1g")
    v1_size = region.REGION_SIZE - region.ffi.sizeof("struct hami_sibling_dev") * region.CONST["HAMI_MAX_DEVICES"]
    data = bytearray(workload.region_path.read_bytes()[:v1_size])
    cid = int.from_bytes(data[16:24], "little")
    data[4:8] = (1).to_bytes(4, "little")
    data[8:12] = v1_size.to_bytes(4, "little")
    data[12:16] = region.header_sum(region.CONST["HAMI_REGION_MAGIC"], 1, v1_size, cid).to_bytes(4, "little")
    workload.region_path.write_bytes(bytes(data))
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "600m", CUDA_DEVICE_MEMORY_LIMIT="1g")
    assert r.values("alloc") == [["ok", "0"], ["err", "2"]]  # the limit holds in the process, privately
    assert "not trusted" in r.stderr and str(workload.region_path) in r.stderr, r.stderr
    assert workload.region_path.read_bytes() == bytes(data)  # left untouched
    with pytest.raises(region.RegionError, match="not an interposer region"):
        region.SharedRegion(workload.region_path)
