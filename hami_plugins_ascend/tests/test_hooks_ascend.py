"""One test per hook the Ascend plugin implements, through the Hal facade on simulated nodes."""

from __future__ import annotations

import json

from hami_hal.models import ContainerAllocation, DeviceSlice, PartitionKind
from hami_hal.testing import plugin_problems
from hami_plugins_ascend import plugin, ports


def _slice(dev, template, memory, cores=0):
    return DeviceSlice(vendor="ascend", uuid=dev.uuid, device_index=dev.index, common_word=dev.hami_type,
                       memory_mib=memory, compute_percent=cores, template=template)


def test_plugin_is_sound():
    assert plugin_problems(plugin) == []


def test_hook_hami_hal_vendor(hal):
    (vendor,) = hal.vendors()
    words = {f.common_word for f in vendor.resources}
    assert words == {"Ascend910A", "Ascend910B2", "Ascend910B3", "Ascend910B4", "Ascend910B4-1", "Ascend310P",
                     "Ascend910C"}
    b3 = next(f for f in vendor.resources if f.common_word == "Ascend910B3")
    assert (b3.count, b3.memory, b3.cores) == ("huawei.com/Ascend910B3", "huawei.com/Ascend910B3-memory",
                                               "huawei.com/Ascend910B3-core")
    assert b3.annotations.node_register == "hami.io/node-register-Ascend910B3"
    assert b3.annotations.allocated == "hami.io/Ascend910B3-devices-allocated"
    (rule,) = b3.pod_annotations
    assert (rule.key, rule.allowed, rule.reason) == ("huawei.com/vnpu-mode", ["hami-core"], "ModeNotFit")
    c = next(f for f in vendor.resources if f.common_word == "Ascend910C")
    assert c.device_sets.allowed_sets[2][:2] == [[0, 1], [2, 3]] and 3 not in c.device_sets.allowed_counts


def test_hook_hami_hal_node_vendor(hal, sim):
    from hami_hal.context import NodeContext

    custom = {"chipName": "910X9", "commonWord": "Ascend910X9", "memoryAllocatable": 61440, "memoryCapacity": 65536,
              "aiCore": 24, "templates": [{"name": "vir06_1c_15g", "memory": 15360, "aiCore": 6}]}
    # no vnpus section, or one that only changes built-in chips: the installed identity
    assert hal.node_vendor("ascend", NodeContext("real", "n", config={})) == hal.vendors()[0]
    b3 = {k: v for k, v in custom.items() if k != "commonWord"} | {"chipName": "910B3", "commonWord": "Ascend910B3"}
    assert hal.node_vendor("ascend", NodeContext("real", "n", config={"vnpus": [b3]})) == hal.vendors()[0]
    # a chip the section adds: one more family, HAMi's names for its commonWord
    got = hal.node_vendor("ascend", NodeContext("real", "n", config={"vnpus": [custom]}))
    assert got.resources[:-1] == hal.vendors()[0].resources
    x9 = got.resources[-1]
    assert (x9.common_word, x9.count, x9.annotations.node_register) == (
        "Ascend910X9", "huawei.com/Ascend910X9", "hami.io/node-register-Ascend910X9")
    assert x9.register_partition.max_slots == 4 and x9.register_partition.templates[-1].holds_up_to_mib == 65536
    assert sim("ascend-8x910b3").vendors == hal.vendors()  # discovery publishes it (here: nothing added)


def test_hook_hami_hal_sim_profiles(hal):
    cat = hal.catalog()
    assert {"ascend-8x910b3", "ascend-16x910c", "ascend-4x310p3", "ascend-8x910b4-1"} <= set(cat.nodes)


def test_hook_hami_hal_discover(sim):
    inv = sim("ascend-8x910b3")
    assert inv.source == "simulated" and len(inv.devices) == 8
    d = inv.devices[0]
    assert (d.model, d.hami_type, d.mode, d.attributes["hccs_group"]) == ("910B3", "Ascend910B3", "vnpu-template", 0)
    assert d.attributes["templates"] == ["vir05_1c_16g", "vir10_3c_32g"]
    c = sim("ascend-16x910c").devices
    assert [x.attributes["die_pair"] for x in c[:4]] == [0, 0, 1, 1] and c[0].attributes["super_pod"]


def test_hook_hami_hal_partition_model(sim):
    d = sim("ascend-8x910b3").devices[0]
    assert d.partition.kind is PartitionKind.TEMPLATES and d.partition.max_slots == 4
    assert [t.name for t in d.partition.templates] == ["vir05_1c_16g", "vir10_3c_32g", "whole-card"]
    assert d.partition.requires_creation and d.partition.compute_units == 20
    assert sim("ascend-4x310p3").devices[0].partition.max_slots == 7
    assert sim("ascend-8x910a").devices[0].partition.max_slots == 15
    assert sim("ascend-8x910b3", config={"ascend": {"vDeviceCount": 2}}).devices[0].partition.max_slots == 2
    soft = sim("ascend-8x910b3-vnpu-core").devices[0]
    assert soft.partition.kind is PartitionKind.SHARES and soft.mode == "hami-core"


def test_hook_hami_hal_create_partition(hal, sim):
    d = sim("ascend-8x910b3").devices[2]
    handle = hal.create_partition(d, _slice(d, "vir10_3c_32g", 32768))
    assert handle == {"template": "vir10_3c_32g", "vnpu_id": 2 * 16 + 100, "npu_id": 2, "chip_id": 0}
    assert hal.create_partition(d, _slice(d, "whole-card", 65536)) == {"template": "whole-card", "vnpu_id": None}


def test_hook_hami_hal_destroy_partition(hal, sim):
    d = sim("ascend-8x910b3").devices[1]
    handle = hal.create_partition(d, _slice(d, "vir05_1c_16g", 16384))
    fake = next(iter(ports._fakes.values()))[1]
    assert len(fake.vnpus[1]) == 1
    assert hal.destroy_partition(d, handle) is True
    assert fake.vnpus[1] == []


def test_hook_hami_hal_container_edits(hal, sim):
    d = sim("ascend-8x910b3").devices[3]
    edits = hal.container_edits(ContainerAllocation(name="c", index=0, slices=[_slice(d, "vir05_1c_16g", 16384)]),
                                [d])
    assert edits.env == {"ASCEND_VISIBLE_DEVICES": "3", "ASCEND_VNPU_SPECS": "vir05_1c_16g"}
    assert edits.device_nodes == []


def test_hook_hami_hal_topology(sim):
    inv = sim("ascend-8x910b3")
    u = [d.uuid for d in inv.devices]
    assert inv.topology.link(u[0], u[3]).kind == "hccs"
    assert inv.topology.link(u[3], u[4]).tier.value == "sockets"
    c = sim("ascend-16x910c")
    cu = [d.uuid for d in c.devices]
    assert c.topology.link(cu[0], cu[1]).count == 2 and c.topology.link(cu[1], cu[2]).count == 1


def test_hook_hami_hal_device_metrics(hal, sim):
    d = sim("ascend-8x910b3").devices[0]
    got = {s.name: s.value for s in hal.device_metrics(d)}
    assert got["memory_total"] == 65536 * 2**20 and got["memory_used"] == 3410 * 2**20
    assert got["temperature"] == 35 and got["power"] == 91.0 and got["utilization"] == 0


def test_hook_hami_hal_device_health(hal, place, pod, monkeypatch):
    from pathlib import Path

    from hami_hal.manager import Hal

    monkeypatch.setenv("HAMI_HAL_PROFILE_PATH", str(Path(__file__).with_name("fixtures") / "faulty-node.yaml"))
    inv = Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"]).discover(
        "sim", sim_node="ascend-8x910b3-faulty", node_name="n")
    bad = [d for d in inv.devices if not d.healthy]
    assert [d.index for d in bad] == [5] and bad[0].health_reason == "npu-smi reports Health Critical"
    fit = place(inv, pod("p", {"huawei.com/Ascend910B3": "8"}))
    assert not fit.ok and "CardNotHealth" in fit.reason


def test_hook_hami_hal_pod_annotations(hal, sim, place, pod):
    inv = sim("ascend-8x910b3")
    fit = place(inv, pod("p", {"huawei.com/Ascend910B3": "1", "huawei.com/Ascend910B3-memory": "20000"}))
    anns = hal.pod_annotations(fit.allocation, inv.devices, pod("p", {}))
    (entry,) = json.loads(anns["huawei.com/Ascend910B3"])
    assert entry == {"UUID": fit.allocation.slices()[0].uuid, "memory": 32768, "temp": "vir10_3c_32g", "core": 10}
    assert anns["predicate-time"].isdigit()
    soft = sim("ascend-8x910b3-vnpu-core")
    fit = place(soft, pod("s", {"huawei.com/Ascend910B3": "1", "huawei.com/Ascend910B3-memory": "8192",
                                "huawei.com/Ascend910B3-core": "30"}, {"huawei.com/vnpu-mode": "hami-core"}))
    (entry,) = json.loads(hal.pod_annotations(fit.allocation, soft.devices, {})["huawei.com/Ascend910B3"])
    assert entry == {"UUID": fit.allocation.slices()[0].uuid, "memory": 8192, "core": 30}


def test_hook_hami_hal_admit_request(hal, sim, pod):
    import pytest

    from hami_hal.engine import NodeState
    from hami_hal.errors import InputError
    from hami_hal.requests import parse_pod

    inv = sim("ascend-4x310p3")
    req = parse_pod(pod("p", {"huawei.com/Ascend310P": "1", "huawei.com/Ascend310P-memory": "22000"}), inv.vendors,
                    admit=hal.admit_request)
    (r,) = req.containers[0].requests
    # left as asked: each node rounds with its own templates; above vir04, <= capacity: the whole card
    assert r.memory_mib == 22000
    assert inv.devices[0].partition.smallest_template(22000).name == "whole-card"
    assert {d.family for d in inv.devices} == {"Ascend310P"}  # each chip serves only its own family
    # what depends on the templates is the node's (admission cannot know which node's templates apply)
    for limits, why in (({"huawei.com/Ascend310P": "1", "huawei.com/Ascend310P-memory": "30000"},
                         "no template holds 30000 MiB / 0%"),
                        ({"huawei.com/Ascend310P": "2", "huawei.com/Ascend310P-memory": "3000"},
                         "template vir01 serves requests for at most 1 device(s), not 2")):
        req = parse_pod(pod("p", limits), inv.vendors, admit=hal.admit_request)
        fit = NodeState.from_inventory(inv).fit_pod(req)
        assert not fit.ok and {d for _r, _u, d in fit.refusals} == {why}, fit.refusals
    with pytest.raises(InputError, match="needs the pod annotation huawei.com/vnpu-mode"):
        parse_pod(pod("p", {"huawei.com/Ascend310P": "1", "huawei.com/Ascend310P-core": "30"}), inv.vendors,
                  admit=hal.admit_request)


def test_bad_user_profile_is_one_line(tmp_path, monkeypatch):
    import pytest

    from hami_hal.errors import HalError
    from hami_hal.manager import Hal

    prof = tmp_path / "bad.yaml"
    prof.write_text("""apiVersion: hami-hal.io/v1alpha1
kind: DeviceProfile
metadata: {name: bad-910b3}
spec: {vendor: ascend, model: "910B3", memory_mib: 65536, compute_units: 20, vendor_data: {chips_per_npu: 0}}
---
apiVersion: hami-hal.io/v1alpha1
kind: NodeProfile
metadata: {name: bad-node}
spec: {devices: [{profile: bad-910b3, count: 2}]}
""")
    monkeypatch.setenv("HAMI_HAL_PROFILE_PATH", str(prof))
    hal = Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"])
    with pytest.raises(HalError, match=r"^device profile 'bad-910b3': vendor_data.chips_per_npu 0 must be an integer"):
        hal.discover("sim", sim_node="bad-node", node_name="n")


def test_register_entry_carries_hami_network_id(sim):
    from hami_hal.hami_compat import decode_register, encode_register_json, from_device

    inv = sim("ascend-8x910b3")
    text = encode_register_json([from_device(d) for d in inv.devices])
    back = decode_register(text, "hami.io/node-register-Ascend910B3")
    assert [r.custominfo for r in back] == [{"NetworkID": 0}] * 4 + [{"NetworkID": 1}] * 4
    assert {(r.type, r.count, r.devmem) for r in back} == {("Ascend910B3", 4, 65536)}
    assert all("NetworkID" not in d.attributes.get("custominfo", {}) for d in sim("ascend-4x310p3").devices)


def test_admission_is_idempotent(hal, sim, pod):
    from hami_hal.requests import parse_pod

    inv = sim("ascend-16x910c")
    doc = pod("p", {"huawei.com/Ascend910C": "1"}, {"hami.io/use-Ascend910C-uuid": inv.devices[0].uuid})
    (once,) = parse_pod(doc, inv.vendors, admit=hal.admit_request).containers[0].requests
    assert once.count == 2 and once.uuid_include == [inv.devices[0].uuid]
    twice = hal.admit_request(once, doc["metadata"]["annotations"])
    assert twice == once
