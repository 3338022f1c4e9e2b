"""Fixtures of the end-to-end suite: one real control plane per session, an extender stack per test.

Skips (one reason for the whole suite) when the binaries of ``hack/k8s-bins.sh`` are not in the cache:
building them from scratch takes longer than the test budget (``make k8s-bins`` does it once).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from k8s_controlplane import ControlPlane, bin_dir, missing_binaries
from k8s_fakekubelet import FakeKubelet
from k8s_stack import Stack, new_namespace


def _skip_reason() -> str | None:
    missing = missing_binaries(("etcd", "kube-apiserver", "kube-scheduler", "helm"))
    if missing:
        return (f"e2e: {', '.join(missing)} not built in {bin_dir()} "
                "(run `make k8s-bins` once: hack/k8s-bins.sh builds them from their Go modules)")
    if shutil.which("openssl") is None:
        return "e2e: openssl is not on PATH (it makes the test CA and serving certificates)"
    return None


def pytest_collection_modifyitems(config, items):
    """Without the binaries, the tests needing the control plane collapse into ONE skipped test, one line."""
    reason = _skip_reason()
    if not reason:
        return
    here = Path(__file__).parent
    needing = [i for i in items if here in Path(str(i.path)).parents
               and {"control_plane", "helm"} & set(i.fixturenames)]
    if not needing:
        return
    keep, drop = needing[0], needing[1:]
    keep.add_marker(pytest.mark.skip(reason=f"{reason}; {len(needing)} end-to-end tests not run"))
    if drop:
        config.hook.pytest_deselected(items=drop)
        dropped = set(map(id, drop))
        items[:] = [i for i in items if id(i) not in dropped]


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    cp = ControlPlane(tmp_path_factory.mktemp("k8s"))
    try:
        cp.start()
    except Exception:
        cp.stop()
        raise
    yield cp
    cp.stop()


@pytest.fixture(scope="session")
def kubelet(control_plane):
    fk = FakeKubelet(control_plane.api_client()).start()
    yield fk
    fk.stop()


@pytest.fixture
def stack(control_plane, kubelet, tmp_path, request):
    """Extender process(es) + kube-scheduler + nodes of this test; everything removed afterwards."""
    ns = new_namespace(control_plane, request.node.name)
    st = Stack(control_plane, kubelet, tmp_path, ns)
    yield st
    st.teardown()


@pytest.fixture
def deadline():
    """``deadline(s)`` -> a predicate-poller bounded in time (no test waits forever)."""

    def wait_for(pred, timeout: float, what: str, step: float = 0.2, explain=None):
        start = time.monotonic()
        end = start + timeout
        last = None
        while time.monotonic() < end:
            last = pred()
            if last:
                if os.environ.get("HAMI_E2E_TIMING"):
                    print(f"[{time.monotonic() - start:5.1f}s] {what}")
                return last
            time.sleep(step)
        detail = f"; {explain()}" if explain else ""
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r}){detail}")

    return wait_for
