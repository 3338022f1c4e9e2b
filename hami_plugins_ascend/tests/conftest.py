"""Shared fixtures: a plugin-only Hal on simulated Ascend nodes, fresh npu-smi ports per test, and the
recorded tool outputs of ``fixtures/`` (their '# ' header lines say where the format came from)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

# The distribution folder has the package's own name (hami_plugins_ascend/hami_plugins_ascend): put the
# distribution folder first and drop a namespace placeholder so the real package is what tests import.
_DIST = Path(__file__).resolve().parents[1]
if str(_DIST) not in sys.path:
    sys.path.insert(0, str(_DIST))
_placeholder = sys.modules.get("hami_plugins_ascend")
if _placeholder is not None and getattr(_placeholder, "__file__", None) is None:
    del sys.modules["hami_plugins_ascend"]
    importlib.import_module("hami_plugins_ascend")

from hami_hal.manager import Hal  # noqa: E402
from hami_plugins_ascend import ports  # noqa: E402

FIXTURES = Path(__file__).with_name("fixtures")


def _recorded(name: str) -> str:
    lines = FIXTURES.joinpath(name).read_text().splitlines(keepends=True)
    return "".join(ln for ln in lines if not ln.startswith("# "))


@pytest.fixture
def recorded():
    """recorded(name) -> a recorded output without its provenance header."""
    return _recorded


@pytest.fixture(autouse=True)
def _fresh_ports(monkeypatch):
    for var in ("HAMI_HAL_PLUGIN_MODULES", "HAMI_HAL_PLUGINS", "HAMI_HAL_DISABLE_PLUGINS", "HAMI_HAL_CONFIG",
                "HAMI_HAL_PROFILE_PATH"):
        monkeypatch.delenv(var, raising=False)
    ports.reset()
    yield
    ports.reset()


@pytest.fixture
def hal() -> Hal:
    return Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"])


def _pod(name: str, limits: dict, annotations: dict | None = None, containers: int = 1) -> dict:
    meta = {"name": name, "annotations": dict(annotations or {})}
    ctrs = [{"name": f"c{i}", "resources": {"limits": dict(limits)}} for i in range(containers)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": ctrs}}


@pytest.fixture
def pod():
    """pod(name, limits, annotations) -> a Pod document."""
    return _pod


@pytest.fixture
def place(hal):
    """place(inventory, pod, state=None) -> PodFit: parse with the plugin's admission hook, then the engine."""
    from hami_hal.engine import NodeState
    from hami_hal.requests import parse_pod

    def _place(inv, pod_doc: dict, state=None):
        req = parse_pod(pod_doc, inv.vendors, admit=hal.admit_request)
        st = state or NodeState.from_inventory(inv)
        return st.fit_pod(req)

    return _place


@pytest.fixture
def sim(hal):
    """discover(node, config) -> NodeInventory of a simulated Ascend node."""

    def _discover(node: str, config: dict | None = None):
        return hal.discover("sim", sim_node=node, node_name="test-node", config=config)

    return _discover
