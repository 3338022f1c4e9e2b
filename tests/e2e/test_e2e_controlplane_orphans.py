"""A test run killed with SIGKILL or SIGTERM takes its control-plane children with it.

The children run in their own session, so no signal to the test process reaches them, and a killed pytest
runs no teardown: before ``k8s_controlplane.die_with_parent`` they kept running (etcd and kube-apiserver eating
a 2-core CI box's CPU after a cancelled job). Here a pytest-like parent (a Python process that spawns through
``ControlPlane.spawn``, as the session fixture does) is killed, and no child may survive it. The real control
plane variant needs ``make k8s-bins``; the first runs anywhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from k8s_controlplane import missing_binaries

HERE = Path(__file__).resolve().parent

#: The parent: spawns long sleepers (or starts the real control plane), writes the children's pids, waits.
PARENT = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {here!r})
from k8s_controlplane import ControlPlane

work = Path({work!r})
cp = ControlPlane(work)
if {real!r}:
    cp.start()
else:
    for name in ("etcd-standin", "apiserver-standin"):
        cp.spawn(name, [sys.executable, "-c", "import time; time.sleep(600)"])
(work / "pids.json").write_text(json.dumps([p.popen.pid for p in cp.procs]))
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that never comes counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _run_and_kill(tmp_path: Path, sig: int, real: bool, start_s: float) -> tuple[list[int], list[int]]:
    """Start the parent, wait for its children, send it ``sig``; (children, those alive 5 s later)."""
    work = tmp_path / "cp"
    work.mkdir()
    code = PARENT.format(here=str(HERE), work=str(work), real=real)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                              stderr=(tmp_path / "parent.log").open("wb"))
    pids: list[int] = []
    try:
        deadline = time.monotonic() + start_s
        while not (work / "pids.json").exists():
            if parent.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the parent did not start its children: {(tmp_path / 'parent.log').read_text()[-800:]}")
            time.sleep(0.1)
        pids = json.loads((work / "pids.json").read_text())
        assert pids and all(_alive(p) for p in pids), f"children not running before the kill: {pids}"
        parent.send_signal(sig)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        return pids, [p for p in pids if _alive(p)]
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for p in pids:  # only this test's children: never leave them behind, even when the test fails
            if _alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_children_die_with_a_killed_test_process(tmp_path, sig):
    pids, survivors = _run_and_kill(tmp_path, sig, real=False, start_s=30)
    assert len(pids) == 2
    assert survivors == [], f"{len(survivors)} of {len(pids)} children outlived the {sig.name}ed parent: {survivors}"


@pytest.mark.skipif(bool(missing_binaries()), reason="needs etcd and kube-apiserver (make k8s-bins)")
def test_real_control_plane_dies_with_a_sigkilled_test_process(tmp_path):
    pids, survivors = _run_and_kill(tmp_path, signal.SIGKILL, real=True, start_s=120)
    assert len(pids) == 2  # etcd, kube-apiserver
    assert survivors == [], f"etcd/kube-apiserver outlived the SIGKILLed parent: {survivors}"
