"""The MetaX plugin on simulated C500 nodes: discovery through the fake mx-smi, whole GPUs and sGPU shares in
the engine, MetaXLink zones, QoS annotation rules, container edits, health."""

from __future__ import annotations

import pytest
from hami_plugins_metax.qos import app_class, topology_aware
from hami_plugins_metax.vendor import vendor_info

from hami_hal.context import NodeContext
from hami_hal.engine import NodeState
from hami_hal.errors import AllocationError, InputError
from hami_hal.requests import parse_pod
from hami_hal.testing import isolated_hal, plugin_problems, sim_inventory
from hami_plugins_metax import plugin


def _pod(limits: dict, name: str = "p", annotations: dict | None = None) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}


@pytest.fixture(scope="module")
def inv():
    return sim_inventory(isolated_hal(plugin), "metax-8xc500")


def test_plugin_is_sound():
    assert plugin_problems(plugin) == []


def test_discovery_and_zones(inv):
    assert [d.attributes["link_zone"] for d in inv.devices] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert [d.numa_node for d in inv.devices] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert {d.model for d in inv.devices} == {"MetaX C500"}
    assert all(d.provenance.source == "simulated" for d in inv.devices)


def test_no_metaxlink_node_has_zone_zero():
    inv = sim_inventory(isolated_hal(plugin), "metax-2xc550")
    assert [d.attributes["link_zone"] for d in inv.devices] == [0, 0]


def test_vmemory_is_gib_and_vcore_percent(inv):
    node = NodeState("n", inv.devices, inv.topology)
    a = node.allocate(parse_pod(_pod({"metax-tech.com/sgpu": 1, "metax-tech.com/vmemory": 8,
                                      "metax-tech.com/vcore": 30}), [vendor_info()]))
    s = a.containers[0].slices[0]
    assert (s.memory_mib, s.compute_percent, s.common_word) == (8192, 30, "Metax-SGPU")


def test_whole_and_sgpu_in_one_pod_keep_both(inv):
    node = NodeState("n", inv.devices, inv.topology)
    a = node.allocate(parse_pod(_pod({"metax-tech.com/gpu": 1, "metax-tech.com/sgpu": 1,
                                      "metax-tech.com/vmemory": 4, "metax-tech.com/vcore": 10}), [vendor_info()]))
    words = sorted(s.common_word for s in a.containers[0].slices)
    assert words == ["Metax-GPU", "Metax-SGPU"]
    whole = next(s for s in a.containers[0].slices if s.common_word == "Metax-GPU")
    share = next(s for s in a.containers[0].slices if s.common_word == "Metax-SGPU")
    assert whole.uuid != share.uuid and whole.exclusive and whole.memory_mib == 65536


def test_vcore_100_is_exclusive(inv):
    node = NodeState("n", inv.devices[:1], None)
    node.allocate(parse_pod(_pod({"metax-tech.com/sgpu": 1, "metax-tech.com/vcore": 100,
                                  "metax-tech.com/vmemory": 1}, "x"), [vendor_info()]))
    with pytest.raises(AllocationError):
        node.allocate(parse_pod(_pod({"metax-tech.com/sgpu": 1, "metax-tech.com/vmemory": 1,
                                      "metax-tech.com/vcore": 1}, "y"), [vendor_info()]))


def test_app_class_and_topology_aware_readers():
    assert app_class({"metax-tech.com/sgpu-app-class": "online"}) == "online"
    with pytest.raises(InputError):
        app_class({"metax-tech.com/sgpu-app-class": "batch"})
    assert topology_aware({"metax-tech.com/sgpu-topology-aware": "true"}) is True
    with pytest.raises(InputError):
        topology_aware({"metax-tech.com/sgpu-topology-aware": "yes"})


def test_hook_hami_hal_container_edits_metax(inv):
    node = NodeState("n", inv.devices, inv.topology)
    a = node.allocate(parse_pod(_pod({"metax-tech.com/gpu": 2}), [vendor_info()]))
    edits = plugin.hami_hal_container_edits(a.containers[0], inv.devices, NodeContext("sim", "n"))
    assert edits.env["MACA_VISIBLE_DEVICES"].count(",") == 1


def test_health_and_metrics_from_the_tool():
    hal = isolated_hal(plugin)
    ctx = NodeContext("sim", "n", sim=hal.catalog().compose("metax-8xc500").for_vendor("metax"))
    inv = sim_inventory(hal, "metax-8xc500")
    assert plugin.hami_hal_device_health(inv.devices[0], ctx).healthy
    samples = {s.name: s.value for s in plugin.hami_hal_device_metrics(inv.devices[0], ctx)}
    assert samples["memory_total"] == 65536 * 2**20


def _sgpu(name: str, qos: str | None = None) -> dict:
    anns = {"metax-tech.com/sgpu-qos-policy": qos} if qos else {}
    return _pod({"metax-tech.com/sgpu": 1, "metax-tech.com/vmemory": 2, "metax-tech.com/vcore": 10}, name, anns)


def test_qos_policies_do_not_mix_on_a_card(inv):
    """HAMi checkDeviceQos through the engine: used cards keep their policy, idle cards take any."""
    vendors = [vendor_info()]
    node = NodeState("n", inv.devices[:2], None)
    a = node.allocate(parse_pod(_sgpu("a"), vendors))                       # best-effort (default)
    b = node.allocate(parse_pod(_sgpu("b", "fixed-share"), vendors))        # must take the idle card
    assert a.containers[0].slices[0].uuid != b.containers[0].slices[0].uuid
    assert b.containers[0].slices[0].attributes["qos"] == "fixed-share"
    with pytest.raises(AllocationError):
        node.allocate(parse_pod(_sgpu("c", "burst-share"), vendors))        # both cards hold other policies
    node.allocate(parse_pod(_sgpu("d", "fixed-share"), vendors))            # joins b's card
    node.release(b)
    node.release(node.held()[-1])                                           # d: b's card idle again
    node.allocate(parse_pod(_sgpu("e", "burst-share"), vendors))            # an idle card switches policy
    with pytest.raises(InputError, match="sgpu-qos-policy"):
        parse_pod(_sgpu("f", "gold"), vendors)


def test_hook_hami_hal_pod_annotations_metax(inv):
    import json

    from hami_hal.hami_compat import allocation_annotations

    pod = _pod({"metax-tech.com/gpu": 1, "metax-tech.com/sgpu": 1, "metax-tech.com/vmemory": 4,
                "metax-tech.com/vcore": 10})
    node = NodeState("n", inv.devices, inv.topology)
    alloc = node.allocate(parse_pod(pod, [vendor_info()]))
    anns = allocation_annotations(alloc, [vendor_info()], 1)
    assert ",Metax-GPU,65536,100:" in anns["hami.io/metax-gpu-devices-allocated"]
    assert ",Metax-SGPU,4096,10:" in anns["hami.io/metax-sgpu-devices-allocated"]
    extra = plugin.hami_hal_pod_annotations(alloc, inv.devices, pod)
    [[entry]] = json.loads(extra["metax-tech.com/gpu-devices-allocated"])
    assert entry["compute"] == 10 and entry["vRam"] == 4096
    assert extra["metax-tech.com/predicate-time"].isdigit()


def test_lost_gpu_is_listed_unhealthy():
    """A GPU mx-smi lists but cannot read is discovered unhealthy (never allocated), not dropped."""
    from hami_plugins_metax.discovery import discover
    from hami_plugins_metax.port import FakeMxSmi

    cat = isolated_hal(plugin).catalog()
    doc = cat.nodes["metax-8xc500"].model_dump(by_alias=True)
    doc["metadata"]["name"] = "metax-lost"
    doc["spec"]["default"] = False
    doc["spec"]["faults"] = [{"index": 2, "fault": "lost"}]
    cat.add(doc)
    node = cat.compose("metax-lost").for_vendor("metax")
    devs = discover(FakeMxSmi(node), NodeContext("sim", "n", sim=node))
    assert [d.healthy for d in devs] == [True, True, False, True, True, True, True, True]
    assert "cannot read" in devs[2].health_reason


def test_hook_hami_hal_admit_request_metax(inv):
    """Whole GPUs stay inside a MetaXLink zone; online pods take one sGPU."""
    hal = isolated_hal(plugin)
    vendors = [vendor_info()]
    node = NodeState("n", inv.devices, inv.topology)
    node.allocate(parse_pod(_pod({"metax-tech.com/gpu": 1}, "one"), vendors, admit=hal.admit_request))  # GPU 0
    got = node.allocate(parse_pod(_pod({"metax-tech.com/gpu": 4}, "four"), vendors, admit=hal.admit_request))
    zones = {d.uuid: d.attributes["link_zone"] for d in inv.devices}
    assert {zones[s.uuid] for s in got.containers[0].slices} == {2}       # zone 1 has only 3 GPUs left
    two = node.allocate(parse_pod(_pod({"metax-tech.com/gpu": 2}, "two"), vendors, admit=hal.admit_request))
    assert len({zones[s.uuid] for s in two.containers[0].slices}) == 1
    with pytest.raises(InputError, match="sgpu-app-class.*exactly 1 sGPU, not 2"):
        parse_pod(_pod({"metax-tech.com/sgpu": 2, "metax-tech.com/vmemory": 1}, "o",
                       {"metax-tech.com/sgpu-app-class": "online"}), vendors, admit=hal.admit_request)


def test_vmemory_with_a_unit_is_bytes(inv):
    """HAMi: a bare vmemory is GiB, a quantity with a unit is bytes (``4Gi`` = 4096 MiB, not 4 Ti MiB)."""
    vendors = [vendor_info()]
    bare = parse_pod(_pod({"metax-tech.com/sgpu": 1, "metax-tech.com/vmemory": 4}), vendors)
    unit = parse_pod(_pod({"metax-tech.com/sgpu": 1, "metax-tech.com/vmemory": "4Gi"}), vendors)
    assert bare.containers[0].requests[0].memory_mib == unit.containers[0].requests[0].memory_mib == 4096
