"""Board records (csrc/board.c, layout in hami_region.h HAMI_BREC_*) as a test reads and forges them: each
launching process holds a kernel record lock in its own lane of its board user slot, whose length packs what its
neighbours' lending and switch charging read. The lengths are made by the library's own packer
(hami_vgpu_brec_pack), so this file holds only the lane arithmetic of the header's layout."""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
import threading
from pathlib import Path

from hami_plugins_nvidia.interposer import region

BASE, PROCS, LANE = (region.CONST[k] for k in ("HAMI_BREC_BASE", "HAMI_BREC_PROCS", "HAMI_BREC_LANE"))
USERS = region.CONST["HAMI_BOARD_USERS"]
SLOT = PROCS * LANE
_FLOCK = struct.Struct("hh4xqqi4x")


def lane(entry: int, user: int, index: int) -> int:
    """Start of lane `index` of user slot `user` on board entry `entry`."""
    return BASE + (entry * USERS + user) * SLOT + index * LANE


def records(board: Path, entry: int = 0) -> list[tuple[int, int, int]]:
    """(user slot, lane, lock length) of every lock other owners hold in the entry's record span, as the kernel
    reports them (this process's own locks are not reported)."""
    lo = lane(entry, 0, 0)
    out, todo = [], [(lo, lo + USERS * SLOT)]
    fd = os.open(board, os.O_RDONLY)
    try:
        while todo:
            a, b = todo.pop()
            found = region.lock_extent(fd, a, b - a)
            if found is None:
                continue
            s, e = max(found[0], a), min(found[1], b)
            out.append(((s - lo) // SLOT, (s - lo) % SLOT // LANE, e - s))
            todo += [r for r in ((a, s), (e, b)) if r[0] < r[1]]
    finally:
        os.close(fd)
    return sorted(out)


def hold(board: Path, start: int, length: int, stop: threading.Event, ready: threading.Event | None = None) -> None:
    """Holds a write lock on [start, start + length) of the board (an open file description lock of its own, as any
    tenant can take) until stop; sets ready once it is held."""
    with open(board, "r+b") as f:
        fcntl.fcntl(f.fileno(), fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, length, 0))
        if ready is not None:
            ready.set()
        stop.wait()


def packer(lib: ctypes.CDLL):
    """hami_vgpu_brec_pack(limit, held, frac_bp, queued_bp, solo_bp) -> lock length, with its C types."""
    fn = lib.hami_vgpu_brec_pack
    fn.restype = ctypes.c_uint64
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32]
    return fn
