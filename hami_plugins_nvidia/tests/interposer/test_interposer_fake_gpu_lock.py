"""The fake device's shared GPU (FAKE_CUDA_GPU) is guarded by a spin lock in a shared file. A process that exits
while one of its threads holds it (the interposer's watcher polls events while the program returns from main) never
releases it (the likely cause of a pair test's survivor running into its 60 s timeout, about 1 run in 30). The
lock names its holder, and a waiter takes over a lock whose holder no longer exists. Test infrastructure, but every sharing test relies on it."""

from __future__ import annotations

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
