"""Several processes of one container at the edges of the sibling charge (docs/interposer.md "Several processes in one
container"; record docs/results/2026-12-05-fake-sibling-edges.md): siblings under coarse measurement, a sibling
that holds no GPU memory, a sibling gone (exit, SIGKILL) in the middle of a 2 ms time slice, and a process that
takes many presence locks to make forged sibling entries count.

Run on the fake device's shared GPU (FAKE_CUDA_GPU); every share is the GPU time the fake itself gave a process, every
charge that process's slot in the region. Two processes per case: the 2-core CI machine gives each a CPU."""

from __future__ import annotations

import fcntl
import mmap
import os
import re
import threading
import time

import pytest

from .conftest import REAL_DRIVER, Workload, region
from .test_interposer_multiproc import GPU_BOUND, MOST_CHARGED, _container, _forge_busy_sibling, _wait_line

pytestmark = [
    pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model"),
]

SLICES = {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "30"}  # one context at a time, 2 ms each


def _charges(w: Workload) -> dict[int, float]:
    """Seconds each live process of the container was charged on device 0."""
    with region.SharedRegion(w.region_path) as reg:
        return {u.pid: u.busy_ns[0] / 1e9 for u in reg.processes()}


def run_pair(w: Workload, progs: list[tuple[str, ...]], envs: list[dict[str, str]]) -> list[dict[str, float]]:
    """Starts one process per program (with its own extra environment) in container w at once, each a `spin` that
    then waits 2.5 s (its slot stays while the charges are read) and exits, printing its launch statistics; returns
    per process its share % of the fake GPU in its window, the GPU seconds the fake gave it, the seconds it was
    charged and the % of its launches measured coarsely."""
    procs = [w.start("ctx", "0", "spin", *p, "ready", "sleep", "2500", HAMI_LAUNCH_STATS="1", **e)
             for p, e in zip(progs, envs, strict=True)]
    rows = []
    for p in procs:
        words = _wait_line(p, "spin").split()[1:]
        assert words[0] == "0", words
        t0, t1, gpu = float(words[1]), float(words[2]), float(words[3])
        rows.append({"share": 100 * gpu / (t1 - t0), "gpu": gpu})
        _wait_line(p, "ready")
    time.sleep(0.3)  # the watchers collect the last marks
    charged = _charges(w)
    for p, row in zip(procs, rows, strict=True):
        _, err = p.communicate(timeout=30)
        m = re.search(r"launch stats: \d+ measured launches \(([\d.]+) % coarse\)", err)
        assert m, err[-2000:]
        row.update(charged=charged.get(p.pid, 0.0), coarse=float(m[1]))
    return rows


# ---- 1. siblings under coarse measurement ----


@pytest.mark.fake_timing
@pytest.mark.parametrize("limit", [30, 60])
@pytest.mark.parametrize("precise", [(), (1,)], ids=["both-may-go-coarse", "one-HAMI_SM_PRECISE"])
def test_gpu_bound_siblings_at_their_limit_are_measured_precisely(workload: Workload, limit: int,
                                                                  precise: tuple[int, ...]) -> None:
    # A coarse process publishes no busy interval, so its sibling would be charged as if alone. Siblings at their
    # container's limit never measure coarsely: they share one bucket, whose credit is never ample there (measured:
    # 0.0 % coarse with and without neighbours' precision requests). Pins that, and the charge that follows.
    _container(workload, limit)
    envs = [{"HAMI_SM_PRECISE": "1"} if i in precise else {} for i in range(2)]
    rows = run_pair(workload, [GPU_BOUND] * 2, envs)
    total = sum(r["share"] for r in rows)
    print(f"2 GPU-bound at {limit} % ({'one precise' if precise else 'default'}): {total:.1f} %, {rows}")
    for r in rows:
        assert r["coarse"] < 1.0, rows
        assert 0.85 <= r["charged"] / r["gpu"] <= MOST_CHARGED, rows
    # held at the limit, not below it: the throttle holds what it charged at the limit (within 5 points), and the GPU
    # time follows within the charge's bound above. On 2 cores the two siblings are over-charged (a CPU short at each
    # sync): 2 GPU-bound siblings at 60 % got 54.0-58.1 % on a loaded box and 52.6-52.9 % on CI-like runs (charged
    # 1.11-1.16 x, so 59.2-59.6 % charged), which the GPU-time bound (limit - 5) / MOST_CHARGED allows
    charged_total = sum(r["share"] * r["charged"] / r["gpu"] for r in rows)
    assert limit - 5 <= charged_total <= limit + 5, (round(charged_total, 1), rows)
    assert (limit - 5) / MOST_CHARGED <= total <= limit + 5, rows


@pytest.mark.fake_timing
def test_coarse_siblings_under_their_limit_are_never_under_charged(workload: Workload) -> None:
    # Both under the container's limit (~25 % busy each at 90 %): both measure coarsely part of the time, neither
    # publishes its coarse runs, so each charges the overlap as if alone: over-charged if anything (measured
    # 1.10-1.31 x against 1.06-1.27 x both precise), never under.
    _container(workload, 90)
    rows = run_pair(workload, [("100", "300", "4", "1000000")] * 2, [{}, {}])
    print(f"2 coarse-capable siblings at 90 %: {rows}")
    assert all(r["coarse"] >= 5 for r in rows), rows  # the case is what it says: they went coarse
    charged, gpu = sum(r["charged"] for r in rows), sum(r["gpu"] for r in rows)
    assert 0.95 <= charged / gpu <= 1.6, rows


# ---- 2. a sibling that holds no GPU memory ----


@pytest.mark.fake_timing
@pytest.mark.parametrize("without", [1, 2], ids=["one-without-memory", "both-without-memory"])
def test_sibling_holding_no_memory_is_counted(workload: Workload, without: int) -> None:
    # Before, the bound on the siblings counted processes holding memory on the device: a process with only a context
    # (no reserve, no allocation) was not counted, so its sibling was charged as if alone (measured at 30 %:
    # 20.1-21.7 % together, the one with memory charged 1.70-1.99 x; both without: 15.0-15.7 %, 1.81-1.98 x). Now
    # each process that measures its launches on the device holds a presence lock there, and its siblings count it.
    _container(workload, 30)
    envs = [{"CUDA_DEVICE_CONTEXT_RESERVE": "0"} if i < without else {} for i in range(2)]
    rows = run_pair(workload, [GPU_BOUND] * 2, envs)
    total = sum(r["share"] for r in rows)
    print(f"2 GPU-bound at 30 %, {without} without memory: {total:.1f} %, {rows}")
    assert abs(total - 30) <= 5, rows
    for r in rows:
        assert 0.85 <= r["charged"] / r["gpu"] <= MOST_CHARGED, rows


def _forge_sibling_entries(path: str, stop: threading.Event) -> None:
    """Like _forge_busy_sibling, for every sibling entry of device 0 but the first two."""
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), region.REGION_SIZE) as mem:
        r = region.ffi.cast("struct hami_region *", region.ffi.from_buffer(mem))
        start = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        while not stop.is_set():
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            for i in range(2, region.CONST["HAMI_SIBLINGS"]):
                e = r.sib[0].e[i]
                e.owner, e.beat_ns, e.since_ns, e.until_ns, e.open_ns = 0x5151 + i, now, start, 0, now
                r.sib[0].mask |= 1 << i
            stop.wait(0.001)
        del r


def _beside_one_process_locking_many(workload: Workload) -> list[dict[str, float]]:
    """run_pair's rows of one GPU-bound process at 30 % beside a process (the test's own) that takes many presence
    locks and memory lanes, and 14 forged busy sibling entries."""
    _container(workload, 30)
    workload.run("ctx", "0")  # the region exists
    fd = os.open(workload.region_path, os.O_RDWR)
    stop = threading.Event()
    t = threading.Thread(target=_forge_sibling_entries, args=(str(workload.region_path), stop))
    try:
        sib = region.CONST["HAMI_LOCK_SIB_BASE"]
        for b in range(8, region.MAX_PROCS, 2):  # apart: one lock each, not merged
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, sib + b)
        for lane in range(1000, 1015):
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, region.LOCK_USE_BASE + lane * region.LOCK_LANE)
        t.start()
        rows = run_pair(workload, [GPU_BOUND], [{}])
    finally:
        stop.set()
        if t.is_alive():
            t.join()
        os.close(fd)
    return rows


@pytest.mark.fake_timing
def test_one_process_locking_many_counts_as_one_sibling(workload: Workload) -> None:
    # A tenant's process (here the test's own) that takes many presence locks and memory lanes, beside 14 forged busy
    # sibling entries: it is one live process, so at most one sibling counts (a charge halved at most, as one real
    # sibling could). Before, the bound counted memory lanes with a lock, 15 here: charged 1/16 (fail open).
    rows = _beside_one_process_locking_many(workload)
    print(f"beside one process holding many locks and 14 forged entries: {rows}")
    assert rows[0]["share"] <= 2 * 30 + 5, rows


def test_one_process_locking_many_halves_the_charge_at_most(workload: Workload) -> None:
    # CI's guard (host-independent): the same case judged by the charge over the GPU time the fake gave: one sibling
    # counted halves it at most (>= 0.5 x, 0.65 x measured; the old count of locked memory lanes, a247bb6^: 0.27-0.33
    # x, 91-97 % at 30). A loaded host only lengthens the measured spans and lets the forged entries' heartbeats go
    # stale (fewer counted): both raise it.
    rows = _beside_one_process_locking_many(workload)
    ratio = rows[0]["charged"] / rows[0]["gpu"]
    print(f"sibling_edges locking many: charged {ratio:.2f} x, {rows[0]['share']:.1f} % of the fake GPU")
    assert ratio >= 0.45, rows


@pytest.mark.fake_timing
def test_forged_sibling_without_a_measuring_process_counts_for_nothing(workload: Workload) -> None:
    # A second process of the container that holds memory on the device but never launched there takes no presence
    # lock: a forged busy entry beside it changes nothing (before, its memory lane let the entry halve the charge).
    _container(workload, 30)
    idle = workload.start("ctx", "0", "alloc", "64m", "ready", "hang")
    _wait_line(idle, "ready")
    stop = threading.Event()
    t = threading.Thread(target=_forge_busy_sibling, args=(str(workload.region_path), stop))
    t.start()
    try:
        rows = run_pair(workload, [GPU_BOUND], [{}])
    finally:
        stop.set()
        t.join()
    print(f"beside a forged entry and a process that never launched: {rows}")
    assert abs(rows[0]["share"] - 30) <= 5, rows


# ---- 3. a sibling gone in the middle of a 2 ms time slice ----


@pytest.mark.fake_timing
@pytest.mark.parametrize("how", ["sigkill", "exit"])
def test_sibling_gone_mid_slice_gives_the_survivor_its_limit(workload: Workload, how: str) -> None:
    # Two GPU-bound siblings at 30 % under 2 ms time slices (one context at a time); one goes 1 s in while the other
    # is mid-slice or waiting for one. Over the next second the survivor gets the container's limit back (its dead
    # sibling's open interval, counted on, would halve its charge: fail open; counted as its own, it would be held),
    # and what it is charged from then on is what it got.
    _container(workload, 30)
    workload.env.update(SLICES)
    survivor = workload.start("ctx", "0", *(["spin", "2000", "0", "1", "4"] * 3), "ready", "hang")
    victim = workload.start("ctx", "0", "spin", "2000", "0", "10" if how == "sigkill" else "1", "4")
    _wait_line(survivor, "spin")
    if how == "sigkill":
        victim.kill()
    else:
        assert victim.wait(timeout=30) == 0
    before = _charges(workload)[survivor.pid]
    victim.wait()
    windows = []
    for _ in range(2):
        words = _wait_line(survivor, "spin").split()[1:]
        windows.append((float(words[2]) - float(words[1]), float(words[3])))
    _wait_line(survivor, "ready")
    time.sleep(0.3)
    after = _charges(workload)[survivor.pid] - before
    shares = [100 * g / t for t, g in windows]
    gpu = sum(g for _, g in windows)
    print(f"survivor after its sibling's {how}: {shares} %, charged {after:.3f} s for {gpu:.3f} s")
    assert all(abs(s - 30) <= 5 for s in shares), shares  # the first second after included
    assert 0.85 <= after / gpu <= 1.15, (after, gpu)
