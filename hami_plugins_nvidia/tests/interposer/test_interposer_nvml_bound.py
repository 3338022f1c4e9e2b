"""NVML bounds the neighbours a charge counts (issue 18 hardening): the node board is world-writable and proves
nobody busy, so a forged busy entry counted as one more tenant in n(t) and a GPU-bound tenant took twice its
limit. The driver's count of the processes with a compute context on the GPU, less the container's own, bounds
the others counted at any instant (nvmlq.c vg_nvml_others_bound, throttle.c hami_vgpu_ps_charge_bounded_ns) and
the lenders (hami_vgpu_lent_share_bounded).

The fake libnvidia-ml.so.1 (fake_cuda/fake_nvml.c) is put first on LD_LIBRARY_PATH; its process list is the file
FAKE_NVML_PROCS names. Judged, like test_interposer_share.py, by the GPU time the fake device's processor-sharing
model gave each process."""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import board_records
from .conftest import FAKE, REAL_DRIVER, Toolchain, Workload, build
from .guard_runs import LENT, charged_s, running, spin_run
from .test_interposer_board_audit import _forge_ring
from .test_interposer_lend import _forge as _forge_lender
from .test_interposer_lend import _setup as _setup_lend
from .test_interposer_share import _spin

MS = 1_000_000
fake_gpu = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model and the fake NVML")
# what NVML lists, as host PIDs that no Linux process can have here (pid_max is at most 2^22): a driver answering
# with host PIDs, as from the host's namespace or an older driver in a container
HOST1, HOST2 = "4000000001", "4000000001 4000000002"
INITIAL_PID_NS = os.stat("/proc/self/ns/pid").st_ino == 0xEFFFFFFC  # the kernel's fixed inode of the initial one


@pytest.fixture(scope="session")
def nvml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the fake libnvidia-ml.so.1, compiled once like the fake libcuda (conftest)."""
    try:
        cc = build.compiler()
    except build.BuildError as exc:
        pytest.skip(str(exc))
    out = tmp_path_factory.mktemp("fake-nvml")
    subprocess.run([cc, "-O1", "-fPIC", "-shared", "-o", str(out / "libnvidia-ml.so.1"), str(FAKE / "fake_nvml.c"),
                    "-ldl"], check=True)
    return out


def _nvml(w: Workload, nvml_dir: Path, procs: str | None) -> None:
    """procs: what NVML lists (PIDs, or "error" for a failing query); None: no NVML library at all."""
    if procs is None:
        return
    listing = w.tmp / "nvml-procs"
    listing.write_text(procs)
    w.env.update(LD_LIBRARY_PATH=f"{nvml_dir}:{w.tc.fake_dir}", FAKE_NVML_PROCS=str(listing))


def _force(w: Workload, limit: int) -> None:
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                 HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT=str(limit))


def _with_forger(w: Workload, forge: Callable[..., None], *args: object) -> threading.Event:
    """Creates the board and the fake GPU's entry, then keeps a forged user entry there until the event is set."""
    w.run("ctx", "0", "launch", "kernel", "1", "1000")
    stop = threading.Event()
    t = threading.Thread(target=forge, args=(w.tmp.parent / "board", stop, *args), daemon=True)
    t.start()
    time.sleep(0.05)
    return stop


@pytest.mark.fake_timing
@fake_gpu
@pytest.mark.parametrize(("procs", "own", "lo", "hi"),
                         [(HOST1, 1, 20, 38), (HOST2, 2, 20, 38), (HOST2, 1, 50, 100), (None, 1, 50, 100),
                          ("error", 1, 50, 100)],
                         ids=["nvml-lists-1", "nvml-lists-2-own-2", "nvml-lists-2-own-1", "nvml-absent", "nvml-fails"])
def test_forged_busy_neighbour_counts_only_as_far_as_nvml_allows(workload: Workload, nvml_dir: Path,
                                                                  procs: str | None, own: int, lo: int,
                                                                  hi: int) -> None:
    # a 30 % tenant under force, GPU-bound and alone on the fake GPU, beside a forged user entry claiming to be
    # busy all the time (the audit's forging helper). Before the bound it counted as a neighbour: charged half,
    # the tenant took ~60 %. NVML listing only this container's processes (one, or two: the tenant and an idle
    # process of the same container holding a context) leaves no room for a neighbour: held to its limit.
    # Two listed beside one process of its own: one neighbour may be real, the forged entry counts (K = 1).
    # NVML absent or failing: no bound, today's behaviour (the forged entry still halves the charge).
    _force(workload, 30)
    _nvml(workload, nvml_dir, procs)
    idle = workload.start("ctx", "0", "ready", "sleep", "6000") if own == 2 else None
    if idle:  # its context (and the memory lane it holds) exists before the tenant starts
        assert [idle.stdout.readline().strip() for _ in range(2)] == ["ctx 0", "ready"]
    stop = _with_forger(workload, _forge_ring, 0, "all")
    try:
        share, _, _ = _spin(workload.start("ctx", "0", "spin", "2000", "0", "2", "4"))
    finally:
        stop.set()
        if idle:
            idle.kill()
    print(f"nvml-bound: forged busy neighbour, NVML {procs!r}, {own} own: 30 % tenant got {share:.1f} %")
    assert lo <= share <= hi, share


@fake_gpu
@pytest.mark.parametrize(("procs", "own"), [(HOST1, 1), (HOST2, 2)], ids=["nvml-lists-1", "nvml-lists-2-own-2"])
def test_forged_busy_neighbour_is_not_counted_in_the_charge(workload: Workload, nvml_dir: Path, procs: str,
                                                            own: int) -> None:
    # The bound above judged by the charge instead of the share (a CI guard, host-independent): with NVML leaving
    # room for no neighbour the tenant is charged every busy instant it measured, so the charge (its region's busy
    # time) is at least the GPU time the fake gave it; before the bound the forged entry, busy all the time,
    # halved every charge (~0.5 x). A loaded host only stretches the measured busy spans (kernels start and are
    # seen done later), never shortens them: it moves the ratio up, away from the bug's 0.5.
    _force(workload, 30)
    _nvml(workload, nvml_dir, procs)
    idle = workload.start("ctx", "0", "ready", "sleep", "6000") if own == 2 else None
    if idle:
        assert [idle.stdout.readline().strip() for _ in range(2)] == ["ctx 0", "ready"]
    stop = _with_forger(workload, _forge_ring, 0, "all")
    try:
        gpu, _ = spin_run(workload, "1")
    finally:
        stop.set()
        if idle:
            idle.kill()
    charged = charged_s(workload)
    print(f"nvml-bound guard: forged busy neighbour, NVML {procs!r}, {own} own: charged {charged:.3f} s of "
          f"{gpu:.3f} s the fake gave ({charged / gpu:.2f} x)")
    assert charged >= 0.8 * gpu, (charged, gpu)


@fake_gpu
@pytest.mark.parametrize(("procs", "lends"), [(HOST1, False), (None, True)], ids=["nvml-lists-1", "nvml-absent"])
def test_forged_lender_lends_no_share_when_nvml_lists_no_neighbour(workload: Workload, nvml_dir: Path,
                                                                   toolchain: Toolchain, procs: str | None,
                                                                   lends: bool) -> None:
    # The forged lender below judged by the share the library computes, not the one the fake measured (a CI
    # guard, host-independent): with NVML listing only the tenant the bound K is 0 and the lent share is the limit
    # itself whatever the board and the records say, so the tenant never logs a lent share (lending.c's debug
    # line at LIBCUDA_LOG_LEVEL=4). Before the bound it lent the forged entry's 47 points at once, on any host,
    # as it still does without NVML (the control: the line is there to be seen).
    _setup_lend(workload, "default", 50, LIBCUDA_LOG_LEVEL="4")
    _nvml(workload, nvml_dir, procs)
    board = workload.tmp.parent / "board"
    workload.run("ctx", "0", "launch", "kernel", "1", "1000")  # creates the board and the fake GPU's entry
    rec = board_records.packer(ctypes.CDLL(str(toolchain.lib)))(50, 0, 0, 0, 0)
    last_lane = board_records.lane(0, board_records.USERS - 1, 0)  # the forged entry's slot (forge_board_user)
    with running(lambda stop: _forge_lender(board, stop, 50, 0, 0),
                 lambda stop: board_records.hold(board, last_lane, rec, stop)):
        time.sleep(0.05)
        gpu, err = spin_run(workload, "1")
    lent = [line for line in err.splitlines() if LENT in line]
    print(f"nvml-bound guard: forged lender, NVML {procs!r}: {len(lent)} lent-share lines, {gpu:.3f} s GPU")
    assert bool(lent) == lends, lent


@pytest.mark.fake_timing
@fake_gpu
def test_nvml_is_asked_every_100_ms_off_the_launch_path(workload: Workload, nvml_dir: Path) -> None:
    # the fake NVML logs each process-list query: a 2 s GPU-bound run of thousands of launches asks about every
    # 100 ms (the watcher thread), never per launch; and the bound is in force (the forged entry ignored)
    _force(workload, 30)
    _nvml(workload, nvml_dir, HOST1)
    log = workload.tmp / "nvml-queries"
    workload.env.update(FAKE_NVML_LOG=str(log))
    stop = _with_forger(workload, _forge_ring, 0, "all")
    try:
        tenant = workload.start("ctx", "0", "spin", "200", "0", "2", "4")
        share, secs, launches = _spin(tenant)
    finally:
        stop.set()
    queries = [line for line in log.read_text().splitlines() if line == f"{tenant.pid} procs"]
    print(f"nvml-bound: {len(queries)} NVML process queries in {secs:.2f} s of {launches} launches; {share:.1f} %")
    assert launches > 1000, launches  # each one a chance to ask NVML, had the launch path done so
    assert 0.5 * secs / 0.1 <= len(queries) <= secs / 0.1 + 3, (len(queries), secs)
    assert share <= 38, share


def _unshare_prefix() -> list[str]:
    """A command prefix running a program in a PID namespace of its own (as root, or through a user namespace),
    or skip."""
    tool = shutil.which("unshare")
    for prefix in (["--pid", "--fork"], ["--user", "--map-root-user", "--pid", "--fork"]):
        if tool and subprocess.run([tool, *prefix, "true"], capture_output=True).returncode == 0:
            return [tool, *prefix]
    pytest.skip("no PID namespace can be made here (unshare --pid refused): the namespace case is not run")


@pytest.mark.fake_timing
@fake_gpu
@pytest.mark.parametrize(("own_ns", "procs", "bounded"),
                         [(False, "self", INITIAL_PID_NS), (True, "self", False), (True, HOST1, True)],
                         ids=["host-ns-lists-itself", "own-ns-lists-itself", "own-ns-lists-host-pids"])
def test_namespace_filtered_list_bounds_nothing(workload: Workload, nvml_dir: Path, own_ns: bool, procs: str,
                                               bounded: bool) -> None:
    # The driver translates PIDs into the caller's PID namespace and leaves out the processes not visible there:
    # seen from a container's own namespace NVML lists that container's processes only, which bounds nothing
    # (its neighbours are on the GPU but not in the list). A list holding the tenant's own PID from a namespace
    # other than the initial one is taken as such: no bound, today's behaviour (~60 % beside the forged busy
    # entry). From the initial namespace the list is every process on the GPU: it bounds (30 %). A list of host
    # PIDs (an untranslated one) bounds wherever it is read.
    _force(workload, 30)
    _nvml(workload, nvml_dir, procs)
    prefix = _unshare_prefix() if own_ns else []
    stop = _with_forger(workload, _forge_ring, 0, "all")
    try:
        tenant = subprocess.Popen([*prefix, str(workload.tc.app), "ctx", "0", "spin", "2000", "0", "2", "4"],
                                  env=workload.env_for(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        workload.procs.append(tenant)
        share, _, _ = _spin(tenant)
    finally:
        stop.set()
    print(f"nvml-bound: own PID namespace {own_ns}, NVML {procs!r}: 30 % tenant got {share:.1f} %")
    if bounded:
        assert share <= 38, share
    else:
        assert share >= 50, share


@pytest.mark.fake_timing
@fake_gpu
@pytest.mark.parametrize("forged", [False, True], ids=["pair", "pair-and-forged-third"])
def test_real_pair_splits_by_limits_with_nvml_listing_both(workload: Workload, second_workload: Workload,
                                                           nvml_dir: Path, forged: bool) -> None:
    # two real containers (one process each) at 30 + 70, NVML listing both: the bound K = 1 is the true count,
    # so the charges are today's (the split of test_interposer_share). With a forged busy third entry beside
    # them (counted as a second neighbour before: each tenant charged a third), the split still holds
    _force(workload, 30)
    _force(second_workload, 70)
    for w in (workload, second_workload):
        _nvml(w, nvml_dir, HOST2)
    stop = _with_forger(workload, _forge_ring, 0, "all") if forged else threading.Event()
    try:
        a = workload.start("ctx", "0", "spin", "2000", "0", "3", "4")
        b = second_workload.start("ctx", "0", "spin", "2000", "0", "3", "4")
        share_a, _, _ = _spin(a)
        share_b, _, _ = _spin(b)
    finally:
        stop.set()
    print(f"nvml-bound: pair 30 + 70, NVML lists 2, forged third {forged}: {share_a:.1f} + {share_b:.1f} %")
    assert abs(share_a - 30) <= 6, (share_a, share_b)
    assert abs(share_b - 70) <= 6, (share_a, share_b)
    assert share_a + share_b >= 90, (share_a, share_b)


@pytest.mark.fake_timing
@fake_gpu
@pytest.mark.parametrize(("procs", "lends"), [(HOST1, False), (None, True)], ids=["nvml-lists-1", "nvml-absent"])
def test_forged_lender_lends_nothing_when_nvml_lists_no_neighbour(workload: Workload, nvml_dir: Path,
                                                                  toolchain: Toolchain, procs: str | None,
                                                                  lends: bool) -> None:
    # a well-formed forged lender (limit 50, nothing used, fresh, its board record held as any tenant can)
    # beside a GPU-bound 50 % tenant under default: without NVML it lends its unused 47 points
    # (test_interposer_lend's control); with NVML listing only the tenant, no lender can be real and the tenant
    # stays at its limit
    workload.env.update(FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="default",
                        HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT="50")
    _nvml(workload, nvml_dir, procs)
    stop = _with_forger(workload, _forge_lender, 50, 0, 0)
    rec = board_records.packer(ctypes.CDLL(str(toolchain.lib)))(50, 0, 0, 0, 0)
    holder = threading.Thread(target=board_records.hold, daemon=True,
                              args=(workload.tmp.parent / "board",
                                    board_records.lane(0, board_records.USERS - 1, 0), rec, stop))
    holder.start()
    try:
        share, _, _ = _spin(workload.start("ctx", "0", "spin", "2000", "0", "2", "4"))
    finally:
        stop.set()
        holder.join()
    print(f"nvml-bound: forged lender, NVML {procs!r}: 50 % tenant got {share:.1f} %")
    if lends:
        assert share >= 70, share
    else:
        assert share <= 58, share


# ---- the bounded charge and lending, unit-tested ----

def _charge(lib: ctypes.CDLL, a: int, b: int, ivs: list[tuple[int, int]], k: int | None) -> int:
    n = max(1, len(ivs))
    since = (ctypes.c_int64 * n)(*[s for s, _ in ivs])
    until = (ctypes.c_int64 * n)(*[u for _, u in ivs])
    if k is None:
        return lib.hami_vgpu_ps_charge_ns(ctypes.c_int64(a), ctypes.c_int64(b), since, until, len(ivs))
    return lib.hami_vgpu_ps_charge_bounded_ns(ctypes.c_int64(a), ctypes.c_int64(b), since, until, len(ivs), k)


@pytest.fixture(scope="module")
def lib(toolchain: Toolchain) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(toolchain.lib))
    lib.hami_vgpu_ps_charge_ns.restype = ctypes.c_int64
    lib.hami_vgpu_ps_charge_bounded_ns.restype = ctypes.c_int64
    return lib


def test_bounded_charge_counts_at_most_k_others(lib: ctypes.CDLL) -> None:
    ten = 10 * MS
    forged = [(0, ten)] * 3  # three neighbours busy all the span (merged per user by the caller: three users)
    assert _charge(lib, 0, ten, forged, None) == ten // 4
    assert _charge(lib, 0, ten, forged, -1) == ten // 4  # k < 0: no bound
    assert _charge(lib, 0, ten, forged, 0) == ten  # nobody else can be on the GPU: the whole span
    assert _charge(lib, 0, ten, forged, 1) == ten // 2
    assert _charge(lib, 0, ten, forged, 3) == ten // 4  # k at the overlap: unchanged
    # a real neighbour busy for the first half, a forged one all along, k = 1: the forged entry fills the real
    # one's idle half (what the count cannot see), never more than one neighbour at once
    assert _charge(lib, 0, ten, [(0, ten // 2), (0, ten)], 1) == ten // 2
    assert _charge(lib, 0, ten, [(0, ten // 2)], 1) == ten // 4 + ten // 2


spans = st.lists(st.tuples(st.integers(-50, 150), st.integers(0, 120)).map(lambda t: (t[0], t[0] + t[1])),
                 max_size=12)


@settings(max_examples=300, deadline=None)
@given(ivs=spans, a=st.integers(0, 50), length=st.integers(0, 100), k=st.integers(0, 14))
def test_bounded_charge_properties(lib: ctypes.CDLL, ivs: list[tuple[int, int]], a: int, length: int,
                                   k: int) -> None:
    # What can be proven of n(t) = 1 + min(m(t), k): (1) never below the unbounded charge (a bound only removes
    # neighbours), equal when k is at least the largest overlap (an honest board with a true count is
    # unchanged); (2) at least (b - a) / (1 + k) up to the per-piece integer division: whatever the board says,
    # at most k others count; (3) no larger k gives a larger charge; (4) the order of the entries changes
    # nothing (there is no choice of which intervals count for a forger to steer).
    ivs = [(s * MS, u * MS) for s, u in ivs]
    a, b = a * MS, (a + length) * MS
    free = _charge(lib, a, b, ivs, None)
    bounded = _charge(lib, a, b, ivs, k)
    assert bounded >= free
    if k >= len(ivs):
        assert bounded == free
    pieces = 2 * len(ivs) + 1
    assert bounded * (1 + k) >= (b - a) - pieces * (1 + k)
    assert _charge(lib, a, b, ivs, k + 1) <= bounded
    assert _charge(lib, a, b, list(reversed(ivs)), k) == bounded


def _lent(lib: ctypes.CDLL, own: int, rows: list[tuple[int, int]], k: int) -> int:
    """rows: (limit %, charged fraction in 1/100 %), fresh, never held, never waiting behind another context (its
    queued share is what it used, so its demand is its charge; see test_interposer_lend's demand tests)."""
    n = max(1, len(rows))
    i32, i64 = ctypes.c_int32 * n, ctypes.c_int64 * n
    return lib.hami_vgpu_lent_share_bounded(own, i32(*[r[0] for r in rows]), i32(*[r[1] for r in rows]),
                                            i32(*[r[1] for r in rows]), None, i64(*[2 * MS] * n), i64(*[10**12] * n),
                                            len(rows), k)


def test_bounded_lending_takes_the_k_that_lend_least(lib: ctypes.CDLL) -> None:
    rows = [(20, 0), (20, 1000), (10, 0)]  # spares 17, 7, 7 points
    assert _lent(lib, 30, rows, -1) == 61  # unbounded: all three
    assert _lent(lib, 30, rows, 0) == 30  # no neighbour can be real: nothing lent
    assert _lent(lib, 30, rows, 1) == 37  # the least-lending one
    assert _lent(lib, 30, rows, 2) == 44
    assert _lent(lib, 30, rows, 3) == 61
    assert _lent(lib, 30, [(20, 0), (60, 0)], 1) == 30  # limits over-commit the GPU: nothing, bound or not


@settings(max_examples=300, deadline=None)
@given(own=st.integers(1, 99), rows=st.lists(st.tuples(st.integers(-5, 105), st.integers(-100, 10100)),
                                             max_size=8), k=st.integers(0, 9))
def test_bounded_lending_properties(lib: ctypes.CDLL, own: int, rows: list[tuple[int, int]], k: int) -> None:
    # between the limit and the unbounded share; monotone in k; equal to the unbounded share once k covers every
    # entry; and at most what any k of the lending entries would lend together (so at most the real lenders'
    # when k of them are real: a forged entry replaces a real lender only by lending less than it)
    free = _lent(lib, own, rows, -1)
    bounded = _lent(lib, own, rows, k)
    assert own <= bounded <= free
    assert _lent(lib, own, rows, k + 1) >= bounded
    if k >= len(rows):
        assert bounded == free
    lending = [i for i, (lim, used) in enumerate(rows) if 1 <= lim <= 100 and 0 <= used <= 10000
               and lim * 100 - used - 300 > 0]  # the rule's valid entries with something spare (its 3-point margin)
    for chosen in itertools.combinations(lending, min(k, len(lending))):
        # the chosen entries lending, the other lenders' limits kept in the over-commit sum with nothing spare
        alone = [(r[0], r[0] * 100) if i in lending and i not in chosen else r for i, r in enumerate(rows)]
        assert bounded <= _lent(lib, own, alone, -1)
