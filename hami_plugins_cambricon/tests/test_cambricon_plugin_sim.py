"""The Cambricon plugin on simulated MLU370 nodes: discovery through the fake cnmon, sMLU shares (vmemory in
256 MiB units, vcore %), whole cards for vmlu > 1, the DSMLU profile annotation, container edits, health."""

from __future__ import annotations

import pytest
from hami_plugins_cambricon.vendor import vendor_info

from hami_hal.context import NodeContext
from hami_hal.engine import NodeState
from hami_hal.errors import AllocationError
from hami_hal.hami_compat import allocation_annotations
from hami_hal.requests import parse_pod
from hami_hal.testing import isolated_hal, plugin_problems, sim_inventory
from hami_plugins_cambricon import plugin


def _pod(limits: dict, name: str = "p") -> dict:
    return {"kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}


@pytest.fixture(scope="module")
def inv():
    return sim_inventory(isolated_hal(plugin), "cambricon-4xmlu370-x8")


def test_plugin_is_sound():
    assert plugin_problems(plugin) == []


def test_discovery(inv):
    assert [d.model for d in inv.devices] == ["MLU370-X8"] * 4
    assert all(d.memory_mib == 49152 and d.provenance.source == "simulated" for d in inv.devices)
    assert inv.devices[0].partition.memory_granularity_mib == 256
    assert [d.numa_node for d in inv.devices] == [0, 0, 1, 1]


def test_vmemory_is_256_mib_units_not_percent(inv):
    """Reference note: docs say 1 unit = 1 %, HAMi's code (and ours) say 256 MiB."""
    node = NodeState("n", inv.devices, None)
    a = node.allocate(parse_pod(_pod({"cambricon.com/vmlu": 1, "cambricon.com/mlu.smlu.vmemory": 20,
                                      "cambricon.com/mlu.smlu.vcore": 10}), [vendor_info()]))
    s = a.containers[0].slices[0]
    assert (s.memory_mib, s.compute_percent) == (20 * 256, 10)
    assert s.memory_mib != 49152 * 20 // 100


def test_vcore_defaults_to_100(inv):
    node = NodeState("n", inv.devices[:1], None)
    node.allocate(parse_pod(_pod({"cambricon.com/vmlu": 1, "cambricon.com/mlu.smlu.vmemory": 4}, "a"),
                            [vendor_info()]))
    with pytest.raises(AllocationError):  # 100 % is exclusive: the card is taken
        node.allocate(parse_pod(_pod({"cambricon.com/vmlu": 1, "cambricon.com/mlu.smlu.vmemory": 4,
                                      "cambricon.com/mlu.smlu.vcore": 5}, "b"), [vendor_info()]))


def test_more_than_one_vmlu_takes_whole_cards(inv):
    node = NodeState("n", inv.devices, None)
    a = node.allocate(parse_pod(_pod({"cambricon.com/vmlu": 2, "cambricon.com/mlu.smlu.vmemory": 4,
                                      "cambricon.com/mlu.smlu.vcore": 10}), [vendor_info()]))
    assert [(s.memory_mib, s.compute_percent) for s in a.containers[0].slices] == [(49152, 100)] * 2
    assert plugin.hami_hal_pod_annotations(a, inv.devices, {}) is None


def test_hook_hami_hal_pod_annotations_cambricon(inv):
    node = NodeState("n", inv.devices, None)
    node.allocate(parse_pod(_pod({"cambricon.com/vmlu": 1, "cambricon.com/mlu.smlu.vmemory": 8,
                                  "cambricon.com/mlu.smlu.vcore": 30}, "first"), [vendor_info()]))
    a = node.allocate(parse_pod(_pod({"cambricon.com/vmlu": 1, "cambricon.com/mlu.smlu.vmemory": 20,
                                      "cambricon.com/mlu.smlu.vcore": 10}, "second"), [vendor_info()]))
    idx = {d.uuid: d.index for d in inv.devices}[a.containers[0].slices[0].uuid]
    assert plugin.hami_hal_pod_annotations(a, inv.devices, {}) == {
        "CAMBRICON_DSMLU_PROFILE": f"{idx}_10_20", "CAMBRICON_DSMLU_ASSIGNED": "false"}
    anns = allocation_annotations(a, [vendor_info()], 1)
    assert anns["hami.io/cambricon-mlu-devices-allocated"].endswith(",MLU,5120,10:;")


def test_hook_hami_hal_container_edits_cambricon(inv):
    node = NodeState("n", inv.devices, None)
    a = node.allocate(parse_pod(_pod({"cambricon.com/vmlu": 2}), [vendor_info()]))
    edits = plugin.hami_hal_container_edits(a.containers[0], inv.devices, NodeContext("sim", "n"))
    assert edits.env["MLU_VISIBLE_DEVICES"].count(",") == 1
    assert "/dev/cambricon_ctl" in {n.path for n in edits.device_nodes}


def test_ecc_card_is_unhealthy():
    hal = isolated_hal(plugin)
    inv = sim_inventory(hal, "cambricon-2xmlu370-s4-ecc")
    assert [d.healthy for d in inv.devices] == [True, False]
    ctx = NodeContext("sim", "n", sim=hal.catalog().compose("cambricon-2xmlu370-s4-ecc").for_vendor("cambricon"))
    assert "ECC" in plugin.hami_hal_device_health(inv.devices[1], ctx).reason
    assert {s.name for s in plugin.hami_hal_device_metrics(inv.devices[0], ctx)} == {"memory_used", "memory_total"}
