"""Shared files a tenant can write must not be turned against the container or its neighbours (issue 14,
issue 18): counters range-checked on every read, sums that saturate, refusal when no slot is free, future
board times ignored, no link followed, and the limit held while regions are truncated, overwritten, or
raced by 64 processes or by SIGKILL. The memory cases also run against the real driver on a GPU
(HAMI_INTERPOSER_REAL_DRIVER=1); the board cases need the fake's simulated kernels."""

from __future__ import annotations

import fcntl
import mmap
import os
import random
import re
import signal
import struct
import time
from pathlib import Path

import pytest

from .conftest import REAL_DRIVER, Run, Workload, fake_only, region

MIB = 1 << 20
# no context charge: these tests are about the shared counters, and a real context would eat the limit
NO_CTX = {"CUDA_DEVICE_CONTEXT_RESERVE": "0"}


def _hold(w: Workload, mib: int, **env: str):
    proc = w.start("ctx", "0", "alloc", f"{mib}m", "hang", **NO_CTX, **env)
    for line in proc.stdout:
        if "hanging" in line:
            return proc
    raise AssertionError(f"holder exited early: {proc.stderr.read()}")


def _lines(stderr: str, text: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if text in ln]


# docs/security.md's interposer table is generated from what these tests observe (tests/security_doc.py):
# each test records its row, and the last test of the file compares the table with the document.
DOC_ROWS: dict[str, tuple[str, str]] = {}


def _said(stderr: str, text: str, w: Workload) -> str:
    """The one log line containing `text`, without its prefix, paths and pids (stable across runs)."""
    (line,) = _lines(stderr, text)
    line = re.sub(r"^\[HAMI-vgpu \w+ pid \d+\] ", "", line).replace(str(w.tmp), "<dir>")
    line = re.sub(r"pid \d+", "pid <pid>", line)
    return "`" + (line if len(line) <= 150 else line[:149] + "…") + "`"


def _allocs(sizes: list[str], r: Run) -> str:
    got = r.values("alloc")
    return ", ".join(f"{s} {'granted' if g[0] == 'ok' else 'refused (out of memory)'}" for s, g in zip(sizes, got, strict=True))


def _doc(key: str, tampering: str, answer: str) -> None:
    DOC_ROWS[key] = (tampering, answer)


def test_out_of_range_high_water_mark_is_clamped_not_a_crash(workload: Workload) -> None:
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    _hold(workload, 600)
    with region.SharedRegion(workload.region_path) as reg:
        reg._r.proc_hwm = 0xFFFFFFFF
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "300m", "alloc", "600m", **NO_CTX)
    assert r.returncode == 0, r.stderr
    assert r.values("alloc") == [["err", "2"], ["ok", "0"], ["err", "2"]]
    assert len(_lines(r.stderr, "high-water mark 4294967295 is out of range")) == 1
    _doc("hwm", "`proc_hwm` set to 0xFFFFFFFF in a live region (a tenant holds 600 MiB of 1 GiB)",
         _allocs(["600 MiB", "300 MiB", "600 MiB"], r) + "; " + _said(r.stderr, "high-water mark", workload))


def _forge_slot(reg, used: int) -> int:
    """Marks a free slot live with `used` bytes on device 0, as a tenant scribbling on the file would."""
    r_ = reg._r
    free = next(i for i in range(region.MAX_PROCS) if not r_.procs[i].state)
    r_.procs[free].pid = os.getpid()  # a live process, so a pid check alone would keep it
    r_.procs[free].state = 1
    r_.procs[free].used[0] = used
    r_.proc_hwm = max(r_.proc_hwm, free + 1)
    return free


def _own_lock(fd: int, start: int, length: int, kind: int = fcntl.F_WRLCK) -> None:
    """A POSIX record lock held by this (test) process: what any process of the container could place."""
    fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack("hh4xqqi4x", kind, os.SEEK_SET, start, length, 0))


@pytest.mark.parametrize("used", [(1 << 64) - 1024 * MIB, 0], ids=["near-2^64", "zero"])
def test_forged_slot_neither_lifts_nor_blocks_the_limit(workload: Workload, used: int) -> None:
    """A slot no process holds (the kernel's owner lock) is a claim, not usage: the limit is exactly what
    the live processes hold, whatever the forged count (near 2^64 used to wrap the sum below the limit)."""
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    _hold(workload, 100)
    with region.SharedRegion(workload.region_path) as reg:
        forged = _forge_slot(reg, used)
    r = workload.run("ctx", "0", "alloc", "900m", "alloc", "25m", "alloc", "24m", **NO_CTX)
    assert r.values("alloc") == [["ok", "0"], ["err", "2"], ["ok", "1"]]  # 100 + 900 + 24 = 1024 MiB exactly
    assert len(_lines(r.stderr, f"slot {forged} (pid {os.getpid()}")) == 1  # named and cleared, once
    with region.SharedRegion(workload.region_path) as reg:
        assert not reg._r.procs[forged].state and reg.usage(0) == reg.held_bytes(0) == 100 * MIB
    _doc(f"forged-{used}", f"a slot no process holds, forged with {'0' if not used else 'near 2⁶⁴'} bytes (a tenant "
         "holds 100 MiB of 1 GiB)", _allocs(["900 MiB", "25 MiB", "24 MiB"], r) + "; " + _said(r.stderr, "held by no",
                                                                                             workload))


def test_forged_count_in_a_held_slot_is_not_believed(workload: Workload) -> None:
    """Even a slot a live process holds cannot lie: the others' usage is read from the kernel's locks."""
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    holder = _hold(workload, 600)
    with region.SharedRegion(workload.region_path) as reg:
        mine = next(i for i in range(region.MAX_PROCS) if reg._r.procs[i].pid == holder.pid)
        assert reg.slot_owned(mine)
        reg._r.procs[mine].used[0] = 0  # "the holder uses nothing"
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "424m", **NO_CTX)
    assert r.values("alloc") == [["err", "2"], ["ok", "0"]]
    with region.SharedRegion(workload.region_path) as reg:
        assert reg.held_bytes(0) == 600 * MIB  # the kernel's record; the holder restores its slot when it next locks
    _doc("held-slot", "a live tenant's own slot count set to 0 (it holds 600 MiB of 1 GiB)",
         _allocs(["600 MiB", "424 MiB"], r) + " (its usage is read from the kernel's locks)")


def test_all_slots_taken_refuses_memory_with_one_line(workload: Workload) -> None:
    """1,024 slot owner locks held by live processes (here: this test process) leave no slot: refused."""
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    holder = _hold(workload, 1)  # keeps the region live so it is not re-initialised
    fd = os.open(workload.region_path, os.O_RDWR)
    try:
        with region.SharedRegion(workload.region_path) as reg:
            held = [i for i in range(region.MAX_PROCS) if reg.slot_owned(i)]
        assert len(held) == 1 and holder.poll() is None
        for i in range(region.MAX_PROCS):
            if i not in held:
                _own_lock(fd, region.LOCK_OWN_BASE + i, 1)
        r = workload.run("ctx", "0", "alloc", "1m", "alloc", "1m", "alloc", "1m", **NO_CTX)
        assert [v[0] for v in r.values("alloc")] == ["err"] * 3  # refused, never passed unchecked
        assert len(_lines(r.stderr, "no free process slot")) == 1
        _doc("noslot", "all 1,024 slot owner locks held by live processes",
             _allocs(["1 MiB"] * 3, r) + "; " + _said(r.stderr, "no free process slot", workload))
    finally:
        os.close(fd)  # drops this process's locks
    r = workload.run("ctx", "0", "alloc", "1m", **NO_CTX)
    assert r.values("alloc") == [["ok", "0"]]


def test_lock_placed_in_the_usage_span_counts_as_usage(workload: Workload) -> None:
    """Anything holding a lock in a device's usage span is counted (fail closed): it can refuse memory,
    never free any. Released, the memory is allocatable again."""
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    _hold(workload, 100)
    fd = os.open(workload.region_path, os.O_RDWR)
    try:
        _own_lock(fd, region.LOCK_USE_BASE + 700 * region.LOCK_LANE, 800 * MIB)  # in a lane nobody owns
        r = workload.run("ctx", "0", "alloc", "200m", "alloc", "124m", **NO_CTX)
        assert r.values("alloc") == [["err", "2"], ["ok", "0"]]
        _doc("span", "another process holds an 800 MiB lock in a free lane of the usage span (a tenant holds 100 MiB "
             "of 1 GiB)", _allocs(["200 MiB", "124 MiB"], r) + " (counted as usage; released, 900 MiB fit)")
        with region.SharedRegion(workload.region_path) as reg:
            assert reg.held_bytes(0) == 900 * MIB and reg.held_bytes(1) == 0
    finally:
        os.close(fd)
    assert workload.run("ctx", "0", "alloc", "900m", **NO_CTX).values("alloc") == [["ok", "0"]]


def test_region_path_that_is_a_symlink_is_not_followed(workload: Workload) -> None:
    victim = workload.tmp / "victim"
    victim.write_bytes(b"precious")
    workload.region_path.symlink_to(victim)
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "600m", CUDA_DEVICE_MEMORY_LIMIT="1g", **NO_CTX)
    assert r.values("alloc") == [["ok", "0"], ["err", "2"]]  # the limit still holds, privately
    assert victim.read_bytes() == b"precious"
    assert "symbolic link" in r.stderr
    _doc("symlink", "region path is a symbolic link to another file (limit 1 GiB)",
         _allocs(["600 MiB", "600 MiB"], r) + "; the target untouched; " + _said(r.stderr, "symbolic link", workload))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_region_owned_by_another_user_is_not_trusted(workload: Workload) -> None:
    workload.run("ctx", "0", "alloc", "1m", CUDA_DEVICE_MEMORY_LIMIT="4g", **NO_CTX)
    os.chown(workload.region_path, 12345, 12345)
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "600m", CUDA_DEVICE_MEMORY_LIMIT="1g", **NO_CTX)
    assert r.values("alloc") == [["ok", "0"], ["err", "2"]]
    assert "owned by another user" in r.stderr


def test_live_region_with_laxer_limits_applies_the_stricter(workload: Workload) -> None:
    _hold(workload, 100, CUDA_DEVICE_MEMORY_LIMIT="4g")
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "600m", CUDA_DEVICE_MEMORY_LIMIT="1g", **NO_CTX)
    assert r.values("alloc") == [["ok", "0"], ["err", "2"]]
    assert len(_lines(r.stderr, "the stricter apply")) == 1
    with region.SharedRegion(workload.region_path) as reg:
        assert reg.limits()[0] == 1 << 30  # for every process of the container
    _doc("stricter", "a live region limited to 4 GiB meets a newcomer whose environment says 1 GiB",
         _allocs(["600 MiB", "600 MiB"], r) + "; 1 GiB for every process; " + _said(r.stderr, "stricter apply",
                                                                                    workload))


def test_limit_loosened_in_a_live_region_is_restored(workload: Workload) -> None:
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    holder = workload.start("ctx", "0", "alloc", "100m", "sleep", "300", "alloc", "1200m", "hang", **NO_CTX)
    time.sleep(0.15)
    with region.SharedRegion(workload.region_path) as reg:
        reg._r.dev[0].limit_bytes = 0  # "no limit"
    out = []
    for line in holder.stdout:
        out.append(line.split())
        if line.startswith("hanging"):
            break
    assert ["alloc", "err", "2"] in out
    holder.kill()
    err = holder.stderr.read()
    assert "loosened" in err
    _doc("loosened", "the limit set to 0 (\"none\") in a live region of 1 GiB",
         "1200 MiB refused (out of memory); " + _said(err, "loosened", workload))


@fake_only
def test_future_board_times_are_ignored(workload: Workload, second_workload: Workload) -> None:
    workload.run("ctx", "0", "launch", "kernel", "5", "1000", CUDA_TASK_PRIORITY="0")
    board_path = workload.tmp.parent / "board"
    with open(board_path, "r+b") as f, mmap.mmap(f.fileno(), region.BOARD_SIZE) as mm:
        board = region.ffi.cast("struct hami_board *", region.ffi.from_buffer(mm))
        far = time.monotonic_ns() + 10**18
        board.gpu[0].prio_active_ns[0] = far  # would hold every lower level for 30 years
        board.gpu[0].user_id[5] = 0x1234       # a forged neighbour, "busy" and "active" for 30 years:
        board.gpu[0].user_active_ns[5] = far   # it would halve everyone's share (processor sharing)
        board.gpu[0].user_since_ns[5] = far
        board.gpu[0].user_open_ns[5] = far
        del board
    t0 = time.monotonic()
    r = second_workload.run("ctx", "0", "launch", "kernel", "20", "1000", CUDA_TASK_PRIORITY="1",
                            CUDA_DEVICE_SM_LIMIT="90", GPU_CORE_UTILIZATION_POLICY="force", timeout=20)
    assert r.values("launch")[0][0] == "0"
    assert time.monotonic() - t0 < 5
    assert len(_lines(r.stderr, "a priority mark is")) == 1
    assert len(_lines(r.stderr, "a busy mark is")) == 1  # one line per distinct refusal, not one per read


@fake_only
def test_board_directory_is_sticky_and_board_symlink_not_followed(workload: Workload, tmp_path: Path) -> None:
    board = tmp_path / "vgpulock" / "hami-node-board"
    workload.run("ctx", "0", "launch", "kernel", "2", "100", CUDA_TASK_PRIORITY="0", HAMI_NODE_BOARD=str(board))
    assert board.parent.stat().st_mode & 0o7777 == 0o1777
    assert board.stat().st_size == region.BOARD_SIZE
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "vgpulock" / "linked-board"
    link.symlink_to(victim)
    r = workload.run("ctx", "0", "launch", "kernel", "2", "100", CUDA_TASK_PRIORITY="0", HAMI_NODE_BOARD=str(link))
    assert r.values("launch")[0][0] == "0" and "symbolic link" in r.stderr
    assert victim.read_bytes() == b"precious"


def _counter(path: Path) -> Path:
    path.write_bytes(b"\0" * 16)
    return path


def _max_seen(path: Path) -> int:
    return struct.unpack("<QQ", path.read_bytes())[1]


def test_sixty_four_processes_never_go_over_and_return_to_zero(workload: Workload) -> None:
    limit = 512 * MIB
    ctr = _counter(workload.tmp / "counter")
    workload.env.update(CUDA_DEVICE_MEMORY_LIMIT="512m", DRIVER_COUNTER=str(ctr), **NO_CTX)
    _hold(workload, 1)  # a live region for the whole run
    steps = "60" if REAL_DRIVER else "200"
    procs = [workload.start("ctx", "0", "stress", steps, "48", str(seed)) for seed in range(64)]
    refused = 0
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        refused += int(out.split("stress ")[1].split()[1])
    assert refused > 0, "the limit was never reached: the test proves nothing"
    assert _max_seen(ctr) <= limit - MIB  # the holder's 1 MiB is not in the counter
    with region.SharedRegion(workload.region_path) as reg:
        assert reg.usage(0) == reg.held_bytes(0) == MIB  # only the holder's block is left


def test_sigkill_mid_allocation_leaks_nothing(workload: Workload) -> None:
    workload.env.update(CUDA_DEVICE_MEMORY_LIMIT="512m", **NO_CTX)
    _hold(workload, 1)
    rng = random.Random(7)
    for round_ in range(3):
        procs = [workload.start("ctx", "0", "stress", "100000", "64", str(round_ * 100 + k)) for k in range(8)]
        time.sleep(rng.uniform(0.2, 0.5))
        for p in procs:
            p.send_signal(signal.SIGKILL)  # somewhere inside alloc/free, the lock held or not
            p.wait()
    r = workload.run("ctx", "0", "alloc", "511m", "meminfo", **NO_CTX)
    assert r.values("alloc") == [["ok", "0"]], r.stderr  # every killed process's charge was reclaimed
    with region.SharedRegion(workload.region_path) as reg:
        assert reg.usage(0) == MIB


def _wreck(path: Path, attack: str, rng: random.Random) -> None:
    size = region.REGION_SIZE
    with open(path, "r+b") as f:
        if attack == "truncate":
            f.truncate(rng.choice([0, 100, size // 2]))
        elif attack == "random":
            f.seek(0)
            f.write(rng.randbytes(size))
        else:
            f.seek(0)
            f.write(b"\0" * size)


@pytest.mark.parametrize("attack", ["truncate", "random", "zero"])
def test_region_rewritten_while_tenants_run_keeps_the_limit(workload: Workload, attack: str) -> None:
    """Six tenants allocate and free against 512 MiB while the file is truncated, filled with random
    bytes or zeroed every 5 ms: never a byte over, no crash, one line per kind of tampering, and once it
    stops, the file and the kernel's record both show only the holder's 1 MiB."""
    limit = 512 * MIB
    ctr = _counter(workload.tmp / "counter")
    workload.env.update(CUDA_DEVICE_MEMORY_LIMIT="512m", DRIVER_COUNTER=str(ctr), **NO_CTX)
    _hold(workload, 1)
    steps = "400" if REAL_DRIVER else "20000"
    procs = [workload.start("ctx", "0", "ready", "sleep", "30", "stress", steps, "64", str(seed)) for seed in range(6)]
    for p in procs:  # every tenant attached before the first rewrite (a newcomer meeting a wrecked file is
        assert p.stdout.readline().strip() == "ctx 0"  # test_newcomer_meeting_a_wrecked_region_...)
        assert p.stdout.readline().strip() == "ready"
    rng = random.Random(attack)
    rewrites = 0
    while any(p.poll() is None for p in procs):
        _wreck(workload.region_path, attack, rng)
        rewrites += 1
        time.sleep(0.005)
    errs, refused = [], 0
    for p in procs:
        out, err = p.communicate()
        assert p.returncode == 0, err  # no SIGBUS, no crash
        refused += int(out.split("stress ")[1].split()[1])
        errs.append(err)
        repeated = [ln for ln in set(err.splitlines()) if err.splitlines().count(ln) > 1]
        assert not repeated, repeated  # one line per distinct refusal or repair, not one per call
    assert rewrites >= 3 and refused > 0, (rewrites, refused)  # the attack ran and the limit was reached
    assert any("resized" in e or "overwritten" in e for e in errs)
    assert _max_seen(ctr) <= limit - MIB, f"{(_max_seen(ctr) - limit + MIB) / MIB:.1f} MiB over the limit"
    r = workload.run("ctx", "0", "alloc", "511m", "alloc", "1m", **NO_CTX)  # the next process repairs the file
    assert r.values("alloc") == [["ok", "0"], ["err", "2"]], r.stderr
    with region.SharedRegion(workload.region_path) as reg:
        assert reg.usage(0) == reg.held_bytes(0) == MIB and reg.limits()[0] == limit
    what = {"truncate": "truncated", "random": "filled with random bytes", "zero": "zeroed"}[attack]
    _doc(f"rewrite-{attack}", f"region {what} every 5 ms while 6 tenants allocate and free against 512 MiB",
         "never a byte over the limit; no tenant crashed; no log line repeated; afterwards the file and the kernel "
         "both show the 1 MiB still held, and 511 MiB fit exactly")


@pytest.mark.parametrize("attack", ["truncate", "random", "zero"])
def test_newcomer_meeting_a_wrecked_region_counts_the_live_tenants(workload: Workload, attack: str) -> None:
    """A process that attaches after the file was wrecked, while a tenant holds 600 MiB, rebuilds the
    region and counts that tenant (from the kernel's locks): it does not fall back to private accounting
    with a whole limit of its own."""
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    _hold(workload, 600)
    _wreck(workload.region_path, attack, random.Random(attack))
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "424m", "alloc", "1m", **NO_CTX)
    assert r.values("alloc") == [["err", "2"], ["ok", "0"], ["err", "2"]], r.stderr
    assert "accounting covers this process only" not in r.stderr
    assert len(_lines(r.stderr, "while other processes of this container use it")) == 1
    with region.SharedRegion(workload.region_path) as reg:  # rebuilt: trusted again, the limit back
        assert reg.limits()[0] == 1 << 30 and reg.held_bytes(0) == 600 * MIB
    if attack == "zero":
        _doc("newcomer", "a process attaches to a zeroed region while a tenant holds 600 MiB of 1 GiB",
             _allocs(["600 MiB", "424 MiB", "1 MiB"], r) + "; " + _said(r.stderr, "while other processes", workload))


def test_region_lock_held_forever_stalls_nobody_and_keeps_the_limit(workload: Workload) -> None:
    """A process that takes the region's flock and never lets go: tenants wait 2 s once, say so in one line,
    then go on without it; six of them racing meanwhile never go over (they reserve in the kernel before
    they count, so of two racing charges at least one sees the other)."""
    limit = 512 * MIB
    ctr = _counter(workload.tmp / "counter")
    workload.env.update(CUDA_DEVICE_MEMORY_LIMIT="512m", DRIVER_COUNTER=str(ctr), **NO_CTX)
    _hold(workload, 1)
    fd = os.open(workload.region_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        t0 = time.monotonic()
        steps = "200" if REAL_DRIVER else "3000"
        procs = [workload.start("ctx", "0", "stress", steps, "64", str(seed)) for seed in range(6)]
        refused = 0
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            refused += int(out.split("stress ")[1].split()[1])
            assert len(_lines(err, "going on without it")) == 1, err
        assert time.monotonic() - t0 < 60
        assert refused > 0
        assert _max_seen(ctr) <= limit - MIB, f"{(_max_seen(ctr) - limit + MIB) / MIB:.1f} MiB over the limit"
        _doc("flock", "the region's `flock` taken and never released while 6 tenants allocate against 512 MiB",
             "each tenant: " + _said(err, "going on without it", workload) + "; never a byte over the limit")
    finally:
        os.close(fd)
    with region.SharedRegion(workload.region_path) as reg:
        assert reg.held_bytes(0) == MIB


@fake_only  # closing every descriptor would also close the real driver's
def test_descriptor_closed_by_the_application_keeps_the_usage_counted(workload: Workload) -> None:
    """A program that closes every descriptor (as daemons do) drops its slot's owner lock with the region's
    descriptor; the interposer notices at its next call, reopens the file, moves to a new slot with its usage,
    and maps the file again (which releases the old record): counted once, before and after."""
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    proc = workload.start("ctx", "0", "alloc", "600m", "closefds", "meminfo", "sleep", "1000", "alloc", "424m",
                          "alloc", "1m", "hang", **NO_CTX)
    out = []
    for line in proc.stdout:
        out.append(line.split())
        if line.startswith("meminfo"):  # the first call after the close: the record is moved
            with region.SharedRegion(workload.region_path) as reg:
                assert reg.held_bytes(0) == 600 * MIB
                assert [p.pid for p in reg.processes()] == [proc.pid]
        if line.startswith("hanging"):
            break
    assert [w for w in out if w[0] == "alloc"] == [["alloc", "ok", "0"], ["alloc", "ok", "1"], ["alloc", "err", "2"]]
    with region.SharedRegion(workload.region_path) as reg:
        assert reg.held_bytes(0) == reg.usage(0) == 1024 * MIB
    assert workload.run("ctx", "0", "alloc", "1m", **NO_CTX).values("alloc") == [["err", "2"]]
    proc.kill()
    proc.wait()
    err = proc.stderr.read()
    assert len(_lines(err, "descriptor was closed by the application")) == 1 and "could not" not in err
    _doc("fd", "a tenant holding 600 MiB of 1 GiB closes every descriptor (as daemons do), then allocates on",
         _allocs(["424 MiB", "1 MiB"], Run(["alloc " + " ".join(w[1:]) for w in out if w[0] == "alloc"][1:], "", 0))
         + "; its 600 MiB counted throughout; " + _said(err, "descriptor was closed", workload))


DOC_ORDER = ["rewrite-truncate", "rewrite-random", "rewrite-zero", "newcomer", "forged-18446744072635809792",
             "forged-0", "held-slot", "span", "flock", "fd", "noslot", "hwm", "loosened", "stricter", "symlink"]


def test_security_doc_interposer_table_is_current() -> None:
    """docs/security.md's interposer table is what the tests above observed (HAMI_UPDATE_DOCS=1 rewrites it)."""
    if REAL_DRIVER:
        pytest.skip("the table is generated on the fake libcuda")
    missing = [k for k in DOC_ORDER if k not in DOC_ROWS]
    if missing:
        pytest.skip(f"run the whole file to check the generated table (rows not produced: {', '.join(missing)})")
    from security_doc import check_section, table

    check_section("interposer-tamper", table(["tampering", "answer (observed by the test)"],
                                              [list(DOC_ROWS[k]) for k in DOC_ORDER]))
