"""HAMi's ``vnpus`` section as the Ascend plugin's chip table: HAMi's own table (both forms) gives the built-in
chips, a user's changed template and a chip HAMi's defaults lack are what discovery and the partition model use on
the simulated hardware, and a bad entry is one line naming ``vnpus.configs[i].<field>`` and the value."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hami_plugins_ascend.chips import chips
from hami_plugins_ascend.config import check_config, parse_config

from hami_hal.errors import InputError
from hami_hal.models import PartitionKind
from hami_hal.node.families import families
from hami_hal.node.plugin_settings import check_plugin_config, node_settings

HAMI_VNPUS = yaml.safe_load((Path(__file__).with_name("fixtures") / "hami-v2.10-vnpus.yaml").read_text())["vnpus"]
#: Keys the built-in table leaves unset (HAMi's entries write them; the values must be the ones hami-hal serves).
NAMES = {"resourceName", "resourceMemoryName", "resourceCoreName"}
NO_FLAGS = {"deviceSplitCount": None, "deviceMemoryScaling": None, "deviceCoreScaling": None}
#: A chip HAMi's table lacks (figures for the test, not a Huawei datasheet): 64 GB, 24 AI cores.
CUSTOM = {"chipName": "910X9", "commonWord": "Ascend910X9", "memoryAllocatable": 61440, "memoryCapacity": 65536,
          "aiCore": 24, "aiCPU": 6, "templates": [{"name": "vir06_1c_15g", "memory": 15360, "aiCore": 6, "aiCPU": 1},
                                                  {"name": "vir12_3c_30g", "memory": 30720, "aiCore": 12, "aiCPU": 3}]}
CUSTOM_PROFILES = """\
apiVersion: hami-hal.io/v1alpha1
kind: DeviceProfile
metadata: {name: test-910x9, description: "a chip outside HAMi's table (test)"}
spec:
  vendor: ascend
  model: "910X9"
  memory_mib: 65536
  compute_units: 24
  vendor_data: {chips_per_npu: 1, power_w: 90.0, temperature_c: 35, hbm_used_mib: 3000, device_share: false}
---
apiVersion: hami-hal.io/v1alpha1
kind: NodeProfile
metadata: {name: test-910x9-node, description: "two custom chips beside two 910B3 (test)"}
spec:
  driver_version: "24.1.rc3"
  devices:
    - {profile: test-910x9, count: 2}
    - {profile: ascend-910b3, count: 2}
"""


def _plain(c) -> dict:
    return c.model_dump(exclude=NAMES)


def _vnpus(*entries: dict) -> dict:
    return {"hamiVnpuCore": False, "configs": list(entries)}


def _b3(**change) -> dict:
    entry = copy.deepcopy(next(e for e in HAMI_VNPUS["configs"] if e["chipName"] == "910B3"))
    entry.update(change)
    return entry


@pytest.mark.parametrize("form", ["v2.9+ mapping", "bare list (before v2.9)"])
def test_hamis_table_gives_the_built_in_chips(form):
    section = HAMI_VNPUS if form.startswith("v2.9") else HAMI_VNPUS["configs"]
    cfg = parse_config({"vnpus": section})
    assert [_plain(c) for c in cfg.chips] == [_plain(c) for c in chips()]
    assert all(c.resourceName == f"huawei.com/{c.commonWord}" for c in cfg.chips)
    assert cfg.default_vnpu_core is (False if form.startswith("v2.9") else None)
    assert check_config({"vnpus": section}) == []  # every HAMi key read, nothing noted


@pytest.mark.parametrize("node", ["ascend-8x910b3", "ascend-4x310p3", "ascend-8x910a", "ascend-16x910c"])
def test_hamis_table_partitions_the_simulated_node_as_the_built_in_one(hal, node):
    plain = hal.discover("sim", sim_node=node, node_name="n")
    hami = hal.discover("sim", sim_node=node, node_name="n", vendor_configs={"ascend": {"vnpus": HAMI_VNPUS}})
    assert [d.partition for d in hami.devices] == [d.partition for d in plain.devices]
    assert [d.family for d in hami.devices] == [d.family for d in plain.devices]
    assert all(d.partition.kind is not PartitionKind.WHOLE for d in hami.devices)


def test_a_changed_template_is_what_the_partition_model_offers(hal):
    one = _b3(templates=[{"name": "vir10_3c_32g", "memory": 32768, "aiCore": 10, "aiCPU": 3}])
    plain = hal.discover("sim", sim_node="ascend-8x910b3", node_name="n")
    inv = hal.discover("sim", sim_node="ascend-8x910b3", node_name="n", vendor_configs={"ascend": {"vnpus": [one]}})
    before, after = plain.devices[0].partition, inv.devices[0].partition
    assert [t.name for t in before.templates] == ["vir05_1c_16g", "vir10_3c_32g", "whole-card"]
    assert before.max_slots == 4
    assert [t.name for t in after.templates] == ["vir10_3c_32g", "whole-card"]
    assert after.max_slots == 2  # HAMi's split count: memoryAllocatable / the smallest template (65536 / 32768)


def test_a_chip_hamis_table_lacks_is_discovered_and_partitioned_from_its_entry(hal, tmp_path):
    prof = tmp_path / "custom.yaml"
    prof.write_text(CUSTOM_PROFILES)
    hal.add_profiles([prof])
    plain = hal.discover("sim", sim_node="test-910x9-node", node_name="n")
    custom = [d for d in plain.devices if d.model == "910X9"]
    assert len(custom) == 2 and all(d.partition.kind is PartitionKind.WHOLE for d in custom)
    assert "not in HAMi's Ascend catalogue" in custom[0].attributes["unknown"]["chip"]

    inv = hal.discover("sim", sim_node="test-910x9-node", node_name="n",
                       vendor_configs={"ascend": {"vnpus": _vnpus(CUSTOM)}})
    custom = [d for d in inv.devices if d.model == "910X9"]
    d = custom[0]
    assert (d.family, d.hami_type, d.compute_units) == ("Ascend910X9", "Ascend910X9", 24)
    assert "chip" not in d.attributes["unknown"]
    assert d.partition.kind is PartitionKind.TEMPLATES and d.partition.memory_mib == 61440
    assert [(t.name, t.memory_mib, t.compute_units) for t in d.partition.templates] == [
        ("vir06_1c_15g", 15360, 6), ("vir12_3c_30g", 30720, 12), ("whole-card", 61440, 24)]
    assert d.partition.max_slots == 4  # 61440 // 15360
    # the 910B3 beside it keep the built-in entry
    b3 = next(x for x in inv.devices if x.model == "910B3")
    assert [t.name for t in b3.partition.templates] == ["vir05_1c_16g", "vir10_3c_32g", "whole-card"]
    # the installed plugin's VendorInfo (the built-in table) never offers the custom chip under another chip's
    # resource (it used to land in huawei.com/Ascend910A); the node's (hami_hal_node_vendor) gives it its own
    fams = families(hal.vendors(), inv.devices)
    assert [(f.resource_name, len(f.devices)) for f in fams] == [("huawei.com/Ascend910B3", 2)]
    fams = families(inv.vendors, inv.devices)
    assert [(f.resource_name, len(f.devices)) for f in fams] == [("huawei.com/Ascend910B3", 2),
                                                                ("huawei.com/Ascend910X9", 2)]
    x9 = fams[1].resource
    assert (x9.memory, x9.cores, x9.annotations.to_allocate) == (
        "huawei.com/Ascend910X9-memory", "huawei.com/Ascend910X9-core", "hami.io/Ascend910X9-devices-to-allocate")
    assert [t.name for t in x9.register_partition.templates] == ["vir06_1c_15g", "vir12_3c_30g", "whole-card"]
    assert [v.resources for v in plain.vendors] == [v.resources for v in hal.vendors()]  # no section: nothing added


def test_vnpus_hami_vnpu_core_is_the_default_where_the_node_has_no_answer():
    assert parse_config({"vnpus": {"hamiVnpuCore": True, "configs": []}}).default_vnpu_core is True
    cfg = parse_config({"ascend": {"hamiVnpuCore": False}, "vnpus": {"hamiVnpuCore": True, "configs": []}})
    assert cfg.hami_vnpu_core is False and cfg.default_vnpu_core is True  # the node's own setting decides first


def test_a_section_key_the_plugin_does_not_read_is_noted():
    notes = check_config({"vnpus": {"hamiVnpuCore": False, "hamiVnpuMode": "enpu", "configs": []}})
    assert notes == ["vnpus: hamiVnpuMode not read by the Ascend plugin (it reads hamiVnpuCore, configs)"]


BAD = [
    (_vnpus(_b3(resourceName="huawei.com/npu")), "vnpus.configs[0].resourceName", "'huawei.com/npu'",
     "hami-hal serves 'huawei.com/Ascend910B3'"),
    (_vnpus(_b3(resourceMemoryName="huawei.com/Ascend910B3-mem")), "vnpus.configs[0].resourceMemoryName",
     "'huawei.com/Ascend910B3-mem'", "serves 'huawei.com/Ascend910B3-memory'"),
    (_vnpus(_b3(memoryFactor=1024)), "vnpus.configs[0].memoryFactor", "1024", "count MiB (memoryFactor 1)"),
    (_vnpus(_b3(memoryFactor=-1)), "vnpus.configs[0].memoryFactor", "-1", "greater than or equal to 0"),
    (_vnpus(_b3(overwriteEnv="sometimes")), "vnpus.configs[0].overwriteEnv", "'sometimes'", "valid boolean"),
    (_vnpus(_b3(runtimeClassName="Bad_Class")), "vnpus.configs[0].runtimeClassName", "'Bad_Class'", "pattern"),
    (_vnpus({k: v for k, v in _b3(commonWord="Ascend910Bx").items() if k not in NAMES}), "vnpus.configs[0].commonWord", "'Ascend910Bx'", "differs from chip 910B3"),
    (_vnpus(dict(CUSTOM, commonWord="Ascend310P")), "vnpus.configs[0].commonWord", "'Ascend310P'",
     "is chip 310P3's"),
    (_vnpus(_b3(), _b3()), "vnpus.configs[1].chipName", "'910B3'", "listed twice"),
    (_vnpus(_b3(colour="red")), "vnpus.configs[0].colour", "'red'", "Extra inputs"),
    (_vnpus(_b3(templates=[{"name": "vir05_1c_16g", "memory": "16g", "aiCore": 5}])),
     "vnpus.configs[0].templates[0].memory", "'16g'", "valid integer"),
    (_vnpus(_b3(templates=[{"name": "x", "memory": 1, "aiCore": 1}])), "vnpus.configs[0].templates[0].name", "'x'",
     "pattern"),
    (_vnpus(_b3(memoryCapacity=1024)), "vnpus.configs[0]", "'910B3'", "exceeds memoryCapacity"),
    ([_b3(aiCore=0)], "vnpus[0].aiCore", "0", "greater than or equal to 1"),
    ({"hamiVnpuCore": "yes", "configs": []}, "vnpus.hamiVnpuCore", "'yes'", "true or false"),
    ({"configs": {"chipName": "910B3"}}, "vnpus.configs", "'dict'", "must be a list"),
    ({"configs": ["910B3"]}, "vnpus.configs[0]", "'910B3'", "must be a mapping"),
    ("910B3", "vnpus", "'str'", "must be HAMi's vnpus section"),
    ({"configs": [_b3()] * 65}, "vnpus.configs", "'65 entries'", "too long"),
    ({"configs": [], 1: "x"}, "vnpus", "'dict'", "string keys"),  # keys of mixed types (was: '<' not supported)
    # a chip only the section knows is held to the same bounds
    (_vnpus(dict(CUSTOM, chipName="910X9/../../etc")), "vnpus.configs[0].chipName", "'910X9/../../etc'", "pattern"),
    (_vnpus(dict(CUSTOM, commonWord="Ascend 910X9")), "vnpus.configs[0].commonWord", "'Ascend 910X9'", "pattern"),
    (_vnpus(dict(CUSTOM, resourceName="huawei.com/npu")), "vnpus.configs[0].resourceName", "'huawei.com/npu'",
     "hami-hal serves 'huawei.com/Ascend910X9'"),
    (_vnpus(dict(CUSTOM, memoryAllocatable=-1)), "vnpus.configs[0].memoryAllocatable", "-1",
     "greater than or equal to 1"),
    (_vnpus(dict(CUSTOM, memoryCapacity=1 << 40)), "vnpus.configs[0].memoryCapacity", "1099511627776",
     "less than or equal to 1048576"),
    (_vnpus(dict(CUSTOM, templates=[dict(CUSTOM["templates"][0], memory=-15360)])),
     "vnpus.configs[0].templates[0].memory", "-15360", "greater than or equal to 1"),
    (_vnpus(dict(CUSTOM, templates=[dict(CUSTOM["templates"][0], memory=70000)])), "vnpus.configs[0]", "'910X9'",
     "a template or memoryAllocatable exceeds memoryCapacity"),
    (_vnpus(dict(CUSTOM, templates=[dict(CUSTOM["templates"][0], aiCore=25)])), "vnpus.configs[0]", "'910X9'",
     "more AI cores than the chip"),
    (_vnpus(dict(CUSTOM, templates=[CUSTOM["templates"][0]] * 2)), "vnpus.configs[0]", "'910X9'",
     "a template name is listed twice"),
    (_vnpus(dict(CUSTOM, templates=[])), "vnpus.configs[0]", "'910X9'", "needs at least one template"),
    (_vnpus(CUSTOM, dict(CUSTOM, chipName="910X8")), "vnpus.configs[1].commonWord", "'Ascend910X9'",
     "listed twice"),
    (_vnpus(CUSTOM, CUSTOM), "vnpus.configs[1].chipName", "'910X9'", "listed twice"),
]


@pytest.mark.parametrize(("section", "field", "value", "reason"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_a_bad_entry_is_one_line_naming_the_field_and_value(section, field, value, reason):
    with pytest.raises(InputError) as err:
        check_config({"vnpus": section})
    text = str(err.value)
    assert text.startswith(f"{field}: {value} "), text
    assert reason in text and "\n" not in text


def _file(tmp_path: Path, section: object) -> Path:
    path = tmp_path / "device-config.yaml"
    path.write_text(yaml.safe_dump({"deviceSplitCount": 10, "vnpus": section, "nvidia": {"deviceSplitCount": 4}}))
    return path


def test_the_node_agent_hands_the_vnpus_section_to_the_ascend_plugin(hal, tmp_path):
    routes = {v.name: v.hami_sections for v in hal.vendors() if v.hami_sections}
    assert routes == {"ascend": ["vnpus"]}
    for section in (HAMI_VNPUS, HAMI_VNPUS["configs"]):
        s = node_settings(_file(tmp_path, section), "n", NO_FLAGS, hami_sections=routes)
        s.drop_sections_except({"ascend"})
        assert s.config_for("ascend")["vnpus"] == section
        assert check_plugin_config(hal, s, "ascend") == []
        assert not [n for n in s.notes if "vnpus" in n], s.notes  # read, not "no installed plugin"
    bad = _vnpus(_b3(memoryFactor=2))
    s = node_settings(_file(tmp_path, bad), "n", NO_FLAGS, hami_sections=routes)
    with pytest.raises(InputError, match=r"^device-config.yaml: vnpus.configs\[0\].memoryFactor: 2 HAMi multiplies"):
        check_plugin_config(hal, s, "ascend")


def test_without_a_plugin_declaring_it_vnpus_is_noted_as_before(tmp_path):
    s = node_settings(_file(tmp_path, HAMI_VNPUS), "n", NO_FLAGS, hami_sections={})
    s.drop_sections_except({"nvidia"})
    assert any("'vnpus' names no installed plugin" in n for n in s.notes), s.notes


def test_the_webhook_manages_a_chip_only_the_vnpus_section_knows(tmp_path, monkeypatch):
    import base64
    import json

    from hami_scheduler.webhook import Mutator, webhook_config

    monkeypatch.setenv("HAMI_HAL_PLUGINS", "ascend")
    f = tmp_path / "device-config.yaml"
    f.write_text(yaml.safe_dump({"vnpus": _vnpus(dict(CUSTOM, runtimeClassName="ascend"))}))
    cfg = webhook_config(None, str(f))
    assert cfg.notes == ()
    m = Mutator(cfg.vendors, admission=cfg.admission)
    assert {"huawei.com/Ascend910X9", "huawei.com/Ascend910X9-memory"} <= set(m.managed)
    spec = {"containers": [{"name": "npu", "image": "x", "resources": {"limits": {"huawei.com/Ascend910X9": "1"}}}]}
    resp = m.review({"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
                     "namespace": "default", "object": {"metadata": {"name": "p"}, "spec": spec}})
    ops = {op["path"]: op["value"] for op in json.loads(base64.b64decode(resp["patch"]))}
    assert ops["/spec/schedulerName"] == "hami-scheduler" and ops["/spec/runtimeClassName"] == "ascend"
    # HAMi's partial entries (the chart's example) are still read for the webhook's keys; no chip added, one note
    f.write_text("vnpus:\n  configs:\n    - {commonWord: Ascend910B3, runtimeClassName: ascend}\n")
    cfg = webhook_config(None, str(f))
    (note,) = cfg.notes
    assert note.startswith(f"{f}: vnpus: no chips added for ascend (vnpus.configs[0].") and "\n" not in note
    assert [f.common_word for f in cfg.vendors[0].resources] == [c.commonWord for c in chips()]
    assert len(cfg.admission) == 1 and cfg.admission[0].runtime_class_name == "ascend"


@pytest.mark.parametrize(("templates", "text"), [
    ("[{name: x, memory: 1024, aiCore: 1}]", "vendor_data.templates[0].name: String should match pattern"),
    ("[{name: vir06, memory: 99999, aiCore: 6}]", "vendor_data.templates: vir06 is larger than the chip (65536 MiB"),
    ("[{name: vir06, memory: 1024, aiCore: 99}]", "vir06 is larger than the chip (65536 MiB, 24 AI cores)"),
    ("[]", "vendor_data.templates must be a list of 1 to 64 templates"),
    ("{vir06: 1}", "vendor_data.templates must be a list of 1 to 64 templates"),
])
def test_a_profiles_bad_firmware_templates_are_one_line(hal, tmp_path, templates, text):
    from hami_hal.errors import ProfileError

    prof = tmp_path / "custom.yaml"
    prof.write_text(CUSTOM_PROFILES.replace("device_share: false}", f"device_share: false, templates: {templates}}}"))
    hal.add_profiles([prof])
    with pytest.raises(ProfileError) as err:
        hal.discover("sim", sim_node="test-910x9-node", node_name="n")
    assert str(err.value).startswith("device profile 'test-910x9': ") and text in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


# -- what depends on the templates is each node's ---------------------------------------------------------
# What depends on a chip's templates is decided on each node with that node's templates, not at admission with the
# built-in table: the template a request rounds to, ``-memory`` only with a count of 1 (a vNPU is one card's), and
# a superPod chip's whole cards in pairs. A node's ``vnpus`` section may change the templates, and admission cannot
# know which node a pod goes to (docs/hami-compatibility.md, "Ascend"), so the rules are the node partition model's
# (``PartitionModel.template_max_count``, ``whole_count_multiple``) and the engine applies them where it rounds.
#
# Before, admission rounded with the built-in table: it refused a two-card request a node whose templates stop at
# 16 GB gives two whole cards, let a node-added chip's vNPU span two cards, and sent a 910C request that the node
# rounds to one whole card there as one card (not a die pair).

B3 = "huawei.com/Ascend910B3"
SMALL = [{"name": "vir05_1c_16g", "memory": 16384, "aiCore": 5, "aiCPU": 1}]


def _entry(word: str, **change) -> dict:
    entry = copy.deepcopy(next(e for e in HAMI_VNPUS["configs"] if e["commonWord"] == word))
    entry.update(change)
    return entry


def _node(hal, node: str, *entries: dict):
    return hal.discover("sim", sim_node=node, node_name="n", vendor_configs={"ascend": {"vnpus": _vnpus(*entries)}})


def _why(fit) -> set[str]:
    """The refusals of the devices of the asked family (a node's other chips refuse by family)."""
    assert not fit.ok, fit.allocation
    return {detail for _reason, _uuid, detail in fit.refusals if not detail.startswith("device serves")}


def test_two_cards_above_the_nodes_largest_template_are_whole_cards(hal, place, pod):
    """20000 MiB is a vir10_3c_32g vNPU in the built-in table (refused on two cards), but above every template of a
    node whose section keeps only the 16 GB one: two whole cards there, as HAMi with that table gives."""
    inv = _node(hal, "ascend-8x910b3", _b3(templates=SMALL))
    fit = place(inv, pod("p", {B3: "2", f"{B3}-memory": "20000"}))
    assert fit.ok, fit.reason
    assert [(s.template, s.memory_mib) for s in fit.allocation.slices()] == [("whole-card", 65536)] * 2
    # on a node with the built-in templates the same request is a vNPU on two cards: refused there
    plain = hal.discover("sim", sim_node="ascend-8x910b3", node_name="m")
    assert _why(place(plain, pod("p", {B3: "2", f"{B3}-memory": "20000"}))) == {
        "template vir10_3c_32g serves requests for at most 1 device(s), not 2"}
    # one card still rounds to the node's own template
    (one,) = place(inv, pod("p", {B3: "1", f"{B3}-memory": "10000"})).allocation.slices()
    assert (one.template, one.memory_mib) == ("vir05_1c_16g", 16384)


def test_a_node_added_chips_vnpu_is_one_cards(hal, place, pod, tmp_path):
    """A chip only the node's section knows has no built-in figures; its vNPU template still serves one card."""
    prof = tmp_path / "custom.yaml"
    prof.write_text(CUSTOM_PROFILES)
    hal.add_profiles([prof])
    inv = _node(hal, "test-910x9-node", CUSTOM)
    x9 = "huawei.com/Ascend910X9"
    assert _why(place(inv, pod("p", {x9: "2", f"{x9}-memory": "20000"}))) == {
        "template vir12_3c_30g serves requests for at most 1 device(s), not 2"}
    fit = place(inv, pod("p", {x9: "2", f"{x9}-memory": "40000"}))  # above its templates: two whole cards
    assert fit.ok and [s.template for s in fit.allocation.slices()] == ["whole-card"] * 2


@pytest.mark.parametrize("memory, count, want", [
    ("20000", "1", "whole devices here go in multiples of 2, not 1"),  # the node rounds it to one whole card
    ("20000", "2", None),  # a die pair of whole cards
    ("10000", "1", None),  # one vNPU of the node's 16 GB template
])
def test_a_superpod_chips_whole_cards_pair_by_the_nodes_templates(hal, place, pod, memory, count, want):
    inv = _node(hal, "ascend-16x910c", _entry("Ascend910C", templates=SMALL))
    fit = place(inv, pod("p", {"huawei.com/Ascend910C": count, "huawei.com/Ascend910C-memory": memory}))
    if want:
        assert _why(fit) == {want}
    else:
        assert fit.ok and len(fit.allocation.slices()) == int(count), fit.reason
