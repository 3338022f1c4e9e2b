"""The Kunlunxin plugin on simulated P800 nodes: discovery through the fake xpu-smi, vXPU slices in the
engine, topology, container edits, health and metrics."""

from __future__ import annotations

import pytest
from hami_plugins_kunlun.slices import handles_used, trim_memory
from hami_plugins_kunlun.vendor import vendor_info

from hami_hal.context import NodeContext
from hami_hal.engine import NodeState
from hami_hal.errors import AllocationError
from hami_hal.requests import parse_pod
from hami_hal.testing import isolated_hal, plugin_problems, sim_inventory
from hami_plugins_kunlun import plugin


def _pod(limits: dict, name: str = "p") -> dict:
    return {"kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}


@pytest.fixture(scope="module")
def inv():
    return sim_inventory(isolated_hal(plugin), "kunlun-8xp800")


def test_plugin_is_sound():
    assert plugin_problems(plugin) == []


def test_hook_hami_hal_discover(inv):
    assert [d.index for d in inv.devices] == list(range(8))
    assert {d.model for d in inv.devices} == {"P800 OAM"}
    assert [d.numa_node for d in inv.devices] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert all(d.provenance.source == "simulated" and d.memory_mib == 98304 for d in inv.devices)
    assert all(d.uuid.startswith("XPU-") and ":" not in d.uuid for d in inv.devices)
    assert all(d.attributes["pci_bus_id"].count(":") == 2 for d in inv.devices)


def test_hook_hami_hal_partition_model(inv):
    part = inv.devices[0].partition
    assert part.kind.value == "slices"
    assert [(t.memory_mib, t.compute_percent, t.max_instances) for t in part.templates] == [
        (24576, 25, 4), (49152, 50, 2), (98304, 100, 1)]


def test_hook_hami_hal_topology(inv):
    scores = inv.topology.pair_scores()
    d = {x.index: x.uuid for x in inv.devices}
    assert scores[(d[0], d[3])] == scores[(d[0], d[4])] > scores[(d[0], d[5])] > 0   # XPU link vs PCIe
    assert len(inv.topology.links) == 28


def test_vxpu_memory_is_aligned_and_sizes_do_not_mix(inv):
    node = NodeState("n", inv.devices, inv.topology)
    vendors = [vendor_info()]
    a = node.allocate(parse_pod(_pod({"kunlunxin.com/vxpu": 8, "kunlunxin.com/vxpu-memory": 30000}, "a"), vendors))
    assert {s.memory_mib for s in a.containers[0].slices} == {49152}
    # every card now holds a 1/2 slice: a 1/4 slice fits nowhere, a second 1/2 slice fits everywhere
    with pytest.raises(AllocationError, match="TemplateNotFit|holds vxpu-1/2"):
        node.allocate(parse_pod(_pod({"kunlunxin.com/vxpu": 1, "kunlunxin.com/vxpu-memory": 100}, "b"), vendors))
    node.allocate(parse_pod(_pod({"kunlunxin.com/vxpu": 8, "kunlunxin.com/vxpu-memory": 49152}, "c"), vendors))
    for st in node.devices.values():
        assert st.overcommitted() is None and st.used_memory_mib == 98304


def test_whole_card_needs_an_idle_card(inv):
    node = NodeState("n", inv.devices, inv.topology)
    vendors = [vendor_info()]
    with pytest.raises(AllocationError, match="kunlun-xpu-handles: 32 of 24 would be used"):
        node.allocate(parse_pod(_pod({"kunlunxin.com/vxpu": 8, "kunlunxin.com/vxpu-memory": 1}, "q"), vendors))
    node.allocate(parse_pod(_pod({"kunlunxin.com/vxpu": 4, "kunlunxin.com/vxpu-memory": 1}, "a"), vendors))
    node.allocate(parse_pod(_pod({"kunlunxin.com/vxpu": 4, "kunlunxin.com/vxpu-memory": 49152}, "b"), vendors))  # 16 + 8 = 24
    with pytest.raises(AllocationError):
        node.allocate(parse_pod(_pod({"kunlunxin.com/xpu": 1}, "w"), vendors))


def test_rules_as_numbers():
    assert [trim_memory(m) for m in (None, 0, 1, 24576, 24577, 49152, 49153, 200000)] == [
        98304, 98304, 24576, 24576, 49152, 49152, 98304, 98304]
    # the reference's three examples
    assert handles_used(8, [24576] * 8) > 32
    assert handles_used(8, [24576] * 6 + [None] * 2) == 32
    assert handles_used(8, [49152] * 8) <= 32


def test_hook_hami_hal_container_edits(inv):
    hal = isolated_hal(plugin)
    node = NodeState("n", inv.devices, inv.topology)
    alloc = node.allocate(parse_pod(_pod({"kunlunxin.com/xpu": 2}), [vendor_info()]))
    ctx = NodeContext("sim", "n", sim=None)
    edits = plugin.hami_hal_container_edits(alloc.containers[0], inv.devices, ctx)
    assert edits.env["XPU_VISIBLE_DEVICES"].count(",") == 1
    assert {n.path for n in edits.device_nodes} >= {"/dev/xpuctrl"}
    assert hal is not None


def test_hook_hami_hal_device_health_and_metrics():
    hal = isolated_hal(plugin)
    inv = sim_inventory(hal, "kunlun-8xp800-lost-card")
    lost = next(d for d in inv.devices if d.index == 5)
    assert not lost.healthy and "not responding" in (lost.health_reason or "")
    ok = inv.devices[0]
    ctx = NodeContext("sim", "n", sim=hal.catalog().compose("kunlun-8xp800-lost-card").for_vendor("kunlun"))
    assert plugin.hami_hal_device_health(lost, ctx).healthy is False
    assert plugin.hami_hal_device_health(ok, ctx).healthy is True
    samples = {s.name: s.value for s in plugin.hami_hal_device_metrics(ok, ctx)}
    assert samples["memory_total"] == 98304 * 2**20


def test_hook_hami_hal_pod_annotations_kunlun_both_families(inv):
    """Whole cards and vXPU slices in one pod keep both HAMi records, plus BAIDU_COM_DEVICE_IDX."""
    from hami_hal.hami_compat import allocation_annotations

    pod = {"kind": "Pod", "metadata": {"name": "mix"}, "spec": {"containers": [
        {"name": "a", "resources": {"limits": {"kunlunxin.com/xpu": 2}}},
        {"name": "b", "resources": {"limits": {"kunlunxin.com/vxpu": 1, "kunlunxin.com/vxpu-memory": 100}}}]}}
    node = NodeState("n", inv.devices, inv.topology)
    alloc = node.allocate(parse_pod(pod, [vendor_info()]))
    anns = allocation_annotations(alloc, [vendor_info()], 2)
    assert anns["hami.io/kunlun-allocated"].count(",kunlun,98304,100:") == 2
    assert anns["hami.io/xpu-devices-allocated"].startswith(";") and ",XPU,24576,25:" in anns["hami.io/xpu-devices-allocated"]
    assert "hami.io/kunlun-devices-to-allocate" not in anns
    extra = plugin.hami_hal_pod_annotations(alloc, inv.devices, pod)
    assert extra == {"BAIDU_COM_DEVICE_IDX": "0,1"}


def test_whole_card_counts_and_groups_in_the_engine(inv):
    node = NodeState("n", inv.devices, inv.topology)
    with pytest.raises(AllocationError, match="allows 1, 2, 4, 8"):
        node.allocate(parse_pod(_pod({"kunlunxin.com/xpu": 3}), [vendor_info()]))
    node.allocate(parse_pod(_pod({"kunlunxin.com/xpu": 1}, "one"), [vendor_info()]))
    got = node.allocate(parse_pod(_pod({"kunlunxin.com/xpu": 4}, "four"), [vendor_info()]))
    idx = {d.uuid: d.index for d in inv.devices}
    assert sorted(idx[s.uuid] for s in got.containers[0].slices) == [4, 5, 6, 7]   # not across the groups
    with pytest.raises(AllocationError, match="one allowed set"):
        node.allocate(parse_pod(_pod({"kunlunxin.com/xpu": 4}, "four-more"), [vendor_info()]))


def test_handle_budget_counts_the_cards_of_the_node(inv):
    from hami_plugins_kunlun.slices import handle_budget

    assert inv.devices[0].attributes["cards_on_node"] == 8
    assert inv.devices[0].partition.node_budget.limit == 24
    assert handle_budget(4).limit == 28 and handle_budget(40).limit == 0


def test_node_registered_by_hami_keeps_the_slice_model():
    """The scheduler reading HAMi's own ``hami.io/node-register-xpu`` still sees fixed same-size slices."""
    import json

    from hami_hal.hami_compat import parse_node

    reg = [{"id": f"XPU-{i}", "index": i, "count": 4, "devmem": 98304, "devcore": 100, "type": "XPU-P800 OAM",
            "numa": i // 4, "health": True} for i in range(8)]
    inv = parse_node({"metadata": {"name": "k", "annotations": {"hami.io/node-register-xpu": json.dumps(reg)}}},
                     [vendor_info()])
    assert {d.partition.kind.value for d in inv.devices} == {"slices"}
    node = NodeState("k", inv.devices, None)
    one = _pod({"kunlunxin.com/vxpu": 1, "kunlunxin.com/vxpu-memory": 20000}, "q")
    one["metadata"]["annotations"] = {"hami.io/use-xpu-uuid": "XPU-3"}
    node.allocate(parse_pod(one, [vendor_info()]))
    half = _pod({"kunlunxin.com/vxpu": 1, "kunlunxin.com/vxpu-memory": 40000}, "h")
    half["metadata"]["annotations"] = {"hami.io/use-xpu-uuid": "XPU-3"}
    with pytest.raises(AllocationError, match="TemplateNotFit|holds vxpu-1/4"):
        node.allocate(parse_pod(half, [vendor_info()]))


def test_whole_card_uuid_filter_is_its_own(inv):
    """Whole cards read baidu.com/use-gpuuuid (HAMi's whole-card filter), not the vXPU one."""
    node = NodeState("n", inv.devices, inv.topology)
    want = inv.devices[6].uuid
    pod = _pod({"kunlunxin.com/xpu": 1}, "w")
    pod["metadata"]["annotations"] = {"baidu.com/use-gpuuuid": want}
    got = node.allocate(parse_pod(pod, [vendor_info()]))
    assert got.containers[0].slices[0].uuid == want
