"""Does one request fit one device under its current usage? HAMi's check order (hami-compat.md §6.6)."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import AttributeMatch, DevicePolicy, FitReason, PartitionKind, Placement, ResourceRequest
from .device_state import Contribution, DeviceState


@dataclass(slots=True)
class Proposal:
    """A slice the engine would give: cheap to build, turned into a DeviceSlice only when chosen."""

    state: DeviceState
    memory_mib: int
    compute_percent: int
    template: str | None = None
    placement: Placement | None = None
    compute_units: int = 0
    exclusive: bool = False
    tags: tuple[tuple[str, str], ...] = ()

    def contribution(self) -> Contribution:
        return Contribution(
            slots=1,
            memory_mib=self.memory_mib,
            compute_percent=self.compute_percent,
            compute_units=self.compute_units,
            instances=[(self.template, self.placement)] if self.template else [],
            exclusive=self.exclusive,
            tags=list(self.tags),
        )


#: A refusal: (reason, uuid, detail). Tuples keep the hot path free of model construction.
Refusal = tuple[FitReason, str, str]


def _matches(patterns: list[str], *values: str) -> bool:
    return any(p.lower() in v.lower() for p in patterns for v in values)


def selectors_refuse(st: DeviceState, req: ResourceRequest, cordoned: frozenset[str]) -> Refusal | None:
    """Checks that do not depend on usage: health, cordon, type, mode, UUID."""
    dev = st.device
    if not dev.healthy:
        return (FitReason.CARD_NOT_HEALTH, dev.uuid, dev.health_reason or "device is unhealthy")
    if dev.uuid in cordoned:
        return (FitReason.CARD_CORDONED, dev.uuid, "device is cordoned")
    if req.type_include and not _matches(req.type_include, dev.hami_type, dev.model):
        return (FitReason.CARD_TYPE_MISMATCH, dev.uuid, f"type {dev.hami_type} not in {req.type_include}")
    if req.type_exclude and _matches(req.type_exclude, dev.hami_type, dev.model):
        return (FitReason.CARD_TYPE_MISMATCH, dev.uuid, f"type {dev.hami_type} excluded")
    if req.modes and dev.mode not in req.modes:
        return (FitReason.CARD_TYPE_MISMATCH, dev.uuid, f"mode {dev.mode} not in {req.modes}")
    if req.uuid_include and dev.uuid not in req.uuid_include:
        return (FitReason.CARD_UUID_MISMATCH, dev.uuid, "uuid not in use-uuid list")
    if dev.uuid in req.uuid_exclude:
        return (FitReason.CARD_UUID_MISMATCH, dev.uuid, "uuid in nouse-uuid list")
    for attr in req.attributes:
        if attr.match is AttributeMatch.DEVICE:
            have = dev.attributes.get(attr.attribute)
            if str(have) not in attr.values():
                return (FitReason(attr.reason), dev.uuid, f"{attr.attribute} {have} not in {attr.values()}")
        elif attr.match is AttributeMatch.TENANTS and st.used_slots > 0:
            other = next((v for a, v in st.tags if a == attr.attribute and v != attr.value), None)
            if other is not None:
                return (FitReason(attr.reason), dev.uuid,
                        f"device holds {attr.attribute}={other} tenants, request has {attr.value}")
    return None


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def fit_device(st: DeviceState, req: ResourceRequest, cordoned: frozenset[str]) -> Proposal | Refusal:
    """The slice ``req`` would get on ``st``, or why not."""
    refused = selectors_refuse(st, req, cordoned)
    if refused:
        return refused
    uuid, part = st.device.uuid, st.part
    if st.used_slots >= part.max_slots:
        return (FitReason.CARD_TIME_SLICING_EXHAUSTED, uuid, f"{st.used_slots}/{part.max_slots} slots used")
    if st.exclusive or (req.policy is DevicePolicy.MUTEX and st.used_slots > 0):
        return (FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT, uuid, "device is held by another tenant")
    cores = min(req.compute_percent, 100)
    need = _round_up(req.memory_for(part.memory_mib), part.memory_granularity_mib)

    if part.kind is PartitionKind.WHOLE or req.takes_whole_devices:
        if st.used_slots > 0:
            return (FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT, uuid, "whole device requested but in use")
        if need > part.memory_mib:
            return (FitReason.CARD_INSUFFICIENT_MEMORY, uuid, f"needs {need} MiB, device has {part.memory_mib}")
        return Proposal(st, part.memory_mib, part.compute_percent, exclusive=True, tags=_tags(req))

    if part.kind is PartitionKind.SHARES:
        if st.free_memory_mib < need:
            return (FitReason.CARD_INSUFFICIENT_MEMORY, uuid, f"needs {need} MiB, {st.free_memory_mib} free")
        if st.free_compute_percent < cores:
            return (FitReason.CARD_INSUFFICIENT_CORE, uuid, f"needs {cores}%, {st.free_compute_percent}% free")
        if part.exclusive_full_compute and cores >= 100 and st.used_slots > 0:
            return (FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT, uuid, "100% compute needs an idle device")
        if cores == 0 and part.compute_percent and st.used_compute_percent >= part.compute_percent:
            return (FitReason.CARD_COMPUTE_UNITS_EXHAUSTED, uuid, "all compute is taken")
        return Proposal(st, need, cores, exclusive=part.exclusive_full_compute and cores >= 100, tags=_tags(req))

    got = _fit_template(st, need, cores)
    if isinstance(got, Proposal):
        got.tags = _tags(req)
    return got


def _tags(req: ResourceRequest) -> tuple[tuple[str, str], ...]:
    """What a tenant leaves on the device for later tenants' ``tenants`` rules."""
    return tuple((a.attribute, a.value) for a in req.attributes if a.match is AttributeMatch.TENANTS)


def _fit_template(st: DeviceState, need: int, cores: int) -> Proposal | Refusal:
    """Templates / slices: round up to the smallest fitting template, then check its geometry."""
    uuid, part = st.device.uuid, st.part
    tpl = part.smallest_template(need, cores)
    if tpl is None:
        return (FitReason.TEMPLATE_NOT_FIT, uuid, f"no template holds {need} MiB / {cores}%")
    if part.kind is PartitionKind.SLICES and st.instances and st.instances[0][0] != tpl.name:
        return (FitReason.TEMPLATE_NOT_FIT, uuid, f"device holds {st.instances[0][0]} slices only")
    if tpl.max_instances is not None and sum(1 for n, _ in st.instances if n == tpl.name) >= tpl.max_instances:
        return (FitReason.TEMPLATE_NOT_FIT, uuid, f"{tpl.max_instances} instances of {tpl.name} already")
    if st.free_memory_mib < tpl.memory_mib:
        return (FitReason.CARD_INSUFFICIENT_MEMORY, uuid, f"{tpl.name} needs {tpl.memory_mib} MiB")
    if st.free_compute_percent < tpl.compute_percent:
        return (FitReason.CARD_INSUFFICIENT_CORE, uuid, f"{tpl.name} needs {tpl.compute_percent}%")
    units = tpl.compute_units or 0
    if part.compute_units is not None and st.used_compute_units + units > part.compute_units:
        return (FitReason.CARD_COMPUTE_UNITS_EXHAUSTED, uuid, f"{tpl.name} needs {units} compute units")
    placement = None
    if tpl.placements:
        taken = [p for _, p in st.instances if p is not None]
        placement = next((p for p in tpl.placements if not any(p.overlaps(t) for t in taken)), None)
        if placement is None:
            return (FitReason.CARD_MIG_TOPOLOGY_INFEASIBLE, uuid, f"no free placement for {tpl.name}")
    return Proposal(st, tpl.memory_mib, tpl.compute_percent, tpl.name, placement, units)
