"""GetPreferredAllocation without a waiting pod: must-include first, then the best-linked distinct devices; and
HAMi's ``enableGetPreferredAllocation`` (section or node entry): false registers the resource without preferred
allocation and answers the RPC UNIMPLEMENTED."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from node_agent_fixtures import NODE, make_agent

from hami_hal.errors import InputError
from hami_hal.models import Device, PartitionKind, PartitionModel, Provenance, ResourceFamily, VendorInfo
from hami_hal.node.deviceplugin.v1beta1 import api_pb2
from hami_hal.node.families import Family
from hami_hal.node.plugin_server import DevicePluginService, preferred
from hami_hal.node.plugin_settings import check_plugin_config, node_settings

FAMILY = ResourceFamily(common_word="V", count="v.example/dev")


def _dev(i: int) -> Device:
    return Device(vendor="v", index=i, uuid=f"D{i}", model="m", hami_type="m", memory_mib=1,
                  partition=PartitionModel(kind=PartitionKind.SHARES, memory_mib=1, max_slots=2),
                  provenance=Provenance(source="simulated"))


REPLICAS = {f"D{i}-{r}": _dev(i) for i in range(4) for r in range(2)}
SCORES = {("D0", "D3"): 100, ("D3", "D0"): 100, ("D0", "D1"): 10, ("D1", "D0"): 10}


def test_best_linked_device_after_must_include():
    got = preferred(REPLICAS, list(REPLICAS), ["D0-1"], 2, [], SCORES)
    assert got == ["D0-1", "D3-0"]


def test_scheduler_choice_wins_over_links():
    assert preferred(REPLICAS, list(REPLICAS), [], 2, ["D2", "D1"], SCORES) == ["D2-0", "D1-0"]


def test_distinct_devices_then_any_id_when_short():
    avail = ["D1-0", "D1-1", "D2-0"]
    assert preferred(REPLICAS, avail, [], 3, [], SCORES) == ["D1-0", "D2-0", "D1-1"]
    assert preferred(REPLICAS, avail, [], 0, [], SCORES) == []


# -- enableGetPreferredAllocation: the option and the RPC, through the fake kubelet -------------------------

RESOURCE = "nvidia.com/gpu"
NO_FLAGS = {"deviceSplitCount": None, "deviceMemoryScaling": None, "deviceCoreScaling": None}


def _settings(hal, folder: Path, text: str):
    """``hami node --device-config``'s settings for NODE from a device-config.yaml holding ``text``."""
    path = folder / "device-config.yaml"
    path.write_text(text)
    s = node_settings(path, NODE, NO_FLAGS, entry_keys={v.name: v.node_entry_keys for v in hal.vendors()})
    s.drop_sections_except({"nvidia"})
    return s


@pytest.mark.parametrize(("text", "want"), [
    ("nvidia: {}\n", True),  # HAMi's default
    ("nvidia: {enableGetPreferredAllocation: false}\n", False),
    ("nvidia: {}\nnodeconfig: [{name: node1, enablegetpreferredallocation: false}]\n", False),
    # the node's entry wins over the section, as every other routed key
    ("nvidia: {enableGetPreferredAllocation: false}\nnodeconfig: [{name: node1, enablegetpreferredallocation: true}]\n",
     True),
    ("nvidia: {}\nnodeconfig: [{name: node2, enablegetpreferredallocation: false}]\n", True),  # another node's
], ids=["default", "section-false", "entry-false", "entry-over-section", "other-node"])
def test_the_kubelet_is_told_and_answered_as_the_setting_says(hal, api, kubelet, short_tmp, text, want):
    s = _settings(hal, short_tmp, text)
    assert check_plugin_config(hal, s, "nvidia") == []  # honoured: no "not applied" note
    agent = make_agent(hal, api, short_tmp, vendor_configs={"nvidia": s.config_for("nvidia")})
    agent.start()
    try:
        for restart in (False, True):  # a new kubelet is told the same on re-registration
            if restart:
                before = len(kubelet.registrations)
                kubelet.restart()
                assert kubelet.wait(lambda k, n=before: len(k.registrations) > n)
            assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 20 and k.endpoints[RESOURCE].options)
            assert kubelet.registrations[-1].options.get_preferred_allocation_available is want
            assert kubelet.endpoints[RESOURCE].options.get_preferred_allocation_available is want
            ids = kubelet.healthy(RESOURCE)
            if want:
                got = kubelet.preferred(RESOURCE, ids, [], 2)
                assert len({i.rsplit("-", 1)[0] for i in got}) == 2  # two distinct GPUs
                continue
            with pytest.raises(grpc.RpcError) as info:  # a kubelet that calls it anyway
                kubelet.preferred(RESOURCE, ids, [], 2)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert RESOURCE in info.value.details() and "\n" not in info.value.details()
            again = kubelet.endpoints[RESOURCE].stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=5)
            assert again.get_preferred_allocation_available is False  # the server serves on, and says the same
    finally:
        agent.stop()


@pytest.mark.parametrize(("text", "named"), [
    ("nodeconfig: [{name: node1, enablegetpreferredallocation: 'false'}]\n",
     "device-config.yaml: nodeconfig[0] (node1) enablegetpreferredallocation: 'false' must be true or false"),
    ("nvidia: {enableGetPreferredAllocation: 0}\n",
     "device-config.yaml: nvidia.enableGetPreferredAllocation: 0 must be true or false"),
    ("nvidia: {enablegetpreferredallocation: [false]}\n",
     "device-config.yaml: nvidia.enablegetpreferredallocation: [False] must be true or false"),
])
def test_a_bad_value_is_one_line_naming_the_key_and_the_value(hal, short_tmp, text, named):
    with pytest.raises(InputError) as info:
        check_plugin_config(hal, _settings(hal, short_tmp, text), "nvidia")
    assert str(info.value) == named


def test_hami_node_stops_on_a_bad_value_with_one_line(api, short_tmp):
    path = short_tmp / "device-config.yaml"
    path.write_text("nodeconfig: [{name: node1, enablegetpreferredallocation: 'no'}]\n")
    res = subprocess.run([sys.executable, "-m", "hami_hal.cli", "node", "--once", "--node-name", NODE, "--backend",
                          "sim", "--api-server", api.url, "--plugin-dir", str(short_tmp / "dp"), "--device-config",
                          str(path)], env={**os.environ, "HAMI_HAL_PLUGINS": "nvidia"}, cwd=short_tmp,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if "enablegetpreferredallocation" in line]
    assert len(lines) == 1 and "'no' must be true or false" in lines[0], res.stderr
    assert not api.nodes[NODE]["metadata"]["annotations"]  # nothing written


def test_a_family_offers_it_only_when_every_device_does():
    """One plugin setting covers a vendor's devices; should a family mix them, the kubelet option (one per
    resource) is off: the setting asked for no preferred allocation on those devices."""
    devs = [_dev(0), _dev(1).model_copy(update={"preferred_allocation": False})]
    fam = Family(VendorInfo(name="v", display_name="V", resources=[FAMILY]), FAMILY, devs)
    assert not DevicePluginService(fam, allocator=None).GetDevicePluginOptions(None, None) \
        .get_preferred_allocation_available
    fam.devices = devs[:1]
    assert DevicePluginService(fam, allocator=None).GetDevicePluginOptions(None, None) \
        .get_preferred_allocation_available
