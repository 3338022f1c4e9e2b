"""The launch path's context calls (issue 18, alonepath): a launch needs the current context (launch.c compares it with
the measured one) and its device; a context's device never changes while it lives, so the device is kept per thread
with its context (dl.c vg_ctx_device) and a launch costs one context call, cuCtxGetCurrent, instead of two (main
072f525: cuCtxGetDevice and cuCtxGetCurrent on every capped launch; the H100 inference loop alone makes 183 launches
a step). Pinned by the fake's counters, not by a timing.

A destroyed context's handle may name a new context on another device (the fake reuses a destroyed cuCtxCreate
slot): every hooked call that may destroy a context invalidates the kept devices, so the new context's launches are
held and charged on its own device."""

from __future__ import annotations

import pytest

from .conftest import Workload, fake_only, region

pytestmark = [fake_only]

FORCE70 = dict(CUDA_DEVICE_SM_LIMIT="70", GPU_CORE_UTILIZATION_POLICY="force", HAMI_SM_PERIOD_MS="100")


def _ctx_calls_per_launch(workload: Workload, **env: str) -> float:
    """cuCtxGetCurrent + cuCtxGetDevice per launch over a host-paced loop (after a 0.3 s warm-up), as the fake counts
    them (the program makes none of its own in the loop)."""
    r = workload.run("ctx", "0", "spin", "5", "20", "0.3", "195", "calls", "ctxcalls",
                     "spin", "5", "20", "0.6", "195", "calls", "ctxcalls",
                     FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), DRIVER_BUSY_GAP="1", **env, timeout=60)
    assert r.returncode == 0, r.stderr
    (c0, c1), (x0, x1) = ([[int(x) for x in w] for w in r.values(k)] for k in ("calls", "ctxcalls"))
    n = c1[0] - c0[0]
    assert n > 2000, r.lines
    return (x1[0] - x0[0] + x1[1] - x0[1]) / n


@pytest.mark.parametrize("case", ["coarse", "precise", "uncapped"])
def test_a_launch_makes_one_context_call(workload: Workload, case: str) -> None:
    # main 072f525: 2.00 capped (coarse or precise), 1.00 uncapped (alone under the default policy); now 1.00 each
    env = dict(FORCE70)
    if case == "precise":
        env["HAMI_SM_PRECISE"] = "1"
    if case == "uncapped":
        env["GPU_CORE_UTILIZATION_POLICY"] = "default"
    per = _ctx_calls_per_launch(workload, **env)
    print(f"ctx calls per launch ({case}): {per:.3f}")
    assert per <= 1.01, f"{per:.3f} context calls per launch ({case}): the device is asked on every launch"


def test_a_reused_context_handle_on_another_device_is_charged_there(workload: Workload) -> None:
    # the primary context of device 0 is measured first; then a context of the program's own on device 0 (handle
    # slot 0) launches, is destroyed, and a new one on device 1 gets the same handle. Its launches (40 x 2 ms) must
    # be charged on device 1: a device kept from the destroyed context would charge device 0, and device 1 nothing
    r = workload.run("ctx", "0", "launch", "kernel", "20", "100", "ctxnew", "0", "launch", "kernel", "20", "100",
                     "ctxdestroy", "ctxnew", "1", "launch", "kernel", "40", "2000", **FORCE70)
    assert r.returncode == 0, r.stderr
    assert r.values("ctxnew") == [["0"], ["0"]] and r.values("ctxdestroy") == [["0"]], r.lines
    with region.SharedRegion(workload.region_path) as reg:
        busy0, busy1 = reg.busy_ns(0), reg.busy_ns(1)
    print(f"charged: device 0 {busy0 / 1e6:.1f} ms, device 1 {busy1 / 1e6:.1f} ms")
    assert busy1 >= 40e6, f"device 1 charged {busy1 / 1e6:.1f} ms for 80 ms of kernels on it"
    assert busy0 < 40e6, f"device 0 charged {busy0 / 1e6:.1f} ms: device 1's launches went to it"
