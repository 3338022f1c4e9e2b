"""review23's findings on gatehard's merge (gatefix, 2026-12-07).

- The cuStreamDestroy hook closes the stream's run in the measured context: a stream destroyed from a thread whose
  current context is another, or none, had its closing event recorded with that context current; the record failed
  and the measured state went stale (an over-charge and a reset). The measured context is now made current for the
  close and the caller's put back (launch.c destroy_in_ctx).
- In a forked child the hook does nothing: a device lock inherited held (the watcher's pass, a launch in another
  thread at the fork) blocked the child's cuStreamDestroy forever (launch.c vg_forked_child).

The gate page's two findings (ALREADY_REGISTERED from another live context, MADV_WIPEONFORK) have no test here: the
fake models one registered host page per process and maps its shared file over it (MAP_FIXED, a new VMA), so it can
show neither a second context's registration nor the page's fork behaviour."""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload
from .guard_runs import charged_s
from .test_interposer_gatehard import WARM, _coarse

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's model")

DROPPED = "the library's timing events failed"  # launch.c drop_measured's line (LIBCUDA_LOG_LEVEL=3)


@pytest.mark.parametrize("caller", ["none", "other"])
def test_a_stream_destroyed_from_another_context_is_closed_in_the_measured_one(workload: Workload,
                                                                              caller: str) -> None:
    # A coarse run is open on stream 0x7200 (primary context of device 0) when the program destroys the stream from a
    # thread with no context current, or with a context of its own current (cuCtxCreate on the same device). The fake's
    # events record only while their context is current. main (6ec1705): the close's pooled event was recorded with
    # the caller's context current, the record failed and the state was dropped (drop_measured's line). Now the
    # measured context is current for the close, the caller's context is current again after the call, and the run's
    # launches are charged.
    _coarse(workload)
    switch = ["nocur"] if caller == "none" else ["ctxnew", "0"]
    r = workload.run(*WARM, "launchon", "0x7200", "30", "5", *switch, "curctx", "streamdestroy", "0x7200", "curctx",
                     "ctx", "0", "sleep", "30", "deadcalls", "sleep", "20", "sync", "gpu", timeout=30,
                     LIBCUDA_LOG_LEVEL="3")
    assert r.returncode == 0, r.stderr
    assert r.values("streamdestroy")[0] == ["0"], r.lines
    before, after = r.values("curctx")
    assert before[0] == "0" and after == before, r.lines  # the caller's context (none, or its own) is current again
    assert (before[1] == "0") == (caller == "none"), r.lines
    assert DROPPED not in r.stderr, r.stderr[-2000:]
    # the launch stats line's section: the one destroy seen, its run closed by an event (main: no such section)
    assert "; streams destroyed 1, runs closed by event 1, with no event 0, stale 0" in r.stderr, r.stderr[-2000:]
    assert r.values("deadcalls")[0] == ["0"], (r.lines, r.stderr[-1500:])
    assert "0.0 % coarse" not in r.stderr, r.stderr  # it was measured coarsely
    gpu_s = int(r.values("gpu")[0][0]) / 1e9
    assert charged_s(workload) >= 0.9 * gpu_s, (charged_s(workload), gpu_s)  # the run's GPU time was charged


def test_a_forked_child_never_blocks_destroying_a_stream(workload: Workload) -> None:
    # Another thread's launch call holds the device's lock (FAKE_CUDA_LAUNCH_SYNCS=1: the call returns when its 400 ms
    # kernel ends) when the program forks; the child destroys a stream and exits. main (6ec1705): the child's hook
    # locked the device's lock it inherited held, whose owner does not exist in the child, and blocked for good
    # (killed after 3 s: -1). Now it returns at once and the driver's call answers.
    _coarse(workload)
    r = workload.run("ctx", "0", "launch", "kernel", "20", "10", "sync", "forkdestroy", "0x7200", "400000",
                     timeout=30, FAKE_CUDA_LAUNCH_SYNCS="1")
    assert r.returncode == 0, r.stderr
    status, launched = r.values("forkdestroy")[0]
    assert launched == "0", r.lines
    assert status == "0", (r.lines, r.stderr[-1500:])
