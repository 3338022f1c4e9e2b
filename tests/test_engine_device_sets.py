"""Vendor multi-device rules and pod-annotation rules as data the engine reads (no vendor code)."""

from __future__ import annotations

from hami_hal.engine import NodeState
from hami_hal.models import (
    AttributeMatch,
    ContainerRequest,
    Device,
    DeviceSetRules,
    PartitionKind,
    PartitionModel,
    PodRequest,
    Provenance,
    RequestAttribute,
    ResourceRequest,
)


def _devices(n: int, **attrs) -> list[Device]:
    return [Device(vendor="v", index=i, uuid=f"D{i}", model="M", hami_type="M", memory_mib=1000,
                   partition=PartitionModel(kind=PartitionKind.SHARES, memory_mib=1000, max_slots=4),
                   attributes=dict(attrs), provenance=Provenance(source="simulated", profile="t"))
            for i in range(n)]


def _pod(count: int, rules: DeviceSetRules | None = None, mem: int = 100, attrs=(), name: str = "p") -> PodRequest:
    req = ResourceRequest(vendor="v", common_word="V", count=count, memory_mib=mem, device_sets=rules,
                          attributes=list(attrs))
    return PodRequest(name=name, containers=[ContainerRequest(name="c", index=0, requests=[req])])


def _uuids(fit) -> list[str]:
    return sorted(s.uuid for s in fit.allocation.slices())


HCCS = DeviceSetRules(groups=[[0, 1, 2, 3], [4, 5, 6, 7]])


def test_group_keeps_a_request_inside_one_ring():
    node = NodeState("n", _devices(8))
    node.allocate(_pod(1, mem=1000, name="a"))  # D0 full
    node.allocate(_pod(1, mem=1000, name="b"))  # spread: D1 full
    fit = node.fit_pod(_pod(3, HCCS, mem=1000))
    assert fit.ok and _uuids(fit) == ["D4", "D5", "D6"]
    assert node.fit_pod(_pod(8, HCCS, mem=1000)).ok is False  # 8 = both rings whole; ring 0 is busy
    empty = NodeState("n", _devices(8))
    assert _uuids(empty.fit_pod(_pod(8, HCCS))) == [f"D{i}" for i in range(8)]


def test_bundles_are_taken_whole_and_max_and_counts_refuse():
    pairs = DeviceSetRules(bundles=[[0, 1], [2, 3]], allowed_counts=[2, 4], max_devices=4)
    node = NodeState("n", _devices(4))
    node.allocate(_pod(1, mem=1000, name="a"))  # D0 full: bundle [0,1] unusable
    fit = node.fit_pod(_pod(2, pairs, mem=1000))
    assert fit.ok and _uuids(fit) == ["D2", "D3"]
    bad = node.fit_pod(_pod(4, pairs, mem=1000))
    assert not bad.ok and "form none" in bad.reason
    odd = NodeState("n", _devices(4)).fit_pod(_pod(3, pairs))
    assert not odd.ok and "allows 2, 4" in odd.reason
    many = NodeState("n", _devices(8)).fit_pod(_pod(6, DeviceSetRules(max_devices=4)))
    assert not many.ok and "at most 4 per container" in many.reason


def test_allowed_sets_by_count():
    rules = DeviceSetRules(allowed_sets={2: [[0, 1], [2, 3]], 4: [[0, 1, 2, 3]]})
    node = NodeState("n", _devices(4))
    node.allocate(_pod(1, mem=1000, name="a"))
    assert _uuids(node.fit_pod(_pod(2, rules, mem=1000))) == ["D2", "D3"]
    assert not node.fit_pod(_pod(4, rules, mem=1000)).ok
    assert node.fit_pod(_pod(1, rules, mem=1000)).ok  # counts not listed: any device


def test_whole_device_above_count():
    rules = DeviceSetRules(whole_device_above=1)
    fit = NodeState("n", _devices(2)).fit_pod(_pod(2, rules, mem=10))
    assert all(s.exclusive and s.memory_mib == 1000 for s in fit.allocation.slices())
    one = NodeState("n", _devices(2)).fit_pod(_pod(1, rules, mem=10))
    assert [s.memory_mib for s in one.allocation.slices()] == [10]


def test_device_attribute_rule_and_tenant_rule():
    soft = _devices(2, split_mode="soft")
    mode = RequestAttribute(attribute="split_mode", value="hard", match=AttributeMatch.DEVICE, reason="ModeNotFit")
    fit = NodeState("n", soft).fit_pod(_pod(1, attrs=[mode]))
    assert not fit.ok and "2/2 ModeNotFit" in fit.reason
    node = NodeState("n", _devices(1))
    qos = lambda v: RequestAttribute(attribute="qos", value=v, match=AttributeMatch.TENANTS)  # noqa: E731
    first = node.allocate(_pod(1, attrs=[qos("fixed-share")], name="a"))
    assert node.fit_pod(_pod(1, attrs=[qos("fixed-share")], name="b")).ok
    other = node.fit_pod(_pod(1, attrs=[qos("best-effort")], name="c"))
    assert not other.ok and "qos=fixed-share" in other.failures[0].detail
    node.release(first)
    assert node.fit_pod(_pod(1, attrs=[qos("best-effort")], name="c")).ok  # tags leave with the tenant


def _sliced(n: int, budget: int) -> list[Device]:
    from hami_hal.models import NodeBudget, PartitionTemplate

    part = PartitionModel(kind=PartitionKind.SLICES, memory_mib=98304, max_slots=4,
                          node_budget=NodeBudget(name="handles", limit=budget), templates=[
                              PartitionTemplate(name="quarter", memory_mib=24576, compute_percent=25, node_cost=4),
                              PartitionTemplate(name="half", memory_mib=49152, compute_percent=50, node_cost=2)])
    return [Device(vendor="v", index=i, uuid=f"D{i}", model="M", hami_type="M", memory_mib=98304, partition=part,
                   provenance=Provenance(source="simulated", profile="t")) for i in range(n)]


def test_node_budget_counts_each_template_once_per_device():
    """Kunlun's 24 spare driver handles: 6 cards in quarters fit, 8 do not, 8 in halves do."""
    assert NodeState("n", _sliced(8, 24)).fit_pod(_pod(6, mem=24576)).ok
    eight = NodeState("n", _sliced(8, 24)).fit_pod(_pod(8, mem=24576))
    assert not eight.ok and "NodeInsufficientDevice: handles: 32 of 24 would be used" in eight.reason
    assert NodeState("n", _sliced(8, 24)).fit_pod(_pod(8, mem=49152)).ok
    node = NodeState("n", _sliced(8, 24))
    node.allocate(_pod(6, mem=24576, name="a"))
    assert node.fit_pod(_pod(6, mem=24576, name="b")).ok  # same cards again: no new handles
    assert not node.fit_pod(_pod(8, mem=49152, name="c")).ok  # 24 used + 2 halves on free cards


def test_least_fragmentation_keeps_whole_groups_free():
    rules = DeviceSetRules(allowed_counts=[1, 2, 4, 8], groups=[[0, 1, 2, 3], [4, 5, 6, 7]],
                           allowed_sets={2: [[0, 1], [2, 3], [4, 5], [6, 7]]}, prefer="least-fragmentation")
    from hami_hal.models import DevicePolicy

    def binpack(pod: PodRequest) -> PodRequest:
        pod.containers[0].requests[0].policy = DevicePolicy.BINPACK
        return pod

    node = NodeState("n", _devices(8))
    node.allocate(_pod(1, mem=1000, name="a"))  # D0 full
    node.allocate(_pod(1, mem=1000, name="b"))  # spread: D1 full
    node.allocate(_pod(1, mem=100, name="c"))  # spread: D2 lightly used
    node.allocate(_pod(1, mem=100, name="d"))  # spread: D3 lightly used
    plain = node.fit_pod(_pod(1, rules.model_copy(update={"prefer": "policy"}), mem=100))
    assert _uuids(plain) == ["D4"]  # spread alone: an idle device, breaking group 1
    one = node.fit_pod(_pod(1, rules, mem=100))
    assert _uuids(one) == ["D2"]  # 2 tasks fill the free devices afterwards ({3} + group 1), not 3
    two = node.fit_pod(_pod(2, rules, mem=1000))
    assert _uuids(two) == ["D4", "D5"]  # {2,3} are used, so only group 1's pairs are allowed


def test_mode_mismatch_reason_is_the_vendors():
    devs = [d.model_copy(update={"mode": "templates"}) for d in _devices(1)]
    pod = _pod(1)
    pod.containers[0].requests[0].modes = ["hami-core"]
    assert "1/1 CardTypeMismatch" in NodeState("n", devs).fit_pod(pod).reason  # HAMi's default
    pod.containers[0].requests[0].mode_reason = "ModeNotFit"
    assert "1/1 ModeNotFit" in NodeState("n", devs).fit_pod(pod).reason  # Ascend's


def test_a_request_never_lands_on_another_family_of_the_same_vendor():
    """One family per chip (e.g. two chip generations of one vendor): Device.family keeps them apart."""
    devs = [d.model_copy(update={"family": fam}) for d, fam in zip(_devices(3), ["CHIP-A", "CHIP-B", None], strict=True)]
    req = ResourceRequest(vendor="v", common_word="CHIP-B", count=2, memory_mib=10)
    fit = NodeState("n", devs).fit_pod(PodRequest(name="p", containers=[ContainerRequest(name="c", index=0,
                                                                                          requests=[req])]))
    assert sorted(s.uuid for s in fit.allocation.slices()) == ["D1", "D2"]  # never D0 (CHIP-A)
    three = req.model_copy(update={"count": 3})
    bad = NodeState("n", devs).fit_pod(PodRequest(name="q", containers=[ContainerRequest(name="c", index=0,
                                                                                          requests=[three])]))
    assert not bad.ok and "1/3 CardTypeMismatch" in bad.reason


def test_rule_reasons_must_be_fit_reasons():
    """A plugin's typo in a reason code fails when its VendorInfo is built, not at fit time."""
    import pytest
    from pydantic import ValidationError

    from hami_hal.models import PodAnnotationRule, SelectorAnnotations

    with pytest.raises(ValidationError):
        PodAnnotationRule(key="k.example/mode", attribute="mode", reason="ModeNotFitt")
    with pytest.raises(ValidationError):
        SelectorAnnotations(mode="k.example/mode", mode_reason="Nope")
    assert PodAnnotationRule(key="k", attribute="a", reason="ModeNotFit").reason.value == "ModeNotFit"
