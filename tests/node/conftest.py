"""Fixtures of the node agent tests: a fake kubelet on real unix sockets, a fake API server, an agent."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("grpc")
pytest.importorskip("hami_plugins_nvidia.plugin", exc_type=ImportError)
pytest.importorskip("sched_fakeapi")

from node_agent_fixtures import NODE, EventfulApi, make_agent  # noqa: E402

from hami_hal.manager import Hal  # noqa: E402
from hami_hal.node.fake_kubelet import FakeKubelet  # noqa: E402


@pytest.fixture
def api():
    srv = EventfulApi().start()
    srv.add_node({"metadata": {"name": NODE, "annotations": {}}})
    yield srv
    srv.stop()


@pytest.fixture
def short_tmp():
    # unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer
    with tempfile.TemporaryDirectory(prefix="hn-") as d:
        yield Path(d)


@pytest.fixture
def kubelet(short_tmp):
    k = FakeKubelet(short_tmp / "dp").start()
    yield k
    k.stop()


@pytest.fixture
def hal(monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "nvidia")
    h = Hal()
    if "nvidia" not in {v.name for v in h.vendors()}:
        pytest.skip("the nvidia plugin did not load")
    return h


@pytest.fixture
def agent(hal, api, kubelet, short_tmp):
    a = make_agent(hal, api, short_tmp)
    a.start()
    yield a
    a.stop()


@pytest.fixture
def mig_agent(hal, api, kubelet, short_tmp):
    """An agent over two simulated A100s in MIG mode (template partitions created at Allocate)."""
    a = make_agent(hal, api, short_tmp, sim_node="nvidia-2xa100-mig")
    a.start()
    assert kubelet.wait(lambda k: len(k.healthy("nvidia.com/gpu")) > 0)
    yield a
    a.stop()


@pytest.fixture
def caplog_node(caplog):
    caplog.set_level(logging.INFO, logger="hami_hal")
    return caplog
