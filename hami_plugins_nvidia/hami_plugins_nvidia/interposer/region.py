"""Python view of the interposer's shared accounting region, through cffi.

The layout is declared once, in csrc/hami_region.h; the text between its CDEF markers is handed to
cffi.cdef() here, so C and Python cannot drift apart. Used by the monitor/metrics side and the tests to
read usage per device and per process, and to reclaim the slots of processes that died.

The file is writable by every process of the container, so its counters are claims. What the processes
really hold is also recorded by the kernel as record locks on the file (``HAMI_LOCK_*`` in the header):
``held_bytes()`` and ``slot_owned()`` read that record, which no write to the file can change.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import cffi

HEADER = Path(__file__).resolve().parent.parent / "csrc" / "hami_region.h"
HAMI_CORE_MAGIC = 19920718


def _cdef_text(header: Path = HEADER) -> str:
    text = header.read_text()
    start = text.index("/* CDEF-BEGIN */") + len("/* CDEF-BEGIN */")
    return text[start : text.index("/* CDEF-END */")]


def _constants(text: str) -> dict[str, int]:
    return {m[1]: int(m[2], 0) for m in re.finditer(r"#define\s+(\w+)\s+(0x[0-9A-Fa-f]+|\d+)", text)}


CONST = _constants(_cdef_text())
ffi = cffi.FFI()
ffi.cdef(_cdef_text())
REGION_SIZE = ffi.sizeof("struct hami_region")
BOARD_SIZE = ffi.sizeof("struct hami_board")
MAX_DEVICES: int = CONST["HAMI_MAX_DEVICES"]
MAX_PROCS: int = CONST["HAMI_MAX_PROCS"]
LOCK_OWN_BASE: int = CONST["HAMI_LOCK_OWN_BASE"]
LOCK_USE_BASE: int = CONST["HAMI_LOCK_USE_BASE"]
LOCK_LANE: int = CONST["HAMI_LOCK_LANE"]
LOCK_DEV_SPAN: int = CONST["HAMI_LOCK_DEV_SPAN"]
# struct flock on 64-bit Linux: l_type, l_whence, l_start, l_len, l_pid
_FLOCK = struct.Struct("hh4xqqi4x")
_GETLK = getattr(fcntl, "F_OFD_GETLK", fcntl.F_GETLK)
_MAX_QUERIES = 4096


class RegionError(RuntimeError):
    """The file is not a region this interposer wrote (corrupt, foreign or another version)."""


@dataclass(frozen=True)
class ProcessUsage:
    """One live slot: a process of the container and what it holds per device."""

    pid: int
    alive: bool
    used_bytes: tuple[int, ...]
    busy_ns: tuple[int, ...]


def header_sum(magic: int, version: int, size: int, container_id: int) -> int:
    """FNV-1a over the identifying header fields, as hami_header_sum() in the C header."""
    h = 2166136261
    for byte in struct.pack("<4Q", magic, version, size, container_id):
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def lock_extent(fd: int, start: int, length: int) -> tuple[int, int] | None:
    """One record lock another owner holds overlapping [start, start+length), as (start, end), or None."""
    out = fcntl.fcntl(fd, _GETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, length, 0))
    typ, _whence, got_start, got_len, _pid = _FLOCK.unpack(out)
    if typ == fcntl.F_UNLCK:
        return None
    return got_start, (2**63 - 1 if got_len == 0 else got_start + got_len)


def locked_bytes(fd: int, lo: int, hi: int) -> int:
    """Bytes of [lo, hi) under record locks of other owners (the kernel reports one lock per question, so
    the range is split around each one found); saturates at 2**64 - 1 past a sane number of locks."""
    todo, total, asked = [(lo, hi)], 0, 0
    while todo:
        a, b = todo.pop()
        asked += 1
        if asked > _MAX_QUERIES:
            return 2**64 - 1
        found = lock_extent(fd, a, b - a)
        if found is None:
            continue
        s, e = max(found[0], a), min(found[1], b)
        total += e - s
        todo += [r for r in ((a, s), (e, b)) if r[0] < r[1]]
    return min(total, 2**64 - 1)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedRegion:
    """A validated, memory-mapped container region (CUDA_DEVICE_MEMORY_SHARED_CACHE)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR)
        try:
            size = os.fstat(self._fd).st_size
            if size != REGION_SIZE:
                raise RegionError(f"{self.path}: size {size}, expected {REGION_SIZE}: not an interposer region")
            self._mm = mmap.mmap(self._fd, REGION_SIZE)
        except BaseException:
            os.close(self._fd)
            raise
        self._r = ffi.cast("struct hami_region *", ffi.from_buffer(self._mm))
        problem = self.problem()
        if problem:
            self.close()
            raise RegionError(f"{self.path}: {problem}: not trusted")

    def problem(self) -> str:
        """Why the region cannot be trusted, or "" (same checks as region.c)."""
        r = self._r
        if r.magic == HAMI_CORE_MAGIC:
            return "a HAMi-core region (magic 19920718), not ours"
        if r.magic != CONST["HAMI_REGION_MAGIC"]:
            return "bad magic"
        if r.version != CONST["HAMI_REGION_VERSION"]:
            return f"unsupported layout version {r.version}"
        if r.size != REGION_SIZE:
            return "size field does not match the layout"
        if r.header_sum != header_sum(r.magic, r.version, r.size, r.container_id):
            return "header checksum mismatch"
        if r.proc_hwm > CONST["HAMI_MAX_PROCS"] or r.device_count > MAX_DEVICES:
            return "counters out of range"
        return ""

    @property
    def container_id(self) -> int:
        return int(self._r.container_id)

    @property
    def priority(self) -> int:
        return int(self._r.priority)

    def limits(self) -> list[int]:
        """Memory limit per device in bytes (0 = none)."""
        return [int(self._r.dev[i].limit_bytes) for i in range(MAX_DEVICES)]

    def sm_limits(self) -> list[int]:
        """SM share per device in percent (100 = none)."""
        return [int(self._r.dev[i].sm_limit) for i in range(MAX_DEVICES)]

    def busy_ns(self, device: int) -> int:
        """GPU busy time the container's throttled launches were measured to take on a device."""
        return int(self._r.dev[device].busy_ns)

    def processes(self) -> list[ProcessUsage]:
        """Every live slot, with whether its process still exists."""
        out = []
        for i in range(min(self._r.proc_hwm, MAX_PROCS)):
            s = self._r.procs[i]
            if s.state:
                out.append(
                    ProcessUsage(
                        pid=int(s.pid),
                        alive=_pid_alive(int(s.pid)),
                        used_bytes=tuple(int(s.used[d]) for d in range(MAX_DEVICES)),
                        busy_ns=tuple(int(s.busy_ns[d]) for d in range(MAX_DEVICES)),
                    )
                )
        return out

    def usage(self, device: int) -> int:
        """Bytes charged to the container on a device, as the file's live slots claim."""
        return sum(p.used_bytes[device] for p in self.processes())

    def held_bytes(self, device: int) -> int:
        """Bytes the container's processes hold on a device, from the kernel's record locks (a rewritten
        file cannot change it; a lock placed by anything else in the span counts too)."""
        if not 0 <= device < MAX_DEVICES:
            raise ValueError(f"device {device} out of range 0..{MAX_DEVICES - 1}")
        lo = LOCK_USE_BASE + device * LOCK_DEV_SPAN
        return locked_bytes(self._fd, lo, lo + LOCK_DEV_SPAN)

    def slot_owned(self, index: int) -> bool:
        """Whether a live process holds slot `index` (its owner lock), whatever the file says."""
        if not 0 <= index < MAX_PROCS:
            raise ValueError(f"slot {index} out of range 0..{MAX_PROCS - 1}")
        return lock_extent(self._fd, LOCK_OWN_BASE + index, 1) is not None

    def reclaim_dead(self) -> list[int]:
        """Frees the slots no live process holds (dead, or forged); returns their pids. Takes the region lock."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            dead = []
            for i in range(min(self._r.proc_hwm, MAX_PROCS)):
                s = self._r.procs[i]
                if s.state and not self.slot_owned(i):
                    dead.append(int(s.pid))
                    ffi.memmove(ffi.addressof(self._r.procs[i]), b"\0" * ffi.sizeof(s), ffi.sizeof(s))
            return dead
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Unmaps the region (views taken from it become invalid)."""
        if getattr(self, "_mm", None) is not None:
            self._r = None
            self._mm.close()
            self._mm = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SharedRegion:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
