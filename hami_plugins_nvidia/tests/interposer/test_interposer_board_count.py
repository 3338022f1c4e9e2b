"""A container of several processes counts as that many contexts in its neighbours' charge (board.c context claims,
throttle.c hami_vgpu_ps_charge_w_ns).

The node board has one entry per container, and a neighbour's processor-sharing charge counted each busy entry as one
context. A container of 2-3 GPU-bound processes holds 2-3 of the GPU's time slices while it is busy: its neighbour
got 1/3 or 1/4 of the GPU and was charged 1/2 (fake, 30 % container beside a 70 % neighbour: the neighbour got 61-64 %
charged 1.08-1.14 x; docs/results/2026-12-05-fake-multiproc.md). Now each record holder of a container claims, beside
its board record, how many contexts the container keeps busy, and a neighbour counts it as the lowest claim of its
holders, at most one per record, and never more contexts in all than NVML lists.

Attacker view: any tenant can add locks to the board. A forged claim beside a real record holder can only lower the
count (that holder's own claim is in the minimum), and claims put in a slot's lanes before its container takes them
leave it no lane (it then holds the slot's marker: read as one context). The forged-count tests give NVML room for
more contexts than are real, so that a trusted forgery would show."""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
import threading
import time
from pathlib import Path

import pytest

from . import board_records
from .conftest import REAL_DRIVER, Toolchain, Workload, region
from .test_interposer_multiproc import GPU_BOUND, _container, _wait_line
from .test_interposer_nvml_bound import _nvml, nvml_dir  # noqa: F401 - nvml_dir is a fixture

MS = 1_000_000
CTX_BASE, CTX_LANE = region.CONST["HAMI_BCTX_BASE"], region.CONST["HAMI_BCTX_LANE"]
USERS, PROCS = region.CONST["HAMI_BOARD_USERS"], region.CONST["HAMI_BREC_PROCS"]
_FLOCK = struct.Struct("hh4xqqi4x")
fake_gpu = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model and the fake NVML")


def ctx_lane(user: int, index: int, entry: int = 0) -> int:
    """Start of the context claim beside lane `index` of user slot `user` (hami_region.h HAMI_BCTX_*)."""
    return CTX_BASE + ((entry * USERS + user) * PROCS + index) * CTX_LANE


def _charge(lib: ctypes.CDLL, a: int, b: int, others: list[tuple[int, int, int]], k: int,
            sibs: list[tuple[int, int]] = (), sk: int = 0, weights: bool = True) -> int:
    """hami_vgpu_ps_charge_w_ns over others = (since, until, weight) and sibling spans."""
    t64, t32 = ctypes.c_int64 * max(1, len(others)), ctypes.c_int32 * max(1, len(others))
    s64 = ctypes.c_int64 * max(1, len(sibs))
    f = lib.hami_vgpu_ps_charge_w_ns
    f.restype = ctypes.c_int64
    return f(ctypes.c_int64(a), ctypes.c_int64(b), t64(*[s for s, _, _ in others]), t64(*[u for _, u, _ in others]),
             t32(*[w for _, _, w in others]) if weights else None, len(others), k,
             s64(*[s for s, _ in sibs]), s64(*[u for _, u in sibs]), len(sibs), sk)


def test_weighted_charge_counts_each_container_as_its_contexts(toolchain: Toolchain) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    full = (0, 12 * MS)
    assert _charge(lib, *full, [(*full, 200)], 2) == 4 * MS  # a container of two busy contexts: a third, not a half
    assert _charge(lib, *full, [(*full, 300)], 3) == 3 * MS
    assert _charge(lib, *full, [(*full, 150)], 2) == 12 * MS * 100 // 250  # 1.5 contexts per busy instant
    assert _charge(lib, *full, [(*full, 300)], 1) == 6 * MS  # no more contexts than NVML lists (k)
    assert _charge(lib, *full, [(*full, 300)], -1) == 6 * MS  # no NVML count: one context each, as before
    assert _charge(lib, *full, [(*full, 200), (*full, 100)], 9) == 3 * MS  # 1 + 2 + 1
    for bad in (0, 99, -200, 100 * region.CONST["HAMI_SIBLINGS"] + 1, 2**31 - 1):
        assert _charge(lib, *full, [(*full, bad)], 9) == 6 * MS, bad  # out of range: one context
    assert _charge(lib, *full, [(*full, 200)], 9, [full], 1) == 3 * MS  # with a sibling of its own: 1 + 1 + 2
    # half the span beside a container of two: 6 ms at 1/3, 6 ms alone
    assert _charge(lib, *full, [(0, 6 * MS, 200)], 4) == 2 * MS + 6 * MS


def test_unweighted_charge_is_the_one_per_container_rule_exactly(toolchain: Toolchain) -> None:
    # weights NULL or all 100: the charge of hami_vgpu_ps_charge_sib_ns to the nanosecond, bounded or not
    lib = ctypes.CDLL(str(toolchain.lib))
    f = lib.hami_vgpu_ps_charge_bounded_ns
    f.restype = ctypes.c_int64
    spans = [(1 * MS + 7, 9 * MS + 3), (4 * MS + 1, 20 * MS), (2 * MS, 3 * MS + 11)]
    t = ctypes.c_int64 * 3
    for k in (-1, 0, 1, 2, 5):
        want = f(ctypes.c_int64(0), ctypes.c_int64(17 * MS + 5), t(*[s for s, _ in spans]), t(*[u for _, u in spans]),
                 3, k)
        assert _charge(lib, 0, 17 * MS + 5, [(s, u, 100) for s, u in spans], k) == want, k
        assert _charge(lib, 0, 17 * MS + 5, [(s, u, 0) for s, u in spans], k, weights=False) == want, k


# ---- on the fake GPU: a 30 % container of N GPU-bound processes beside a 70 % container of one ----

def _host_pids(n: int) -> str:
    """n PIDs as NVML lists them from the host's namespace (no Linux process has them here: pid_max <= 2^22)."""
    return " ".join(str(4000000001 + i) for i in range(n))


def _beside(ctr: Workload, nbr: Workload, nproc: int) -> tuple[float, list[float], float, float]:
    """Runs nproc GPU-bound processes in ctr (30 %) and one in nbr (70 %) at once; returns the container's share of
    the fake GPU, each of its processes' charged / got, the neighbour's share and its charged / got."""
    procs = [ctr.start("ctx", "0", "spin", *GPU_BOUND, "ready", "hang") for _ in range(nproc)]
    procs.append(nbr.start("ctx", "0", "spin", *GPU_BOUND, "ready", "hang"))
    spins = []
    for p in procs:
        words = _wait_line(p, "spin").split()[1:]
        assert words[0] == "0", words
        spins.append((float(words[1]), float(words[2]), float(words[3])))
        _wait_line(p, "ready")
    time.sleep(0.3)  # the watchers collect the last marks
    charged = {}
    for w in (ctr, nbr):
        with region.SharedRegion(w.region_path) as reg:
            charged.update({u.pid: u.busy_ns[0] / 1e9 for u in reg.processes()})
    ctr.kill_all()
    nbr.kill_all()
    share = sum(100 * g / (b - a) for a, b, g in spins[:-1])
    ratios = [charged.get(p.pid, 0.0) / g for p, (_, _, g) in zip(procs[:-1], spins[:-1], strict=True)]
    a, b, g = spins[-1]
    return share, ratios, 100 * g / (b - a), charged.get(procs[-1].pid, 0.0) / g


def _setup(ctr: Workload, nbr: Workload, nvml: Path, listed: int) -> None:
    _container(ctr, 30)
    _container(nbr, 70)
    for w in (ctr, nbr):
        _nvml(w, nvml, _host_pids(listed))


@pytest.mark.fake_timing
@fake_gpu
@pytest.mark.parametrize("nproc", [2, 3])
def test_neighbour_of_a_multiprocess_container_is_charged_what_it_got(workload: Workload, second_workload: Workload,
                                                                      nvml_dir: Path,  # noqa: F811
                                                                      nproc: int) -> None:
    # before: the neighbour got 61-64 % charged 1.08-1.14 x (it counted the container as one context)
    _setup(workload, second_workload, nvml_dir, nproc + 1)
    share, ratios, nshare, nratio = _beside(workload, second_workload, nproc)
    print(f"board count: {nproc} processes at 30 %: {share:.1f} % (charged {ratios}); "
          f"neighbour at 70 %: {nshare:.1f} %, charged {nratio:.2f} x")
    assert 0.95 <= nratio <= 1.07, (nshare, nratio)
    if nproc <= len(os.sched_getaffinity(0)):
        assert abs(share - 30) <= 5, (share, ratios)  # the container still gets its share
    else:  # each fake process needs a CPU at every sync (test_interposer_multiproc: 24-28 % on 2 cores)
        assert share >= 20, (share, ratios)
    # with more GPU-bound processes (the neighbour's included) than CPUs each is over-charged (held, never open):
    # 1.14-1.16 x on CI's 2 cores, 2 processes beside the neighbour (2026-12-05)
    most = 1.15 if nproc + 1 <= len(os.sched_getaffinity(0)) else 1.25
    for r in ratios:
        assert 0.85 <= r <= most, ratios


@pytest.mark.fake_timing
@fake_gpu
def test_single_process_pair_is_unchanged(workload: Workload, second_workload: Workload,
                                          nvml_dir: Path) -> None:  # noqa: F811
    # NVML lists two processes more than run (idle contexts elsewhere): room that a count above one would take
    _setup(workload, second_workload, nvml_dir, 4)
    share, ratios, nshare, nratio = _beside(workload, second_workload, 1)
    print(f"board count: single pair 30 + 70: {share:.1f} % ({ratios[0]:.2f} x), {nshare:.1f} % ({nratio:.2f} x)")
    assert abs(share - 30) <= 5 and 0.9 <= ratios[0] <= 1.1, (share, ratios)
    assert 0.95 <= nratio <= 1.07 and nshare <= 75, (nshare, nratio)


def _lock(fd: int, start: int, length: int) -> bool:
    """An OFD write lock on [start, start + length) of fd's file, as any tenant with the board open can take."""
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, length, 0))
        return True
    except OSError:
        return False


def _forge_everywhere(board: Path, record: int, stop: threading.Event, ready: threading.Event) -> None:
    """Before any container publishes: claims of 16 contexts beside every lane of every user slot, and forged records
    (of a 30 % limit, busy) in lanes 0 and 1 of each slot, so that every slot reads as held by two or more."""
    with open(board, "r+b") as f:
        for u in range(USERS):
            for p in range(PROCS):
                assert _lock(f.fileno(), ctx_lane(u, p), 1600)
            for p in (0, 1):
                assert _lock(f.fileno(), board_records.lane(0, u, p), record)
        ready.set()
        stop.wait()


def _forge_beside(board: Path, record: int, unpack, stop: threading.Event, found: list) -> None:
    """Once the 30 % container's process holds its record: forged records in two more lanes of its slot with claims of
    16 contexts beside them, and a try at a claim beside the real record (refused: the holder's own is there)."""
    end = time.monotonic() + 2
    with open(board, "r+b") as f:
        while not stop.is_set() and time.monotonic() < end and not found:
            for user, index, length in board_records.records(board):
                out = [ctypes.c_int(), ctypes.c_int(), ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int32()]
                if unpack(ctypes.c_uint64(length), *[ctypes.byref(x) for x in out]) and out[0].value == 30:
                    found.append((user, index))
                    break
            else:
                time.sleep(0.01)
        if not found:
            return
        user, index = found[0]
        found.append(_lock(f.fileno(), ctx_lane(user, index), 1600))
        for p in [q for q in range(PROCS) if q != index][:2]:
            found.append(_lock(f.fileno(), board_records.lane(0, user, p), record) and
                         _lock(f.fileno(), ctx_lane(user, p), 1600))
        stop.wait()


@pytest.mark.fake_timing
@fake_gpu
@pytest.mark.parametrize("when", ["before", "beside"])
def test_forged_count_leaves_the_neighbour_charge_unchanged(workload: Workload, second_workload: Workload,
                                                            nvml_dir: Path,  # noqa: F811
                                                            toolchain: Toolchain, when: str) -> None:
    # a one-process container at 30 % beside the 70 % neighbour; NVML lists 4 processes (room for 3 contexts beside
    # the neighbour), and the board says the container keeps 16 busy: trusted, the neighbour would be charged about
    # a quarter of what it got. It is charged what it got, as in the single pair.
    _setup(workload, second_workload, nvml_dir, 4)
    lib = ctypes.CDLL(str(toolchain.lib))
    record = int(board_records.packer(lib)(30, 0, 3000, 10000, 3000))
    unpack = lib.hami_vgpu_brec_unpack
    workload.run("ctx", "0", "launch", "kernel", "1", "1000")  # the board and the fake GPU's entry exist
    board = workload.tmp.parent / "board"
    stop, ready, found = threading.Event(), threading.Event(), []
    if when == "before":
        t = threading.Thread(target=_forge_everywhere, args=(board, record, stop, ready), daemon=True)
    else:
        t = threading.Thread(target=_forge_beside, args=(board, record, unpack, stop, found), daemon=True)
    t.start()
    if when == "before":
        assert ready.wait(10)
    try:
        share, ratios, nshare, nratio = _beside(workload, second_workload, 1)
    finally:
        stop.set()
        t.join()
    print(f"board count: forged ({when}) {found}: 30 % got {share:.1f} %, neighbour {nshare:.1f} % ({nratio:.2f} x)")
    if when == "beside":
        # the slot was found, the claim beside the real record refused, the two forged records and claims held
        assert len(found) == 4 and found[1:] == [False, True, True], found
    assert 0.95 <= nratio <= 1.07 and nshare <= 75, (nshare, nratio)
    assert abs(share - 30) <= 5, share


def test_claim_layout_stays_clear_of_the_records() -> None:
    # the claims' span starts after every entry's records end, and a lane holds the longest claim
    rec_end = board_records.lane(region.CONST["HAMI_BOARD_GPUS"], 0, 0)
    assert CTX_BASE >= rec_end
    assert CTX_LANE >= 100 * region.CONST["HAMI_SIBLINGS"]
    assert ctx_lane(USERS - 1, PROCS - 1, region.CONST["HAMI_BOARD_GPUS"] - 1) + CTX_LANE < 2**63
