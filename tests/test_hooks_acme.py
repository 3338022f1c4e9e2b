"""One test per hook (``test_hook_<hookname>``), each through the Hal facade with the acme plugin.

The meta-test in test_hooks_meta.py fails when a hook in hookspecs.py has no such test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hami_hal.engine import NodeState
from hami_hal.errors import HalError
from hami_hal.models import (
    ContainerAllocation,
    DeviceSlice,
    Level,
    LinkTier,
    PartitionKind,
    ResourceRequest,
)
from hami_hal.testing import sim_inventory


def _slice(dev, mem: int, cores: int = 0, template: str | None = None, start: int | None = None) -> DeviceSlice:
    from hami_hal.models import Placement

    return DeviceSlice(vendor=dev.vendor, uuid=dev.uuid, device_index=dev.index, common_word="ACME",
                       memory_mib=mem, compute_percent=cores, template=template,
                       placement=Placement(start=start, size=1) if start is not None else None)


def _dev(inv, model: str):
    return next(d for d in inv.devices if model in d.model)


def test_hook_hami_hal_vendor(hal):
    (vendor,) = hal.vendors()
    assert vendor.name == "acme" and vendor.domains == ["acme.example/"]
    assert [f.common_word for f in vendor.resources] == ["ACME", "ACME-CARD"]
    assert vendor.resources[1].device_sets.groups == [[0, 1], [2, 3]]
    assert vendor.resources[1].whole_device and vendor.annotations.allocated == "hami.io/acme-devices-allocated"


def test_hook_hami_hal_sim_profiles(hal):
    cat = hal.catalog()
    assert {"acme-x100", "acme-t200"} <= set(cat.devices) and "acme-mixed-4" in cat.nodes
    assert all(Path(p).exists() for p in hal._single(hal.plugins["acme"].module, "hami_hal_sim_profiles"))


def test_hook_hami_hal_discover(hal):
    inv = sim_inventory(hal, "acme-mixed-4")
    assert [(d.index, d.model, d.numa_node) for d in inv.devices] == [
        (0, "Acme X100 16GB", 0), (1, "Acme X100 16GB", 0), (2, "Acme T200 32GB", 1), (3, "Acme T200 32GB", 1)]
    assert len({d.uuid for d in inv.devices}) == 4 and all(d.uuid.startswith("ACME-") for d in inv.devices)
    assert all(d.provenance.source == "simulated" and d.provenance.driver_version == "acme-sim-2.1"
               for d in inv.devices)


def test_hook_hami_hal_partition_model(inv, hal):
    x100, t200 = _dev(inv, "X100"), _dev(inv, "T200")
    assert x100.partition.kind is PartitionKind.SHARES and x100.partition.max_slots == 4
    assert t200.partition.kind is PartitionKind.TEMPLATES and t200.partition.requires_creation
    assert [t.name for t in t200.partition.templates] == ["t1.8gb", "t2.16gb", "t4.32gb"]
    # node config reaches the plugin (HAMi device_split_count)
    inv2 = hal.discover("sim", sim_node="acme-mixed-4", config={"device_split_count": 10})
    assert _dev(inv2, "X100").partition.max_slots == 10


def test_engine_reads_vendor_rules_as_data(inv, hal):
    """What a veto hook used to decide is data now, so the scheduler sees it too (issue 10)."""
    from hami_hal.requests import parse_pod

    def pod(limits):
        return parse_pod({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {
            "limits": limits}}]}}, hal.vendors())

    cards = [d.model_copy(update={"index": i, "uuid": f"C{i}"}) for i, d in enumerate(inv.devices)]
    fit = NodeState("n", cards).fit_pod(pod({"acme.example/card": 2}))
    assert sorted(s.device_index for s in fit.allocation.slices()) in ([0, 1], [2, 3])  # one linked pair
    three = NodeState("n", cards).fit_pod(pod({"acme.example/card": 3}))
    assert not three.ok and "allows 1, 2, 4" in three.reason
    assert "hami_hal_fit" not in hal.plugins["acme"].hooks


def test_hook_hami_hal_create_partition(inv, hal):
    t200 = _dev(inv, "T200")
    handle = hal.create_partition(t200, _slice(t200, 8192, 25, "t1.8gb", 1))
    assert handle == {"instance_id": 1, "template": "t1.8gb", "start": 1}
    with pytest.raises(HalError, match="placement 1 is taken"):
        hal.create_partition(t200, _slice(t200, 8192, 25, "t1.8gb", 1))
    assert hal.create_partition(_dev(inv, "X100"), _slice(_dev(inv, "X100"), 100)) is None  # no template


def test_hook_hami_hal_destroy_partition(inv, hal):
    t200 = _dev(inv, "T200")
    handle = hal.create_partition(t200, _slice(t200, 16384, 50, "t2.16gb", 2))
    assert hal.destroy_partition(t200, handle) is True
    assert hal.destroy_partition(t200, handle) is False  # already gone


def test_hook_hami_hal_container_edits(inv, hal):
    a, b = inv.devices[0], inv.devices[1]
    alloc = ContainerAllocation(name="main", index=0, slices=[_slice(a, 10240, 30), _slice(b, 10240, 30)])
    edits = hal.container_edits(alloc, inv.devices)
    assert edits.env == {"ACME_VISIBLE_DEVICES": f"{a.uuid},{b.uuid}", "ACME_MEMORY_LIMIT_0": "10240m",
                         "ACME_MEMORY_LIMIT_1": "10240m", "ACME_CORE_LIMIT": "30"}
    assert [n.path for n in edits.device_nodes] == ["/dev/acme0", "/dev/acme1"]
    cdi = edits.to_cdi("acme.example/xpu", "main")
    assert "ACME_CORE_LIMIT=30" in cdi["devices"][0]["containerEdits"]["env"]
    assert hal.container_edits(ContainerAllocation(name="none", index=1), inv.devices).env == {}


def test_hook_hami_hal_topology(inv):
    topo = inv.topology
    x0, x1, t0, t1 = (d.uuid for d in inv.devices)
    fabric = topo.link(x0, x1)
    assert (fabric.kind, fabric.tier, fabric.score, fabric.bandwidth_class) == ("acme-link", LinkTier.FABRIC, 200, "high")
    assert topo.link(t0, t1).kind == "single-switch" and topo.link(t0, t1).tier is LinkTier.BOARD
    assert topo.link(x0, t1).kind == "cross-cpu" and topo.link(x0, t1).score == 10
    assert len(topo.links) == 6 and topo.numa == {x0: 0, x1: 0, t0: 1, t1: 1}


def test_hook_hami_hal_device_metrics(inv, hal):
    samples = {s.name: s for s in hal.device_metrics(_dev(inv, "X100"))}
    assert samples["memory_total"].value == 16384 * 2**20 and samples["memory_total"].unit == "bytes"
    assert samples["memory_used"].value == 256 * 2**20
    assert samples["temperature"].unit == "celsius" and samples["power_usage"].value == pytest.approx(30.0)


def test_hook_hami_hal_allocation_metrics(inv, hal):
    t200 = _dev(inv, "T200")
    assert hal.allocation_metrics(t200) == []
    hal.create_partition(t200, _slice(t200, 8192, 25, "t1.8gb", 0))
    (sample,) = hal.allocation_metrics(t200)
    assert sample.scope == "allocation" and sample.value == 8192 * 2**20
    assert sample.labels == {"partition_id": "1", "template": "t1.8gb"}
    assert {s.name: s.value for s in hal.device_metrics(t200)}["memory_used"] == (8192 + 256) * 2**20


def test_hook_hami_hal_device_health(hal):
    inv = hal.discover("sim", sim_node="acme-faulty-2")
    assert [d.healthy for d in inv.devices] == [True, False]
    assert inv.devices[1].health_reason == "XID 79: device has fallen off the bus"
    status = hal.health(inv.devices[1])
    assert status.events == ["xid-79"] and not status.healthy


def test_hook_hami_hal_conformance_probe(inv, hal):
    from hami_conformance.catalogue import default_catalogue

    res = hal.probe(inv.devices[0], "isolation/memory-reported-total")
    assert res.level is Level.SUPPORTED and res.evidence[0].startswith("simulated:")
    targets = default_catalogue().get(res.behaviour_id).targets
    assert set(targets) <= {m.name for m in res.measurements}  # the figure the catalogue judges
    assert hal.probe(inv.devices[0], "isolation/memory-hard") is None


def test_acme_probes_only_catalogue_behaviours(inv, hal):
    """The guide plugin answers no behaviour ID the catalogue does not define."""
    from hami_conformance.catalogue import default_catalogue

    cat = default_catalogue()
    answered = {bid for bid in [*cat.ids(), "discovery/memory/total", "isolation/memory/hard-limit"]
                if hal.probe(inv.devices[0], bid) is not None}
    assert answered and answered <= set(cat.ids())


def test_hook_hami_hal_pod_annotations(inv, hal):
    """The plugin's PatchAnnotations sees only its slices, with the QoS read from the pod annotation."""
    import json

    from hami_hal.requests import parse_pod

    pod = {"metadata": {"name": "p", "annotations": {"acme.example/qos-policy": "fixed-share"}},
           "spec": {"containers": [{"name": "c", "resources": {"limits": {"acme.example/xpu": 1,
                                                                          "acme.example/xpu-mem": 1024}}}]}}
    req = parse_pod(pod, hal.vendors())
    assert [(a.attribute, a.value) for a in req.containers[0].requests[0].attributes] == [("qos", "fixed-share")]
    fit = NodeState.from_inventory(inv).fit_pod(req)
    extra = hal.pod_annotations(fit.allocation, inv.devices, pod)
    (sl,) = fit.allocation.slices()
    assert json.loads(extra["acme.example/assigned"]) == [[{"uuid": sl.uuid, "index": sl.device_index,
                                                           "qos": "fixed-share"}]]
    empty = fit.allocation.model_copy(update={"containers": []})
    assert hal.pod_annotations(empty, inv.devices, pod) == {}


def test_hook_hami_hal_admit_request(inv, hal):
    """Admission adjusts a request before the engine: 100 MiB becomes the firmware's 256 MiB minimum."""
    from hami_hal.cli.cmd_allocate import dry_run

    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {"limits": {
        "acme.example/xpu": 1, "acme.example/xpu-mem": 100}}}]}}
    parsed, fit, _ = dry_run(hal, inv, pod)
    assert parsed.request.containers[0].requests[0].memory_mib == 256
    assert [s.memory_mib for s in fit.allocation.slices()] == [256]
    big = ResourceRequest(vendor="acme", common_word="ACME", count=1, memory_mib=4096)
    assert hal.admit_request(big, {}) is big
    other = big.model_copy(update={"vendor": "nobody"})
    assert hal.admit_request(other, {}) is other  # no plugin for the vendor: unchanged
