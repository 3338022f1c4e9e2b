"""The review of gatemarks and pausegap (review22, 2026-12-07), its leftovers (gatehard).

- The gate's word is a page of the library's own memory registered with cuMemHostRegister (launch.c gate_setup), not
  cuMemHostAlloc'd: the driver unmaps a context's pinned allocations when the context is destroyed, so a release store
  after another thread destroyed the context mid-launch faulted (FAKE_CUDA_HOST_UNMAP=1 models the unmapping,
  FAKE_CUDA_LAUNCH_DESTROYS_CTX the other thread); and re-setups no longer leak, so they are no longer bounded.
- A host wait or the watcher never records on the legacy stream while the driver cannot say whether it is captured
  (CUDA_ERROR_STREAM_CAPTURE_IMPLICIT): the run stays open (launch.c close_run).
- cuStreamDestroy closes the stream's open run before the driver's call, and no later sync or watcher pass touches the
  destroyed handle (the fake counts every call made on one: fake_dead_calls)."""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload
from .guard_runs import charged_s
from .test_interposer_gatemarks import _gated, _neighbour, _outlasted, _tenant

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's model")


def test_a_context_destroyed_during_a_gated_launch_does_not_fault(workload: Workload,
                                                                  second_workload: Workload) -> None:
    # The tenant launches in a context of its own (cuCtxCreate), gated beside a neighbour; its 300th launch call returns
    # after its context was destroyed (FAKE_CUDA_LAUNCH_DESTROYS_CTX: through the library's cuCtxDestroy hook, as
    # another thread's call would), and the driver unmapped the context's pinned allocations then
    # (FAKE_CUDA_HOST_UNMAP=1). main (a46f1f8): the launch's release store hit the unmapped word, SIGSEGV (-11).
    gpu = str(workload.tmp.parent / "gpu")
    nb = _neighbour(second_workload, gpu)
    _tenant(workload, gpu, FAKE_CUDA_HOST_UNMAP="1", FAKE_CUDA_LAUNCH_DESTROYS_CTX="300")
    r = workload.run("ctxnew", "0", "spin", "5", "50", "1", "1", "gates", timeout=30)
    _outlasted(nb)
    assert r.returncode == 0, (r.returncode, r.lines, r.stderr[-2000:])
    assert int(r.values("spin")[0][4]) > 300, r.lines  # it went on launching past the destruction
    gated = _gated(r.stderr)
    assert gated and gated[0] >= 200, r.stderr  # its launches before it were gated


def test_the_gate_survives_many_context_destructions(workload: Workload, second_workload: Workload) -> None:
    # Each context destruction sets the gate's word up again. main (a46f1f8) allocated a new pinned word each time (the
    # old one leaked while any context lived) and turned the gate off for good after 8 set-ups; the library's page is
    # now registered again instead, nothing accumulates, and the gate stays on: 10 contexts, each gated.
    gpu = str(workload.tmp.parent / "gpu")
    nb = _neighbour(second_workload, gpu)
    _tenant(workload, gpu, FAKE_CUDA_HOST_UNMAP="1")
    args = ["ctxnew", "0", "spin", "5", "50", "0.1", "1", "gates", "ctxdestroy"] * 10
    r = workload.run(*args, timeout=60)
    _outlasted(nb)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert [v[0] for v in r.values("ctxnew")] == ["0"] * 10 and [v[0] for v in r.values("ctxdestroy")] == ["0"] * 10
    waits = [int(v[0]) for v in r.values("gates")]  # the fake's waits so far, after each context's spin
    assert all(b > a for a, b in zip(waits, waits[1:], strict=False)), waits  # every context's launches were gated
    gated = _gated(r.stderr)
    assert gated and not gated[2], r.stderr


def _coarse(w: Workload) -> None:
    """A tenant alone at force 70 % far below its limit: measured coarsely (its runs closed by one mark each)."""
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
                 CUDA_DEVICE_SM_LIMIT="70", HAMI_LAUNCH_STATS="1", DRIVER_BUSY_GAP="1")


# its first launches and an idle spell, then the inference loop's shape for 0.3 s (5 us kernels, 12 us of host time
# after each, a sync per 195): ~98 % of its launches coarse on this VM
WARM = ["ctx", "0", "launch", "kernel", "20", "10", "sleep", "300", "spin", "5", "12", "0.3", "195"]


def test_a_capture_in_the_way_leaves_the_legacy_run_open(workload: Workload) -> None:
    # A coarse run is open on the legacy stream when another stream's capture begins. While the capture lasts the
    # driver cannot say whether the legacy stream is captured (CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, documented), and an
    # event recorded there would join the capture (the fake invalidates it). main (a46f1f8): the watcher's close_bursts
    # took the failed query for "not capturing" and recorded there: the capture came back invalidated (901). Now the
    # run stays open until the capture ends, then closes and is charged.
    _coarse(workload)
    r = workload.run(*WARM, "burst", "kernel", "30", "5", "capture", "0x7100", "launchon", "0x7100", "20", "10",
                     "sleep", "30", "endcapture", "0x7100", "sleep", "30", "sync", "gpu", timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.values("capture")[0] == ["0"] and r.values("launchon")[0] == ["0"], r.lines
    assert r.values("endcapture")[0] == ["0", "200"], (r.lines, r.stderr[-1500:])
    assert "0.0 % coarse" not in r.stderr, r.stderr  # it was measured coarsely
    gpu_s = int(r.values("gpu")[0][0]) / 1e9
    assert charged_s(workload) >= 0.9 * gpu_s, (charged_s(workload), gpu_s)


@pytest.mark.parametrize("after", ["ctxsync", "watcher"])
def test_a_destroyed_stream_is_never_touched_again(workload: Workload, after: str) -> None:
    # A coarse run is open on stream 0x7200 when the program destroys it (legal with work pending); then the program
    # synchronizes the context (pausegap's wait_close_runs) or leaves it to the watcher (close_bursts). main (a46f1f8):
    # either recorded the run's mark on the destroyed handle (the fake counts the call; a real driver may have freed the
    # handle or given it to a new stream). Now the run is closed before the driver's call, and its launches are charged.
    _coarse(workload)
    tail = ["ctxsync"] if after == "ctxsync" else ["sleep", "30"]
    r = workload.run(*WARM, "launchon", "0x7200", "30", "5", "streamdestroy", "0x7200", *tail, "deadcalls", "sleep",
                     "20", "sync", "gpu", timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.values("streamdestroy")[0] == ["0"], r.lines
    assert r.values("deadcalls")[0] == ["0"], (r.lines, r.stderr[-1500:])
    assert "0.0 % coarse" not in r.stderr, r.stderr  # it was measured coarsely
    gpu_s = int(r.values("gpu")[0][0]) / 1e9
    assert charged_s(workload) >= 0.9 * gpu_s, (charged_s(workload), gpu_s)  # the run's GPU time was charged



def test_a_loop_syncing_every_launch_pays_no_record_per_sync(workload: Workload) -> None:
    # pausegap closed the open coarse run with an event at every synchronize: a loop that synchronizes after each
    # launch paid a record and a conversion per launch (fake libcuda with the H200's call costs modelled: +5.3 us on a
    # 25.9 us iteration). A wait that returns success proves the run complete at its return: the run goes on while the
    # next launch follows within a mark gap, and one left idle longer is closed there with no event (proven_close).
    # main (a46f1f8): ~1.0 records a launch here; now the precise windows' and samples' marks only. Syncs spin
    # (FAKE_CUDA_SYNC_SPIN=1, as cudaDeviceScheduleSpin): a sleeping sync on this host wakes 50-100 us late only when
    # its kernel has not ended yet, which a record before it changes, and the coarse spans then held wake-ups the
    # windows never saw (the gatehard record). The charge stays at least the GPU time (fail-closed).
    _coarse(workload)
    r = workload.run("ctx", "0", "launch", "kernel", "20", "10", "sleep", "300", "spin", "5", "20", "0.3", "1",
                     "calls", "spin", "5", "20", "1", "1", "calls", "gpu", timeout=30, FAKE_CUDA_SYNC_SPIN="1")
    assert r.returncode == 0, r.stderr
    c0, c1 = (list(map(int, v)) for v in r.values("calls"))
    n = c1[0] - c0[0]
    records = (c1[1] - c0[1]) / n
    assert n > 5000 and records < 0.4, (n, records, r.stderr[-1500:])
    assert "0.0 % coarse" not in r.stderr, r.stderr
    gpu_s = int(r.values("gpu")[0][0]) / 1e9
    assert charged_s(workload) >= 0.9 * gpu_s, (charged_s(workload), gpu_s)
