"""HAMi's documented Hygon pod through the scheduler extender, on a node registered the way HAMi's legacy
DCU device plugin registers it (CSV, the mock-device-plugin example) and on a hami-hal inventory node."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("hami_scheduler.extender", reason="needs the scheduler distribution")

from hami_scheduler.extender import Extender  # noqa: E402
from hami_scheduler.state import ClusterState  # noqa: E402

from hami_hal.hami_compat import HAL_INVENTORY  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: The legacy CSV register line HAMi documents for a mocked Z100L (count 2, 16384 MiB, 100 % cores).
HAMI_CSV = "DCU-MOCK-0,2,16384,100,Z100L,0,true,0,hami-core:DCU-MOCK-1,2,16384,100,Z100L,0,true,1,hami-core:"


def _pod(name: str) -> dict:
    doc = yaml.safe_load((EXAMPLES / name).read_text())
    doc["metadata"] |= {"namespace": "default", "uid": doc["metadata"]["name"]}
    return doc


def test_documented_pod_on_a_hami_registered_node(hal):
    cluster = ClusterState(hal.vendors())
    cluster.upsert_node({"metadata": {"name": "dcu-node", "annotations": {"hami.io/node-dcu-register": HAMI_CSV}}})
    ext = Extender(cluster, None, admit=hal.admit_request)
    pod = _pod("hygon-vdcu-pod.yaml")
    out = ext.filter({"Pod": pod, "NodeNames": ["dcu-node"]})
    assert out.node_names == ["dcu-node"]
    anns = ext.filter_annotations(pod, out.allocation)
    assert anns["hami.io/dcu-devices-allocated"] in ("DCU-MOCK-0,DCU,2000,15:;", "DCU-MOCK-1,DCU,2000,15:;")


def test_hcu_pod_on_a_hami_hal_node(hal, sim):
    inv = sim("hygon-4xz100l")
    cluster = ClusterState(inv.vendors)
    cluster.upsert_node({"metadata": {"name": "n", "annotations": {HAL_INVENTORY: inv.model_dump_json()}}})
    ext = Extender(cluster, None, admit=hal.admit_request)
    pod = _pod("hygon-hcu-pod.yaml")
    out = ext.filter({"Pod": pod, "NodeNames": ["n"]})
    assert out.node_names == ["n"]
    (s,) = out.allocation.slices()
    assert (s.common_word, s.memory_mib, s.compute_percent) == ("HCU", 8192, 25)
