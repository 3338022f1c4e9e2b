"""The fake device's shared GPU (FAKE_CUDA_GPU) is guarded by a spin lock in a shared file. A process that exits
while one of its threads holds it (the interposer's watcher polls events while the program returns from main) never
releases it: the survivor of a pair test spun until its 60 s timeout. The lock names its holder, and a waiter
takes over a lock whose holder has ended: gone, or a zombie, which is what a pair's second tenant is while
pytest waits for the first (exited, not reaped). Test infrastructure, but every sharing test relies on it."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

from .conftest import Workload, fake_only


@fake_only
def test_a_shared_gpu_lock_left_by_a_dead_process_is_taken_over(workload: Workload, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid names no process now
    gpu = tmp_path / "gpu"
    gpu.write_bytes(struct.pack("<i", dead.pid))  # the lock word (offset 0) held by the dead process
    run = workload.run("ctx", "0", "spin", "200", "0", "0.2", "4", preload=False, timeout=20, FAKE_CUDA_GPU=str(gpu))
    assert run.returncode == 0, run.stderr
    assert run.values("spin"), run.lines  # the kernels ran on the shared GPU
    assert struct.unpack("<i", gpu.read_bytes()[:4])[0] == 0  # released again by the new holder


@fake_only
def test_a_shared_gpu_lock_left_by_an_unreaped_process_is_taken_over(workload: Workload, tmp_path: Path) -> None:
    # what a pair test leaves: the tenant that finished first is not reaped while the test waits for the other
    # one (Popen.communicate on the first), so its pid still names a process, a zombie that never releases
    # anything. Before, only a reaped holder was taken over and the other tenant spun until the test's timeout.
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # it has exited; left unreaped
        assert Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        gpu = tmp_path / "gpu"
        gpu.write_bytes(struct.pack("<i", zombie.pid))
        run = workload.run("ctx", "0", "spin", "200", "0", "0.2", "4", preload=False, timeout=20,
                           FAKE_CUDA_GPU=str(gpu))
    finally:
        zombie.wait()
    assert run.returncode == 0, run.stderr
    assert run.values("spin"), run.lines
    assert struct.unpack("<i", gpu.read_bytes()[:4])[0] == 0
