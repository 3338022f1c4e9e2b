"""The node's process census: every GPU's process count, published for the interposer in pods.

Why: the interposer bounds how many neighbours a charge counts by the number of processes on the GPU
(csrc/nvmlq.c). From a pod's own PID namespace the driver lists only that pod's processes, so the bound
needs the count from outside: the node agent, in the host's PID namespace (the chart sets ``hostPID``),
counts every GPU's processes through NVML every ~100 ms and writes one file per GPU into a folder the
device plugin mounts read-only into every container (``HAMI_PROC_CENSUS_DIR``). The interposer trusts a
file only if root owns it and the folder, nobody else can write either, the mount is read-only (or the
reader is not root), it parses strictly and the sample is at most 1 s old.

The file, named by the GPU's UUID, is one line (the one place this format is written; the C parser is
``hami_vgpu_census_parse``)::

    hami-proc-census 1 <uuid> <count> <CLOCK_MONOTONIC ns of the sample>

``count`` is the compute processes plus MPS clients (``NvmlPort.process_count``). Each file is written
to a temporary name in the same folder and renamed over the old one, mode 0644; the folder is 0755.
A GPU whose count cannot be read keeps its old file, which goes stale: the census never writes a guess.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .nvml_port import NvmlFailure, NvmlPort

log = logging.getLogger("hami_plugins_nvidia.proc_census")

VERSION = 1
#: Where the agent publishes on a real node, and the same path inside containers.
DEFAULT_DIR = "/run/hami-hal/proc-census"
#: The env var naming the folder inside a container (csrc/env.c, at most 255 characters).
ENV_DIR = "HAMI_PROC_CENSUS_DIR"
#: Set beside ENV_DIR: a container that was given the census and cannot read it (a tenant that hid it under a
#: tmpfs of its own, a stopped agent) counts no neighbour instead of all of them, so the bound fails closed.
ENV_REQUIRED = "HAMI_PROC_CENSUS_REQUIRED"
DIR_MAX = 255
INTERVAL_S = 0.1
#: The interposer's ceiling on a count (CENSUS_COUNT_MAX): a larger one is not written.
COUNT_MAX = 4096
#: What a GPU UUID must look like to name a file (the interposer checks the same): no separators, no dot first.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,94}")
#: The kernel's fixed inode number of the initial PID namespace.
INITIAL_PID_NS_INO = 0xEFFFFFFC


class CensusError(RuntimeError):
    """The census folder cannot be used (one line naming it and why)."""


def census_line(uuid: str, count: int, sampled_ns: int) -> str:
    """The file's whole content."""
    return f"hami-proc-census {VERSION} {uuid} {count} {sampled_ns}\n"


def in_host_pid_namespace() -> bool:
    """True in the initial PID namespace, the only one from which NVML lists every process on a GPU."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino == INITIAL_PID_NS_INO
    except OSError:
        return False


def check_dir_option(value: object) -> str:
    """The configured folder if usable as one (absolute, short enough for the interposer, no '..'), else raise."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > DIR_MAX or "\0" in value \
            or ".." in value.split("/"):
        raise ValueError(f"must be an absolute path of at most {DIR_MAX} characters without '..'")
    return value.rstrip("/") or "/"


def census_dir(configured: str | None, simulated: bool) -> str | None:
    """The folder in use: the configured one, else the default on a real node and none on a simulated one
    (a test node must not write into the host's /run); "" turns the census off."""
    if configured is None:
        return None if simulated else DEFAULT_DIR
    return configured or None


def mount_source(folder: str | None) -> str | None:
    """``folder`` if it is a folder on this host (not a symlink), else None: a container whose mount source is
    missing would not start, so without the folder a container gets no census (its interposer says so)."""
    if not folder:
        return None
    try:
        return folder if stat.S_ISDIR(os.lstat(folder).st_mode) else None
    except OSError:
        return None


class ProcCensus:
    """Publishes each GPU's process count every ``interval`` seconds until stopped."""

    def __init__(self, port: NvmlPort, folder: str | Path, *, interval: float = INTERVAL_S,
                 clock: Callable[[], int] = time.monotonic_ns, require_host_pid: bool = True) -> None:
        self.port = port
        self.folder = Path(folder)
        self.interval = interval
        self.clock = clock
        self.require_host_pid = require_host_pid
        self._uuids: dict[int, str | None] = {}
        self._said: set[str] = set()

    def _once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning(msg, *args)

    # -- the folder -----------------------------------------------------------------------------

    def open_folder(self) -> int:
        """Create (0755) or check the folder; a descriptor for it. Raises CensusError when it is not ours."""
        try:
            self.folder.mkdir(mode=0o755, parents=True, exist_ok=True)
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as err:
            raise CensusError(f"process census folder {self.folder}: {err.strerror or err}") from None
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            os.close(fd)
            raise CensusError(f"process census folder {self.folder} is owned by uid {st.st_uid}, not this agent's "
                              f"{os.geteuid()}: not publishing")
        if stat.S_IMODE(st.st_mode) != 0o755:
            os.fchmod(fd, 0o755)
        return fd

    # -- one round ------------------------------------------------------------------------------

    def _uuid(self, index: int) -> str | None:
        if index not in self._uuids:
            uuid = self.port.uuid(index)
            if not SAFE_NAME.fullmatch(uuid):
                self._once(f"uuid:{index}", "process census: GPU %d's UUID %r is not a safe file name: skipped",
                           index, uuid[:100])
                uuid = None
            self._uuids[index] = uuid
        return self._uuids[index]

    def publish_once(self, dir_fd: int) -> dict[str, int]:
        """Count and write every GPU once; the counts written, by UUID. A failing GPU keeps its old file."""
        written: dict[str, int] = {}
        try:
            count = self.port.device_count()
        except NvmlFailure as err:
            self._once(f"count:{err.code}", "process census: no GPU count from NVML (%s): files go stale", err)
            return written
        for index in range(count):
            try:
                uuid = self._uuid(index)
                if uuid is None:
                    continue
                sampled = self.clock()  # before the query: the sample is never younger than it claims
                procs = self.port.process_count(index)
            except NvmlFailure as err:
                self._once(f"nvml:{index}:{err.code}", "process census: GPU %d: %s: its file goes stale", index, err)
                continue
            if not 0 <= procs <= COUNT_MAX:
                self._once(f"range:{index}", "process census: GPU %d: NVML counts %d processes (0-%d accepted): "
                           "its file goes stale", index, procs, COUNT_MAX)
                continue
            self._write(dir_fd, uuid, census_line(uuid, procs, sampled))
            written[uuid] = procs
        return written

    @staticmethod
    def _write(dir_fd: int, name: str, text: str) -> None:
        """Atomically: a temporary file in the same folder, 0644, renamed over ``name``."""
        tmp = f".{name}.tmp"  # one publisher per node; a leftover is overwritten
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=dir_fd)
        try:
            os.fchmod(fd, 0o644)  # whatever the umask
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)

    # -- the loop -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set (the node agent's loop thread). Never raises.

        The folder is made first in any case: containers are given it as a mount (see ``mount_source``)."""
        try:
            dir_fd = self.open_folder()
        except CensusError as err:
            log.error("%s", err)
            return
        if self.require_host_pid and not in_host_pid_namespace():
            os.close(dir_fd)
            log.error("process census: the node agent is not in the host's PID namespace (set hostPID: true), so "
                      "NVML would count only its own processes: not publishing")
            return
        log.info("process census: publishing every GPU's process count in %s every %.0f ms", self.folder,
                 self.interval * 1000)
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.publish_once(dir_fd)
                except OSError as err:
                    self._once(f"os:{err.errno}", "process census: writing into %s failed: %s (retrying)",
                               self.folder, err)
                stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            os.close(dir_fd)
