"""NVIDIA and Ascend on one node and in one cluster: ``hami allocate``'s engine and the scheduler extender
place an Ascend pod and an NVIDIA pod side by side (needs the NVIDIA plugin and the scheduler installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("hami_plugins_nvidia.plugin", reason="multi-vendor tests need the NVIDIA plugin installed")


from hami_hal.engine import NodeState  # noqa: E402
from hami_hal.hami_compat import HAL_INVENTORY  # noqa: E402
from hami_hal.manager import Hal  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MIXED = EXAMPLES / "mixed-nvidia-ascend.yaml"


@pytest.fixture
def mixed(monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PROFILE_PATH", str(MIXED))
    hal = Hal(entrypoints=False, modules=["hami_plugins_nvidia.plugin", "hami_plugins_ascend.plugin"])
    return hal, hal.discover("sim", sim_node="mixed-nvidia-ascend", node_name="mixed")


def test_mixed_node_discovers_both_vendors(mixed):
    _, inv = mixed
    assert sorted({d.vendor for d in inv.devices}) == ["ascend", "nvidia"]
    assert [d.index for d in inv.devices if d.vendor == "ascend"] == [0, 1, 2, 3]


def test_allocate_places_ascend_and_nvidia_pods_side_by_side(mixed, pod):
    from hami_hal.requests import parse_pod

    hal, inv = mixed
    state = NodeState.from_inventory(inv)
    npu = pod("npu", {"huawei.com/Ascend910B3": "1", "huawei.com/Ascend910B3-memory": "16384"})
    gpu = pod("gpu", {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "8192", "nvidia.com/gpucores": "30"})
    for doc in (npu, gpu):
        state.commit(state.fit_pod(parse_pod(doc, inv.vendors, admit=hal.admit_request)).allocation)
    held = {a.name: a.slices() for a in state.held()}
    assert {s.vendor for s in held["npu"]} == {"ascend"} and held["npu"][0].template == "vir05_1c_16g"
    assert {s.vendor for s in held["gpu"]} == {"nvidia"} and held["gpu"][0].memory_mib == 8192


def _cluster(mixed):
    from hami_scheduler.extender import Extender
    from hami_scheduler.state import ClusterState

    hal, inv = mixed
    ascend_only = Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"]).discover(
        "sim", sim_node="ascend-4x310p3", node_name="npu-only")
    cluster = ClusterState(inv.vendors)
    for name, node_inv in (("mixed", inv), ("npu-only", ascend_only)):
        cluster.upsert_node({"metadata": {"name": name, "annotations": {HAL_INVENTORY: node_inv.model_dump_json()}}})
    return Extender(cluster, None, pod_annotator=hal.pod_annotations, admit=hal.admit_request)


def test_extender_places_both_vendors_in_a_cluster(mixed, pod):
    pytest.importorskip("hami_scheduler.extender", reason="needs the scheduler distribution")
    ext = _cluster(mixed)
    gpu = pod("gpu", {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "8192"})
    npu = pod("npu", {"huawei.com/Ascend910B3": "1", "huawei.com/Ascend910B3-memory": "16384"})
    got = {}
    for doc in (gpu, npu):
        doc["metadata"] |= {"namespace": "default", "uid": doc["metadata"]["name"]}
        out = ext.filter({"Pod": doc, "NodeNames": ["mixed", "npu-only"]})
        assert out.node_names, out
        got[doc["metadata"]["name"]] = (out.node_names[0], ext.filter_annotations(doc, out.allocation))
    assert got["gpu"][0] == "mixed" and got["npu"][0] == "mixed"
    assert "hami.io/vgpu-devices-allocated" in got["gpu"][1]
    assert got["npu"][1]["hami.io/Ascend910B3-devices-allocated"].count(",Ascend910B3,16384,") == 1
    assert '"temp":"vir05_1c_16g"' in got["npu"][1]["huawei.com/Ascend910B3"]


def test_extender_keeps_each_ascend_chip_its_own_type(mixed, pod):
    """Device.family keeps each chip its own type: the extender never puts a 310P request on a 910B3."""
    pytest.importorskip("hami_scheduler.extender", reason="needs the scheduler distribution")
    ext = _cluster(mixed)
    doc = pod("p310", {"huawei.com/Ascend310P": "1", "huawei.com/Ascend310P-memory": "3072"})
    doc["metadata"] |= {"namespace": "default", "uid": "p310"}
    out = ext.filter({"Pod": doc, "NodeNames": ["mixed", "npu-only"]})
    assert out.node_names == ["npu-only"]

