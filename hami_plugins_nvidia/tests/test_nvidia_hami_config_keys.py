"""HAMi's NVIDIA device-config keys the plugin now reads (hami-compat.md §7.1, §7.2, §9): each one changes what
the plugin does on a simulated node, and a bad value is one InputError naming the key and the value."""

from __future__ import annotations

import pytest
from hami_plugins_nvidia.config import check_config, parse_config

from hami_hal.errors import InputError
from hami_hal.models import ContainerAllocation, DeviceSlice, PartitionKind
from hami_hal.node.families import Family
from hami_hal.node.plugin_server import DevicePluginService
from hami_plugins_nvidia import ports

MIG_NODE = "nvidia-2xa100-mig"  # two "NVIDIA A100-SXM4-80GB", MIG mode on
A100_80 = {"models": ["A100-SXM4-80GB", "A100-80GB-PCIe", "A100-PCIE-80GB"],
           "profiles": ["1g.10gb", "2g.20gb", "3g.40gb", "7g.79gb"]}


def _templates(inv) -> list[str]:
    return [t.name for t in inv.devices[0].partition.templates]


# -- migProfileAllowlist: HAMi v2.10's per-model form ----------------------------------------------


def test_per_model_allowlist_applies_the_entry_whose_model_the_gpu_name_contains(sim):
    inv = sim(MIG_NODE, {"nvidia": {"migProfileAllowlist": [
        {"models": ["A30"], "profiles": ["1g.6gb", "2g.12gb", "4g.24gb"]}, A100_80]}})
    # the A100 entry matches "NVIDIA A100-SXM4-80GB" as a substring; 7g.79gb names no profile NVML lists
    assert _templates(inv) == ["1g.10gb", "2g.20gb", "3g.40gb"]
    assert inv.devices[0].partition.kind is PartitionKind.TEMPLATES


def test_the_most_specific_matching_entry_decides_then_the_first():
    cfg = parse_config({"nvidia": {"migProfileAllowlist": [
        {"models": ["H20"], "profiles": ["1g.12gb"]}, {"models": ["H200 NVL"], "profiles": ["1g.18gb"]},
        {"models": ["A100"], "profiles": ["7g.80gb"]}, {"models": ["A100"], "profiles": ["3g.40gb"]}]}})
    assert cfg.allowed_mig_profiles("NVIDIA H200 NVL") == ("1g.18gb",)  # not H20's, though "H20" is in the name
    assert cfg.allowed_mig_profiles("NVIDIA H20") == ("1g.12gb",)
    assert cfg.allowed_mig_profiles("NVIDIA A100-SXM4-80GB") == ("7g.80gb",)  # equals: the first entry


def test_a_more_specific_entry_wins_on_a_node(sim):
    inv = sim(MIG_NODE, {"nvidia": {"migProfileAllowlist": [
        {"models": ["A100"], "profiles": ["7g.80gb"]}, A100_80]}})
    assert _templates(inv) == ["1g.10gb", "2g.20gb", "3g.40gb"]


def test_a_model_no_entry_names_is_not_filtered(sim):
    every = _templates(sim(MIG_NODE))
    inv = sim(MIG_NODE, {"nvidia": {"migProfileAllowlist": [{"models": ["H100"], "profiles": ["1g.10gb"]}]}})
    assert _templates(inv) == every and len(every) > 1


def test_the_flat_list_still_applies_to_every_gpu(sim):
    assert _templates(sim(MIG_NODE, {"migProfileAllowlist": ["3g.40gb", "7g.80gb"]})) == ["3g.40gb", "7g.80gb"]


@pytest.mark.parametrize(("value", "named"), [
    ([{"models": ["A30"], "profiles": ["1g"]}], "migProfileAllowlist[0].profiles: '1g' is not one of MIG profile"),
    ([{"models": ["A30"], "profiles": ["1g.6GB"]}], "migProfileAllowlist[0].profiles: '1g.6GB' is not one of MIG profile names: "
                                                     "each must be <N>g.<mem>gb"),
    ([{"models": [], "profiles": ["1g.6gb"]}], "migProfileAllowlist[0].models: [] must not be empty"),
    ([{"models": ["A30"]}], "migProfileAllowlist[0].profiles: None must be a list"),
    ([{"models": ["A30"], "profiles": ["1g.6gb"], "count": 4}], "migProfileAllowlist[0].count: 4 is not a key"),
    ([{"models": ["A30"], "profiles": ["1g.6gb"], 7: 4}], "migProfileAllowlist[0].7: 4 is not a key"),
    (["1g.6gb", {"models": ["A30"], "profiles": ["1g.6gb"]}], "migProfileAllowlist[0]: '1g.6gb' must be a {models"),
    (["7g"], "migProfileAllowlist: '7g' is not one of MIG profile names"),
    ("1g.6gb", "migProfileAllowlist: '1g.6gb' must be a list"),
])
def test_a_bad_allowlist_names_the_entry_and_the_value(value, named):
    with pytest.raises(InputError) as err:
        parse_config({"nvidia": {"migProfileAllowlist": value}})
    assert str(err.value).startswith(named), str(err.value)


# -- gpuCorePolicy and its precedence over disableCoreLimit -----------------------------------------


@pytest.mark.parametrize(("settings", "env"), [
    ({}, None),
    ({"gpuCorePolicy": "default"}, None),
    ({"gpuCorePolicy": "force"}, "force"),
    ({"gpuCorePolicy": "disable"}, "disable"),
    ({"disableCoreLimit": True}, "disable"),
    ({"gpuCorePolicy": "default", "disableCoreLimit": True}, "disable"),
    ({"gpuCorePolicy": "force", "disableCoreLimit": True}, "force"),  # HAMi: the webhook's value wins
])
def test_gpu_core_policy_reaches_the_container_env(hal, sim, settings, env):
    inv = sim("nvidia-2xv100-pcie", {"nvidia": settings})
    s = DeviceSlice(vendor="nvidia", uuid=inv.devices[0].uuid, device_index=0, common_word="NVIDIA",
                    memory_mib=4000, compute_percent=30)
    edits = hal.container_edits(ContainerAllocation(name="c", index=0, slices=[s]), inv.devices)
    assert edits.env.get("GPU_CORE_UTILIZATION_POLICY") == env
    assert edits.env["CUDA_DEVICE_SM_LIMIT"] == "30"


def test_a_bad_core_policy_is_refused():
    with pytest.raises(InputError, match=r"^gpuCorePolicy: 'strict' must be one of default, force, disable$"):
        parse_config({"nvidia": {"gpuCorePolicy": "strict"}})


# -- migstrategy, operatingmode mps --------------------------------------------------------------------


def test_migstrategy_none_leaves_mig_gpus_unregistered_unless_the_mode_is_mig(sim):
    assert len(sim(MIG_NODE, {"nvidia": {"migStrategy": "mixed"}}).devices) == 2
    assert sim(MIG_NODE, {"nvidia": {"migstrategy": "none"}}).devices == []
    inv = sim(MIG_NODE, {"nvidia": {"migstrategy": "none", "operatingmode": "mig"}})  # HAMi v2.10's dynamic MIG
    assert len(inv.devices) == 2 and inv.devices[0].partition.kind is PartitionKind.TEMPLATES
    # a GPU with MIG off is not affected
    assert len(sim("nvidia-2xv100-pcie", {"nvidia": {"migstrategy": "none"}}).devices) == 2


def test_migstrategy_and_mps_are_checked():
    with pytest.raises(InputError, match=r"^migstrategy: 'single' must be one of none, mixed$"):
        parse_config({"nvidia": {"migstrategy": "single"}})
    with pytest.raises(InputError, match=r"^operatingmode: 'mps' is not supported: hami-hal's NVIDIA plugin has no "
                                         "MPS mode"):
        parse_config({"nvidia": {"operatingmode": "mps"}})


# -- preConfiguredDeviceMemory ----------------------------------------------------------------------


def test_preconfigured_memory_is_used_only_when_nvml_reports_none(hal, sim):
    inv = sim("nvidia-2xv100-pcie", {"nvidia": {"preConfiguredDeviceMemory": 1000}})
    assert inv.devices[0].memory_mib == 32768 and inv.devices[0].attributes["memory_source"] == "nvml"
    ports.fake_for(hal.context("nvidia").sim).inject(0, "not-supported:memory_info")  # e.g. GB10
    inv = sim("nvidia-2xv100-pcie", {"nvidia": {"preConfiguredDeviceMemory": 122880}})
    d0, d1 = inv.devices
    assert d0.memory_mib == 122880 and d0.healthy and d0.attributes["memory_source"] == "preConfiguredDeviceMemory"
    assert "Not Supported" in d0.attributes["unknown"]["memory"]
    assert d0.partition.kind is PartitionKind.SHARES and d0.partition.memory_mib == 122880
    assert d1.memory_mib == 32768
    # without the setting such a GPU cannot be read, as before: listed, unhealthy
    d0 = sim("nvidia-2xv100-pcie").devices[0]
    assert not d0.healthy and d0.memory_mib == 0


@pytest.mark.parametrize("value", [-1, 1.5, True, "16000", 1 << 30])
def test_a_bad_preconfigured_memory_is_refused(value):
    with pytest.raises(InputError, match=r"^preconfigureddevicememory: .* must be an integer number of MiB"):
        parse_config({"nvidia": {"preconfigureddevicememory": value}})


# -- enableNumaTopology --------------------------------------------------------------------------------


def test_numa_reaches_the_kubelet_only_with_enable_numa_topology(hal, sim):
    for settings, want in (({}, False), ({"enableNumaTopology": False}, False), ({"enablenumatopology": True}, True)):
        inv = sim("nvidia-2xt4-pcie", {"nvidia": settings})
        assert [d.numa_node for d in inv.devices] == [0, 1]  # the register annotation keeps it either way
        assert {d.advertise_numa for d in inv.devices} == {want}
        fam = Family(hal.vendors()[0], hal.vendors()[0].resources[0], list(inv.devices))
        listed = DevicePluginService(fam, allocator=None).device_list().devices
        numa = {dev.ID.rsplit("-", 1)[0]: [n.ID for n in dev.topology.nodes] for dev in listed if dev.HasField("topology")}
        assert numa == ({inv.devices[0].uuid: [0], inv.devices[1].uuid: [1]} if want else {})
    with pytest.raises(InputError, match=r"^enableNumaTopology: 'yes' must be true or false$"):
        parse_config({"nvidia": {"enableNumaTopology": "yes"}})


# -- enableGetPreferredAllocation ---------------------------------------------------------------------------


def test_preferred_allocation_is_offered_unless_enable_get_preferred_allocation_is_false(hal, sim):
    for settings, want in (({}, True), ({"enableGetPreferredAllocation": True}, True),
                           ({"enablegetpreferredallocation": False}, False)):
        inv = sim("nvidia-2xt4-pcie", {"nvidia": settings})
        assert {d.preferred_allocation for d in inv.devices} == {want}
        fam = Family(hal.vendors()[0], hal.vendors()[0].resources[0], list(inv.devices))
        assert DevicePluginService(fam, allocator=None).GetDevicePluginOptions(None, None) \
            .get_preferred_allocation_available is want
    with pytest.raises(InputError, match=r"^enablegetpreferredallocation: 'false' must be true or false$"):
        parse_config({"nvidia": {"enablegetpreferredallocation": "false"}})


# -- filterdevices --------------------------------------------------------------------------------------


def test_filterdevices_by_index_and_uuid(sim):
    every = sim("nvidia-8xa100-nvlink").devices
    inv = sim("nvidia-8xa100-nvlink", {"nvidia": {"filterdevices": {"uuid": [every[2].uuid], "index": [0, 5]}}})
    assert [d.index for d in inv.devices] == [1, 3, 4, 6, 7]
    assert [d.index for d in sim("nvidia-8xa100-nvlink", {"nvidia": {"filterDevices": [every[7].uuid]}}).devices] \
        == list(range(7))  # the older form: a bare list of UUIDs


@pytest.mark.parametrize(("value", "named"), [
    ({"index": [-1]}, "filterdevices.index: -1 must be a GPU index 0..1023"),
    ({"index": ["0"]}, "filterdevices.index: '0' must be a GPU index"),
    ({"index": 0}, "filterdevices.index: 0 must be a list"),
    ({"uuid": [7]}, "filterdevices.uuid: 7 is not one of GPU UUIDs"),
    ({"name": ["x"]}, "filterdevices.name: ['x'] is not a key of filterDevices (uuid, index)"),
    ({1: [0]}, "filterdevices.1: [0] is not a key of filterDevices"),  # a number as key (was: KeyError '1')
    ("GPU-1", "filterdevices: 'GPU-1' must be {uuid: [...], index: [...]}"),
])
def test_a_bad_filter_is_refused(value, named):
    with pytest.raises(InputError) as err:
        parse_config({"nvidia": {"filterdevices": value}})
    assert str(err.value).startswith(named), str(err.value)


# -- settings accepted but applied elsewhere: a note, never silence -------------------------------------


def test_settings_applied_elsewhere_get_no_note():
    quiet = {"overwriteEnv": False, "runtimeClassName": "", "enableGetPreferredAllocation": True}
    assert check_config({"nvidia": quiet}) == []
    # overwriteEnv / runtimeClassName are the admission webhook's (hami-scheduler webhook --device-config), and
    # enableGetPreferredAllocation: false is applied (below): no note
    assert check_config({"nvidia": {"overwriteEnv": True, "runtimeClassName": "nvidia",
                                    "enablegetpreferredallocation": False}}) == []
    cfg = parse_config({"nvidia": {"overwriteEnv": True, "runtimeClassName": "nvidia"}})
    assert cfg.overwrite_env is True and cfg.runtime_class_name == "nvidia"
    with pytest.raises(InputError, match=r"^overwriteEnv: 'true' must be true or false$"):
        parse_config({"nvidia": {"overwriteEnv": "true"}})


def test_camel_case_wins_over_other_spellings_of_one_setting():
    """The node agent writes a node entry's HAMi key into the section under its camelCase name: that value must
    win over the file's lower-case or snake_case spelling of the same setting."""
    cfg = parse_config({"nvidia": {"operating_mode": "whole", "operatingmode": "mig", "operatingMode": "hami-core"}})
    assert cfg.operating_mode == "hami-core"
    assert parse_config({"nvidia": {"operating_mode": "whole", "operatingmode": "mig"}}).operating_mode == "mig"


def test_scheduler_keys_pass_at_hamis_values_and_are_noted_otherwise():
    hami = {"resourceCountName": "nvidia.com/gpu", "resourceMemoryName": "nvidia.com/gpumem",
            "resourceMemoryPercentageName": "nvidia.com/gpumem-percentage", "resourceCoreName": "nvidia.com/gpucores",
            "resourcePriorityName": "nvidia.com/priority", "memoryFactor": 1, "defaultMemory": 0, "defaultCores": 0,
            "defaultGPUNum": 1}
    assert check_config({"nvidia": hami}) == []
    notes = check_config({"nvidia": {**hami, "resourceCountName": "acme.com/gpu", "memoryFactor": 1024,
                                     "knownMigGeometries": [], "defaultMemory": 4096}})
    assert notes == ["nvidia: resourceCountName: 'acme.com/gpu' not applied: hami-hal's NVIDIA plugin uses "
                     "'nvidia.com/gpu' (HAMi's default)",
                     "nvidia: memoryFactor: 1024 not applied: hami-hal's NVIDIA plugin uses 1 (HAMi's default)",
                     "nvidia: knownMigGeometries not read: MIG profiles, sizes and placements come from NVML; "
                     "migProfileAllowlist (HAMi v2.10) selects among them"]
