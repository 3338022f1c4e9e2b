"""The allocation engine: HAMi's fit rules on every partition model."""

from __future__ import annotations

import pytest
from engine_fixtures import device, mig_like, pod, req, shares, slices_like, whole

from hami_hal.engine import NodeState
from hami_hal.errors import AllocationError
from hami_hal.models import DevicePolicy, FitReason, Link, LinkTier, PartitionKind, Topology


def node(*devs, **kw) -> NodeState:
    return NodeState("n1", devs, **kw)


def test_reference_pod_gets_two_distinct_gpus_with_22_gib_left():
    n = node(device(0, shares()), device(1, shares()))
    alloc = n.allocate(pod("gpu-pod", [req(2, 10240, 30)]))
    slices = alloc.slices()
    assert sorted(s.uuid for s in slices) == ["ACME-acme-0", "ACME-acme-1"]
    assert all((s.memory_mib, s.compute_percent) == (10240, 30) for s in slices)
    assert [32768 - u.used_memory_mib for u in n.usages()] == [22528, 22528]


def test_count_above_device_number_is_refused_with_reason():
    fit = node(device(0, shares())).fit_pod(pod("p", [req(2, 1024)]))
    assert not fit.ok and "NodeInsufficientDevice" in fit.reason


def test_memory_and_core_exhaustion_reasons():
    n = node(device(0, shares(8192)))
    n.allocate(pod("a", [req(1, 6000, 80)]))
    fit = n.fit_pod(pod("b", [req(1, 4000, 10)]))
    assert not fit.ok and "1/1 CardInsufficientMemory" in fit.reason
    fit = n.fit_pod(pod("c", [req(1, 1000, 30)]))
    assert [f.reason for f in fit.failures] == [FitReason.CARD_INSUFFICIENT_CORE]


def test_slots_are_a_hard_limit():
    n = node(device(0, shares(slots=2)))
    n.allocate(pod("a", [req(1, 10)]))
    n.allocate(pod("b", [req(1, 10)]))
    assert n.fit_pod(pod("c", [req(1, 10)])).failures[0].reason is FitReason.CARD_TIME_SLICING_EXHAUSTED


def test_full_compute_is_exclusive_and_blocks_zero_core_tenants():
    n = node(device(0, shares()))
    n.allocate(pod("a", [req(1, 1000, 0)]))
    assert n.fit_pod(pod("b", [req(1, 1000, 100)])).failures[0].reason is (
        FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT)
    m = node(device(0, shares()))
    m.allocate(pod("a", [req(1, 1000, 100)]))
    assert not m.fit_pod(pod("b", [req(1, 1000, 0)])).ok


def test_spread_and_binpack_choose_opposite_devices():
    n = node(device(0, shares()), device(1, shares()))
    n.allocate(pod("a", [req(1, 4096, 10)]))
    first = n.usage("ACME-acme-0").used_memory_mib > 0
    used, idle = ("ACME-acme-0", "ACME-acme-1") if first else ("ACME-acme-1", "ACME-acme-0")
    spread = n.fit_pod(pod("s", [req(1, 1024)])).allocation.slices()[0].uuid
    binpack = n.fit_pod(pod("b", [req(1, 1024, policy=DevicePolicy.BINPACK)])).allocation.slices()[0].uuid
    assert (spread, binpack) == (idle, used)


def test_mutex_takes_idle_devices_only():
    n = node(device(0, shares()))
    n.allocate(pod("a", [req(1, 100)]))
    assert not n.fit_pod(pod("b", [req(1, 100, policy=DevicePolicy.MUTEX)])).ok


def test_whole_device_is_exclusive():
    n = node(device(0, whole()))
    alloc = n.allocate(pod("a", [req(1, 100)]))
    assert alloc.slices()[0].memory_mib == 16384 and alloc.slices()[0].exclusive
    assert not n.fit_pod(pod("b", [req(1, 100)])).ok


def test_templates_round_up_to_smallest_fitting_and_use_free_placements():
    n = node(device(0, mig_like()))
    a = n.allocate(pod("a", [req(1, 15000)])).slices()[0]
    assert (a.template, a.memory_mib, a.placement.start) == ("2g.20gb", 19968, 0)
    b = n.allocate(pod("b", [req(1, 30000)])).slices()[0]
    assert (b.template, b.placement.start) == ("3g.40gb", 4)
    c = n.allocate(pod("c", [req(1, 100)])).slices()[0]
    assert c.template == "1g.10gb" and c.placement.start == 2
    assert n.fit_pod(pod("d", [req(1, 90000)])).failures[0].reason is FitReason.TEMPLATE_NOT_FIT


def test_template_placements_run_out():
    n = node(device(0, mig_like()))
    n.allocate(pod("a", [req(1, 40000)]))
    n.allocate(pod("b", [req(1, 40000)]))
    fit = n.fit_pod(pod("c", [req(1, 100)]))
    assert not fit.ok


def test_slices_keep_one_size_per_device():
    n = node(device(0, slices_like()))
    assert n.allocate(pod("a", [req(1, 20000)])).slices()[0].template == "24g"
    fit = n.fit_pod(pod("b", [req(1, 40000)]))
    assert fit.failures[0].reason is FitReason.TEMPLATE_NOT_FIT and "24g slices only" in fit.failures[0].detail


def test_selectors_health_and_cordon():
    n = NodeState("n", [device(0, shares(), model="Tesla V100"), device(1, shares(), model="A100"),
                        device(2, shares(), healthy=False)], cordoned=["ACME-acme-1"])
    assert n.fit_pod(pod("a", [req(1, 10, type_include=["v100"])])).allocation.slices()[0].uuid == "ACME-acme-0"
    assert not n.fit_pod(pod("b", [req(1, 10, type_include=["a100"])])).ok  # cordoned
    fit = n.fit_pod(pod("c", [req(1, 10, uuid_include=["ACME-acme-2"])]))
    assert FitReason.CARD_NOT_HEALTH in [f.reason for f in fit.failures]
    fit = n.fit_pod(pod("d", [req(1, 10, type_exclude=["V100"])]))
    assert not fit.ok


def test_numa_bind_keeps_devices_on_one_node():
    n = node(device(0, shares(), numa=0), device(1, shares(), numa=1), device(2, shares(), numa=1))
    got = n.fit_pod(pod("a", [req(2, 10, numa_bind=True)])).allocation.slices()
    assert sorted(s.uuid for s in got) == ["ACME-acme-1", "ACME-acme-2"]
    fit = n.fit_pod(pod("b", [req(3, 10, numa_bind=True)]))
    assert not fit.ok and "NumaNotFit" in fit.reason


def test_topology_aware_prefers_nvlink_pair_and_isolated_single():
    devs = [device(i, shares()) for i in range(4)]
    u = [d.uuid for d in devs]
    links = [Link(a=u[0], b=u[1], kind="sockets", tier=LinkTier.SOCKETS, score=10),
             Link(a=u[2], b=u[3], kind="fabric", tier=LinkTier.FABRIC, count=4, score=400)]
    links += [Link(a=u[a], b=u[b], kind="host", tier=LinkTier.HOST, score=30) for a, b in [(0, 2), (0, 3), (1, 2), (1, 3)]]
    n = NodeState("n", devs, Topology(links=links))
    pair = n.fit_pod(pod("a", [req(2, 10, policy=DevicePolicy.TOPOLOGY_AWARE)])).allocation.slices()
    assert sorted(s.uuid for s in pair) == [u[2], u[3]]
    single = n.fit_pod(pod("b", [req(1, 10, policy=DevicePolicy.TOPOLOGY_AWARE)])).allocation.slices()
    assert single[0].uuid in (u[0], u[1])


def test_pod_is_all_or_nothing():
    n = node(device(0, shares(8192)))
    fit = n.fit_pod(pod("p", [req(1, 6000)], [req(1, 6000)]))
    assert not fit.ok and "container c1" in fit.reason
    with pytest.raises(AllocationError):
        n.allocate(pod("p", [req(1, 6000)], [req(1, 6000)]))
    assert n.usage("ACME-acme-0").used_memory_mib == 0 and n.held() == []


def test_init_containers_collapse_to_their_peak():
    n = node(device(0, shares(32768)))
    alloc = n.allocate(pod("p", [req(1, 10000)], init=([req(1, 20000)],)))
    assert len(alloc.containers) == 2
    assert n.usage("ACME-acme-0").used_memory_mib == 20000 and n.usage("ACME-acme-0").used_slots == 1


def test_commit_rejects_forged_overcommit_and_release_is_exact():
    n = node(device(0, shares(8192)))
    a = n.allocate(pod("a", [req(1, 6000, 50)]))
    forged = a.model_copy(update={"name": "b"})
    with pytest.raises(AllocationError, match="over-commit"):
        n.commit(forged)
    with pytest.raises(AllocationError, match="already holds"):
        n.commit(a)
    n.release(a)
    assert n.usage("ACME-acme-0").model_dump() == n.empty_copy().usage("ACME-acme-0").model_dump()
    with pytest.raises(AllocationError, match="holds nothing"):
        n.release(a)


def test_veto_refuses_with_its_reason():
    from hami_hal.models import FitFailure

    def veto(dev, usage, request, proposed):
        if proposed.memory_mib > 4096:
            return FitFailure(reason=FitReason.CARD_INSUFFICIENT_MEMORY, uuid=dev.uuid, detail="driver cap")
        return None

    n = node(device(0, shares()))
    assert n.fit_pod(pod("a", [req(1, 1024)]), veto=veto).ok
    fit = n.fit_pod(pod("b", [req(1, 8192)]), veto=veto)
    assert fit.failures[0].detail == "driver cap"


def test_node_score_matches_hami_golden_values():
    n = node(device(0, shares(8000, slots=10)))
    assert n.score() == 0
    for i in range(5):
        n.allocate(pod(f"p{i}", [req(1, 800, 10)]))
    assert n.score() == pytest.approx(15.0)
    m = node(device(0, shares(8000, slots=10)), device(1, shares(8000, slots=10)))
    for i in range(5):
        m.allocate(pod(f"p{i}", [req(1, 800, 10, uuid_include=["ACME-acme-0"])]))
    assert m.score() == pytest.approx(7.5)


def test_count_rules_of_a_devices_templates():
    """PartitionModel.template_max_count / whole_count_multiple: the rules the node's templates set on a request's
    count, applied where the engine rounds (so each node with its own templates)."""
    part = slices_like().model_copy(update={"kind": PartitionKind.TEMPLATES, "template_max_count": 1,
                                            "whole_count_multiple": 2})
    n = node(*(device(i, part) for i in range(4)))
    fit = n.fit_pod(pod("a", [req(2, 20000)]))  # rounds to 24g: a template for one device only
    assert not fit.ok and {f.detail for f in fit.failures} == {
        "template 24g serves requests for at most 1 device(s), not 2"}
    assert n.fit_pod(pod("b", [req(1, 20000)])).ok
    assert {s.template for s in n.fit_pod(pod("c", [req(2, 90000)])).allocation.slices()} == {"96g"}
    fit = n.fit_pod(pod("d", [req(1, 90000)]))  # one whole device where they pair
    assert {f.detail for f in fit.failures} == {"whole devices here go in multiples of 2, not 1"}
    assert {f.reason for f in fit.failures} == {FitReason.TEMPLATE_NOT_FIT}
    # without the rules (every other model): any count
    plain = node(*(device(i, slices_like()) for i in range(2)))
    assert plain.fit_pod(pod("e", [req(2, 20000)])).ok and plain.fit_pod(pod("f", [req(1, 90000)])).ok
