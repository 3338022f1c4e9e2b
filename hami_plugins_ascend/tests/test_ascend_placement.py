"""Whole-card, soft and topology placements on simulated Ascend nodes; vNPU lifecycle and cleanup."""

from __future__ import annotations

import pytest

from hami_hal.engine import NodeState
from hami_plugins_ascend import ports, vnpu

SOFT = {"huawei.com/vnpu-mode": "hami-core"}


def test_soft_slicing_edits_and_quota(hal, sim, place, pod):
    inv = sim("ascend-8x910b3-vnpu-core")
    fit = place(inv, pod("s", {"huawei.com/Ascend910B3": "1", "huawei.com/Ascend910B3-memory": "8192",
                               "huawei.com/Ascend910B3-core": "30"}, SOFT))
    (ctr,) = fit.allocation.containers
    edits = hal.container_edits(ctr, inv.devices)
    assert edits.env["NPU_MEM_QUOTA"] == "8192" and edits.env["NPU_PRIORITY"] == "30"
    assert edits.env["NPU_GLOBAL_SHM_PATH"].startswith("/hami-shared-region/")
    assert "ASCEND_VNPU_SPECS" not in edits.env
    assert any(m.container_path == "/etc/ld.so.preload" for m in edits.mounts)
    assert any(n.path.startswith("/dev/davinci") for n in edits.device_nodes)


def test_soft_pod_on_template_node_is_mode_not_fit(sim, place, pod):
    fit = place(sim("ascend-8x910b3"), pod("s", {"huawei.com/Ascend910B3": "1"}, SOFT))
    assert not fit.ok and "ModeNotFit" in fit.reason


def test_template_pod_runs_on_soft_node_as_a_share(sim, place, pod):
    fit = place(sim("ascend-8x910b3-vnpu-core"), pod("t", {"huawei.com/Ascend910B3": "1",
                                                          "huawei.com/Ascend910B3-memory": "10000"}))
    # a soft node has no templates: the share is what the pod asks (the template rounding is a template node's, with
    # its own templates; HAMi's scheduler rounds to 16384 with its table first)
    assert fit.ok and fit.allocation.slices()[0].memory_mib == 10000 and fit.allocation.slices()[0].template is None
    fit = place(sim("ascend-8x910b3"), pod("t", {"huawei.com/Ascend910B3": "1", "huawei.com/Ascend910B3-memory": "10000"}))
    assert (fit.allocation.slices()[0].memory_mib, fit.allocation.slices()[0].template) == (16384, "vir05_1c_16g")


def test_four_whole_cards(sim, place, pod):
    fit = place(sim("ascend-8x910b3"), pod("t", {"huawei.com/Ascend910B3": "4"}))
    slices = fit.allocation.slices()
    assert len(slices) == 4 and {s.template for s in slices} == {"whole-card"}


def test_910c_two_dies_take_one_module(sim, place, pod):
    inv = sim("ascend-16x910c")
    state = NodeState.from_inventory(inv)
    by_uuid = {d.uuid: d for d in inv.devices}
    # a single vNPU occupies die 0, so a 2-die pod must take a whole other module, never die 1 alone
    first = place(inv, pod("a", {"huawei.com/Ascend910C": "1", "huawei.com/Ascend910C-memory": "16384"}), state)
    state.commit(first.allocation)
    fit = place(inv, pod("b", {"huawei.com/Ascend910C": "2"}), state)
    pair = sorted(by_uuid[s.uuid].index for s in fit.allocation.slices())
    assert pair[0] % 2 == 0 and pair[1] == pair[0] + 1
    assert by_uuid[first.allocation.slices()[0].uuid].index not in pair
    one = place(inv, pod("c", {"huawei.com/Ascend910C": "1"}), state)  # whole card: rounded up to a pair
    assert len(one.allocation.slices()) == 2


def test_vnpu_cleanup_destroys_only_idle(hal, sim):
    inv = sim("ascend-8x910b3")
    d = inv.devices[0]
    port = ports.port_for(hal.context("ascend"))
    fake = port.runner
    a = port.create_vnpu(0, 0, 0, "vir05_1c_16g")
    b = port.create_vnpu(0, 0, 0, "vir10_3c_32g")
    fake.set_in_use(0, b, True)
    assert vnpu.cleanup_idle(port, [d]) == [(d.uuid, a)]
    assert [v.vnpu_id for v in port.vnpus(0, 0)] == [b]


def test_vnpu_create_refused_by_the_tool_is_one_line(hal, sim):

    from hami_hal.errors import HalError
    from hami_hal.models import DeviceSlice

    d = sim("ascend-8x910b3").devices[0]
    s = DeviceSlice(vendor="ascend", uuid=d.uuid, device_index=0, common_word="Ascend910B3", memory_mib=32768,
                    compute_percent=50, template="vir10_3c_32g")
    hal.create_partition(d, s)
    hal.create_partition(d, s)
    with pytest.raises(HalError, match=r"cannot create vNPU vir10_3c_32g on NPU 0 chip 0: .*FAILED: resources"):
        hal.create_partition(d, s)


def test_vnpu_allocation_metrics(hal, sim):
    d = sim("ascend-8x910b3").devices[0]
    port = ports.port_for(hal.context("ascend"))
    port.create_vnpu(0, 0, 0, "vir10_3c_32g")
    (sample,) = hal.allocation_metrics(d)
    assert (sample.name, sample.value, sample.scope) == ("memory_limit", 32768 * 2**20, "allocation")
    assert sample.labels["template"] == "vir10_3c_32g"


def test_per_chip_uuid_filters(sim, place, pod):
    inv = sim("ascend-8x910b3")
    u = [d.uuid for d in inv.devices]
    limits = {"huawei.com/Ascend910B3": "1", "huawei.com/Ascend910B3-memory": "1000"}
    fit = place(inv, pod("in", limits, {"hami.io/use-Ascend910B3-uuid": f"{u[6]}"}))
    assert [s.uuid for s in fit.allocation.slices()] == [u[6]]
    fit = place(inv, pod("out", limits, {"hami.io/no-use-Ascend910B3-uuid": ",".join(u[:7])}))
    assert [s.uuid for s in fit.allocation.slices()] == [u[7]]

    from hami_hal.errors import InputError
    with pytest.raises(InputError, match="no-use-Ascend910B3-uuid"):
        place(inv, pod("both", limits, {"hami.io/use-Ascend910B3-uuid": u[0], "hami.io/no-use-Ascend910B3-uuid": u[0]}))


def test_four_cards_stay_in_one_hccs_group_when_they_can(sim, place, pod):
    inv = sim("ascend-8x910b3")
    state = NodeState.from_inventory(inv)
    state.commit(place(inv, pod("one", {"huawei.com/Ascend910B3": "1"}), state).allocation)
    fit = place(inv, pod("four", {"huawei.com/Ascend910B3": "4"}), state)
    groups = {inv.device(s.uuid).attributes["hccs_group"] for s in fit.allocation.slices()}
    assert groups == {1}



def test_four_cards_cross_groups_when_no_group_can_hold_them(sim, place, pod):
    inv = sim("ascend-8x910b3")
    state = NodeState.from_inventory(inv)
    for i in (0, 4):  # one card taken in each HCCS group: 3 + 3 free
        one = pod(f"one{i}", {"huawei.com/Ascend910B3": "1"}, {"hami.io/use-Ascend910B3-uuid": inv.devices[i].uuid})
        state.commit(place(inv, one, state).allocation)
    fit = place(inv, pod("four", {"huawei.com/Ascend910B3": "4"}), state)
    assert fit.ok  # HAMi's HCCS rule is a preference, not a limit
    assert {inv.device(s.uuid).attributes["hccs_group"] for s in fit.allocation.slices()} == {0, 1}


def test_six_cards_are_valid(sim, place, pod):
    fit = place(sim("ascend-8x910b3"), pod("six", {"huawei.com/Ascend910B3": "6"}))
    assert fit.ok and len(fit.allocation.slices()) == 6


def test_allocate_keeps_each_ascend_chip_its_own_type(sim, place, pod):
    """Device.family keeps each chip its own type: a 910B4 request never takes a 910B4-1 (a type-substring)."""
    fit = place(sim("ascend-8x910b4-1"), pod("b4", {"huawei.com/Ascend910B4": "1"}))
    assert not fit.ok and "CardTypeMismatch" in fit.reason
