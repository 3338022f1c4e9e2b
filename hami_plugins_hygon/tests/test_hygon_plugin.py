"""The Hygon plugin on simulated nodes: discovery, vDCU shares with both resource-name sets, whole cards,
vDCU lifecycle and cleanup, edits, topology, health and metrics."""

from __future__ import annotations

import pytest

from hami_hal.engine import NodeState
from hami_hal.hami_compat import allocation_annotations
from hami_hal.models import ContainerAllocation, DeviceSlice, PartitionKind
from hami_hal.testing import plugin_problems
from hami_plugins_hygon import plugin, ports, vdcu


def test_plugin_is_sound():
    assert plugin_problems(plugin) == []


def test_every_listed_model_is_discovered_with_its_compute_units(sim):
    got = {}
    for node in ("hygon-2xz100", "hygon-4xz100l", "hygon-4xk100", "hygon-8xk100-ai", "hygon-8xk100-lc-ai",
                 "hygon-8xk100-lc-e-ai"):
        d = sim(node).devices[0]
        got[d.model] = d.compute_units
        assert d.partition.kind is PartitionKind.SHARES and d.partition.max_slots == 4
    assert got == {"Z100": 60, "Z100L": 60, "K100": 120, "K100_AI": 120, "K100_LC_AI": 120, "K100_LC_E_AI": 128}


@pytest.mark.parametrize("prefix, word", [("hcu", "HCU"), ("dcu", "DCU")])
def test_both_resource_sets_place_a_share(hal, sim, place, pod, prefix, word):
    inv = sim("hygon-4xz100l")
    fit = place(inv, pod("p", {f"hygon.com/{prefix}num": "1", f"hygon.com/{prefix}mem": "8192",
                               f"hygon.com/{prefix}cores": "25"}))
    (s,) = fit.allocation.slices()
    assert (s.common_word, s.memory_mib, s.compute_percent, s.exclusive) == (word, 8192, 25, False)
    anns = allocation_annotations(fit.allocation, inv.vendors, 1)
    assert anns[f"hami.io/{word.lower()}-devices-allocated"].startswith(f"{s.uuid},{word},8192,25:")


def test_bare_count_takes_whole_cards_and_split_limit(sim, place, pod):
    inv = sim("hygon-4xz100l")
    fit = place(inv, pod("w", {"hygon.com/hcunum": "2"}))
    assert [s.exclusive for s in fit.allocation.slices()] == [True, True]
    one = inv.model_copy(update={"devices": inv.devices[:1]})
    state = NodeState.from_inventory(one)
    for i in range(4):
        f = place(one, pod(f"s{i}", {"hygon.com/hcunum": "1", "hygon.com/hcumem": "1024", "hygon.com/hcucores": "10"}),
                  state)
        state.commit(f.allocation)
    fifth = place(one, pod("s4", {"hygon.com/hcunum": "1", "hygon.com/hcumem": "1024", "hygon.com/hcucores": "10"}),
                  state)
    assert not fifth.ok and "CardTimeSlicingExhausted" in fifth.reason


def test_two_dcus_with_memory_take_whole_cards(sim, place, pod):
    fit = place(sim("hygon-4xz100l"), pod("m", {"hygon.com/dcunum": "2", "hygon.com/dcumem": "4096"}))
    assert all(s.exclusive for s in fit.allocation.slices())


def test_cores_over_100_are_clamped_as_hami_does(sim, place, pod):
    fit = place(sim("hygon-4xz100l"), pod("x", {"hygon.com/hcunum": "1", "hygon.com/hcucores": "130"}))
    (s,) = fit.allocation.slices()
    assert (s.compute_percent, s.exclusive) == (100, True)


def test_vdcu_compute_units_rule():
    assert vdcu.vdcu_compute_units(25, 60) == 15 and vdcu.vdcu_compute_units(1, 60) == 1
    assert vdcu.vdcu_compute_units(33, 128) == 43 and vdcu.legacy_compute_units(33, 128) == 42
    assert vdcu.vdcu_compute_units(0, 120) == 1


def _slice(d, mem, cores):
    return DeviceSlice(vendor="hygon", uuid=d.uuid, device_index=d.index, common_word="HCU", memory_mib=mem,
                       compute_percent=cores)


def test_create_destroy_and_whole_card(hal, sim):
    d = sim("hygon-8xk100-ai").devices[3]
    h = hal.create_partition(d, _slice(d, 16384, 25))
    assert h == {"vdevice": 0, "device": 3, "compute_units": 30, "memory_mib": 16384}
    port = ports.port_for(hal.context("hygon"))
    assert [(v.actual_device, v.compute_units, v.memory_bytes) for v in port.vdevices()] == [(3, 30, 16384 << 20)]
    assert hal.destroy_partition(d, h) is True and port.vdevices() == []
    assert hal.create_partition(d, _slice(d, d.memory_mib, 100)) == {"vdevice": None, "device": 3}


def test_create_beyond_free_compute_units_is_one_line(hal, sim):
    from hami_hal.errors import HalError

    d = sim("hygon-2xz100").devices[0]
    hal.create_partition(d, _slice(d, 1024, 90))
    with pytest.raises(HalError, match=r"cannot create a vDCU \(12 CUs, 1024 MiB\) on DCU 0: .*not enough free"):
        hal.create_partition(d, _slice(d, 1024, 20))


def test_cleanup_destroys_vdcus_of_vanished_pods(hal, sim, tmp_path):
    d = sim("hygon-4xz100l").devices[1]
    port = ports.port_for(hal.context("hygon"))
    a = hal.create_partition(d, _slice(d, 2048, 10))["vdevice"]
    b = hal.create_partition(d, _slice(d, 2048, 10))["vdevice"]
    vdcu.record(tmp_path, "pod-alive", "main", 1, a)
    vdcu.record(tmp_path, "pod-gone", "main", 1, b)
    (tmp_path / "README").write_text("not a mark")
    assert vdcu.cleanup(port, tmp_path, {"pod-alive"}) == [b]
    assert [v.index for v in port.vdevices()] == [a]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README", f"pod-alive_main_1_{a}"]
    with pytest.raises(Exception, match="pod uid"):
        vdcu.record(tmp_path, "../etc", "main", 1, 0)


def test_container_edits(hal, sim):
    inv = sim("hygon-8xk100-ai")
    d0, d5 = inv.devices[0], inv.devices[5]
    s = _slice(d5, 8192, 25).model_copy(update={"attributes": {"vdevice": "7"}})
    edits = hal.container_edits(ContainerAllocation(name="c", index=0, slices=[s]), inv.devices)
    assert edits.env == {"HIP_VISIBLE_DEVICES": "0"}
    paths = [n.path for n in edits.device_nodes]
    assert paths == ["/dev/kfd", "/dev/mkfd", "/dev/dri/card5", "/dev/dri/renderD133"]
    assert any(m.container_path == "/etc/vdev/docker/vdev7.conf" for m in edits.mounts)
    two = hal.container_edits(ContainerAllocation(name="c", index=0, slices=[_slice(d0, 65536, 100),
                                                                               _slice(d5, 65536, 100)]), inv.devices)
    assert two.env["HIP_VISIBLE_DEVICES"] == "0,1"


def test_topology_from_hy_smi_links(sim):
    inv = sim("hygon-8xk100-ai")
    u = [d.uuid for d in inv.devices]
    assert inv.topology.link(u[0], u[3]).kind == "xgmi"
    assert inv.topology.link(u[0], u[4]).tier.value == "sockets"
    z = sim("hygon-4xz100l")
    zu = [d.uuid for d in z.devices]
    assert z.topology.link(zu[0], zu[1]).tier.value == "host"


def test_health_and_metrics(hal, sim):
    inv = sim("hygon-4xz100l-lost")
    assert [d.healthy for d in inv.devices] == [True, True, False, True]
    got = {m.name: m.value for m in hal.device_metrics(inv.devices[0])}
    assert got["memory_total"] == 32768 * 2**20 and got["temperature"] == 41 and got["power"] == 63
    d = inv.devices[0]
    hal.create_partition(d, _slice(d, 4096, 50))
    (mem, cus) = hal.allocation_metrics(d)
    assert (mem.value, cus.value, mem.scope) == (4096 * 2**20, 30, "allocation")


def test_bad_user_profile_is_one_line(tmp_path, monkeypatch):
    from hami_hal.errors import HalError
    from hami_hal.manager import Hal

    prof = tmp_path / "bad.yaml"
    prof.write_text("""apiVersion: hami-hal.io/v1alpha1
kind: DeviceProfile
metadata: {name: bad-z100}
spec: {vendor: hygon, model: "Z100", memory_mib: 32768, compute_units: 60, vendor_data: {series: "Z100: x"}}
---
apiVersion: hami-hal.io/v1alpha1
kind: NodeProfile
metadata: {name: bad-node}
spec: {devices: [{profile: bad-z100, count: 1}]}
""")
    monkeypatch.setenv("HAMI_HAL_PROFILE_PATH", str(prof))
    hal = Hal(entrypoints=False, modules=["hami_plugins_hygon.plugin"])
    with pytest.raises(HalError, match=r"^device profile 'bad-z100': vendor_data.series 'Z100: x' must be"):
        hal.discover("sim", sim_node="bad-node", node_name="n")


def test_zero_core_share_cannot_join_a_card_whose_compute_is_taken(sim, place, pod):
    """HAMi's Hygon rule: ``dcucores: 0`` cannot go onto a full card."""
    inv = sim("hygon-2xz100")
    one = inv.model_copy(update={"devices": inv.devices[:1]})
    state = NodeState.from_inventory(one)
    for name, cores in (("a", "60"), ("b", "40")):
        state.commit(place(one, pod(name, {"hygon.com/dcunum": "1", "hygon.com/dcumem": "1024",
                                           "hygon.com/dcucores": cores}), state).allocation)
    fit = place(one, pod("z", {"hygon.com/dcunum": "1", "hygon.com/dcumem": "1024", "hygon.com/dcucores": "0"}),
                state)
    assert not fit.ok and "CardComputeUnitsExhausted" in fit.reason
