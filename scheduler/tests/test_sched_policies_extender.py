"""Capability-aware fit, topology-aware placement and node policies through the extender."""

from __future__ import annotations

from datetime import UTC, datetime

from hami_scheduler.annotations import parse_node
from hami_scheduler.capability import CapabilityGate
from hami_scheduler.extender import Extender
from hami_scheduler.state import ClusterState
from sched_testing import NVIDIA, gpu_node, gpu_pod

from hami_hal.models import (
    CapabilityMatrix,
    CapabilityResult,
    DeviceModelEntry,
    Level,
    Link,
    LinkTier,
    MatrixMetadata,
    NodeInventory,
    Provenance,
    Requirement,
    Topology,
)

A100 = "NVIDIA-A100-PCIE-40GB"
T4 = "NVIDIA-Tesla T4"


def matrix(levels: dict[str, dict[str, Level]], source: str = "real") -> CapabilityMatrix:
    """Rows spelt as discovery spells models (``NVIDIA A100-PCIE-40GB``), not as the annotation's type:
    the gate joins them on the core's model key."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    return CapabilityMatrix(metadata=MatrixMetadata(generated_at=now), entries=[
        DeviceModelEntry(vendor="nvidia", model=model.replace("NVIDIA-", "NVIDIA ").replace("NVIDIA Tesla", "Tesla"),
                         plugin="hami-plugins-nvidia", plugin_version="0.1.0",
                         provenance=Provenance(source=source, device_model=model if source == "real" else None,
                                               profile=None if source == "real" else "test"), tested_at=now,
                         capabilities=[CapabilityResult(id=cid, requirement=Requirement.MUST, level=lv)
                                       for cid, lv in caps.items()])
        for model, caps in levels.items()])


def cluster(*nodes) -> ClusterState:
    c = ClusterState([NVIDIA])
    for n in nodes:
        c.upsert_node(n)
    return c


def test_capability_gate_keeps_shares_off_unverified_models():
    m = matrix({A100: {"isolation/memory-hard": Level.SUPPORTED, "isolation/compute-share": Level.SUPPORTED},
                T4: {"isolation/memory-hard": Level.UNVERIFIED, "isolation/compute-share": Level.SUPPORTED}})
    c = cluster(gpu_node("a100", gpus=1, model=A100), gpu_node("t4", gpus=1, mem=15109, model=T4))
    ext = Extender(c, None, CapabilityGate(m))
    out = ext.filter({"Pod": gpu_pod("share", mem=4096, cores=30), "NodeNames": ["t4", "a100"]})
    assert out.node_names == ["a100"]
    assert "1/1 CapabilityNotVerified" in out.failed["t4"]
    # a whole-device pod needs no isolation, so the T4 may take it
    whole = ext.filter({"Pod": gpu_pod("whole", mem=None, cores=None), "NodeNames": ["t4"]})
    assert whole.node_names == ["t4"]
    # operators may accept unverified levels explicitly
    lax = Extender(cluster(gpu_node("t4", gpus=1, mem=15109, model=T4)), None,
                   CapabilityGate(m, {Level.SUPPORTED, Level.UNVERIFIED}))
    assert lax.filter({"Pod": gpu_pod("s2", mem=4096, cores=30), "NodeNames": ["t4"]}).node_names == ["t4"]
    # a model absent from the matrix is refused for shares
    absent = Extender(cluster(gpu_node("h", gpus=1, model="NVIDIA-H100")), None, CapabilityGate(m))
    res = absent.filter({"Pod": gpu_pod("s3", mem=4096, cores=30), "NodeNames": ["h"]})
    assert res.node_names == [] and "CapabilityNotVerified" in res.failed["h"]


def test_topology_aware_pair_from_inventory_links():
    base = parse_node(gpu_node("topo", gpus=4), [NVIDIA])
    u = [d.uuid for d in base.devices]
    def link(a, b, tier, score, count=1):
        return Link(a=u[a], b=u[b], kind=tier.value, tier=tier, score=score, count=count)

    topo = Topology(links=[link(0, 1, LinkTier.SOCKETS, 10), link(0, 2, LinkTier.SOCKETS, 10),
                           link(0, 3, LinkTier.SOCKETS, 10), link(1, 2, LinkTier.HOST, 20),
                           link(1, 3, LinkTier.HOST, 20), link(2, 3, LinkTier.FABRIC, 400, count=4)])
    inv = NodeInventory(node="topo", source="simulated", devices=base.devices, topology=topo)
    node = {"metadata": {"name": "topo", "annotations": {"hami-hal.io/node-inventory": inv.model_dump_json(by_alias=True)}}}
    ext = Extender(cluster(node), None)
    pod = gpu_pod("pair", gpus=2, annotations={"hami.io/gpu-scheduler-policy": "topology-aware"})
    out = ext.filter({"Pod": pod, "Nodes": {"items": [node]}})
    assert {s.uuid for s in out.allocation.slices()} == {u[2], u[3]}


def test_node_policy_annotations_binpack_and_spread():
    c = cluster(gpu_node("n1", gpus=2), gpu_node("n2", gpus=2))
    ext = Extender(c, None)
    first = ext.filter({"Pod": gpu_pod("p0", mem=20000, cores=50), "NodeNames": ["n1", "n2"]}).node_names[0]
    other = "n2" if first == "n1" else "n1"
    pack = ext.filter({"Pod": gpu_pod("p1", mem=1000, cores=5,
                                      annotations={"hami.io/node-scheduler-policy": "binpack"}),
                       "NodeNames": ["n1", "n2"]})
    assert pack.node_names == [first]
    spread = ext.filter({"Pod": gpu_pod("p2", mem=1000, cores=5,
                                        annotations={"hami.io/node-scheduler-policy": "spread"}),
                         "NodeNames": ["n1", "n2"]})
    assert spread.node_names == [other]


def test_frag_policy_completes_partly_used_gpu():
    c = cluster(gpu_node("n1", gpus=2, mem=40000), gpu_node("n2", gpus=2, mem=40000))
    ext = Extender(c, None, policy="frag-pack")
    a = ext.filter({"Pod": gpu_pod("half", mem=20000, cores=50), "NodeNames": ["n1", "n2"]})
    node, dev = a.node_names[0], a.allocation.slices()[0].uuid
    b = ext.filter({"Pod": gpu_pod("half2", mem=20000, cores=50), "NodeNames": ["n1", "n2"]})
    assert b.node_names == [node] and b.allocation.slices()[0].uuid == dev


def test_capability_matrix_from_configmap():
    import pytest
    from hami_scheduler.kube import Kube, api_client, load_matrix_from_configmap
    from sched_fakeapi import FakeApiServer

    from hami_hal.errors import InputError

    api = FakeApiServer().start()
    try:
        m = matrix({T4: {"isolation/memory-hard": Level.SUPPORTED}})
        api.add_configmap("hami", "caps", {"capability-matrix.json": m.model_dump_json(by_alias=True)})
        api.add_configmap("hami", "broken", {"capability-matrix.json": "{\"kind\": \"nope\"}"})
        kube = Kube(api_client(api.url))
        got = load_matrix_from_configmap(kube, "hami/caps")
        assert got.level("nvidia", T4, "isolation/memory-hard") is Level.SUPPORTED
        with pytest.raises(InputError, match="is not a CapabilityMatrix"):
            load_matrix_from_configmap(kube, "hami/broken")
        with pytest.raises(InputError, match="cannot be read"):
            load_matrix_from_configmap(kube, "hami/missing")
        with pytest.raises(InputError, match="namespace/name"):
            load_matrix_from_configmap(kube, "justname")
    finally:
        api.stop()
