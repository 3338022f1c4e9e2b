"""Does one request fit one device under its current usage? HAMi's check order (hami-compat.md §6.6)."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import AttributeMatch, DevicePolicy, FitReason, PartitionKind, Placement, ResourceRequest
from .device_state import Contribution, DeviceState
from .predicates import (
    SHARE_CHECKS,
    SLOT_CHECKS,
    WHOLE_CHECKS,
    UsageView,
    first_failure,
    memory_need,
    type_allowed,
)


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


def selectors_refuse(st: DeviceState, req: ResourceRequest, cordoned: frozenset[str]) -> Refusal | None:
    """Checks that do not depend on usage: health, cordon, type, mode, UUID."""
    dev = st.device
    if not dev.healthy:
        return (FitReason.CARD_NOT_HEALTH, dev.uuid, dev.health_reason or "device is unhealthy")
    if dev.uuid in cordoned:
        return (FitReason.CARD_CORDONED, dev.uuid, "device is cordoned")
    if dev.family is not None and dev.family != req.common_word:
        return (FitReason.CARD_TYPE_MISMATCH, dev.uuid, f"device serves {dev.family}, request is {req.common_word}")
    if (req.type_include or req.type_exclude) and not type_allowed(req, dev.hami_type, dev.model):
        return (FitReason.CARD_TYPE_MISMATCH, dev.uuid,
                f"type {dev.hami_type} not allowed (use {req.type_include}, nouse {req.type_exclude})")
    if req.modes and dev.mode not in req.modes:
        return (FitReason(req.mode_reason), dev.uuid, f"mode {dev.mode} not in {req.modes}")
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


def usage_view(st: DeviceState, req: ResourceRequest) -> UsageView:
    """The usage checks' view of one device for ``req``."""
    part = st.part
    return UsageView(
        used_slots=st.used_slots, max_slots=part.max_slots, held_exclusive=st.exclusive,
        mutex=req.policy is DevicePolicy.MUTEX, free_mem=st.free_memory_mib, total_mem=part.memory_mib,
        need=memory_need(req, part.memory_mib, part.memory_granularity_mib), free_core=st.free_compute_percent,
        total_core=part.compute_percent, used_core=st.used_compute_percent, cores=min(req.compute_percent, 100),
        full_exclusive=part.exclusive_full_compute,
    )


def fit_device(st: DeviceState, req: ResourceRequest, cordoned: frozenset[str]) -> Proposal | Refusal:
    """The slice ``req`` would get on ``st``, or why not."""
    refused = selectors_refuse(st, req, cordoned)
    if refused:
        return refused
    uuid, part = st.device.uuid, st.part
    v = usage_view(st, req)
    failed = first_failure(SLOT_CHECKS, v)
    if failed:
        return (failed[0], uuid, failed[1])
    if part.kind is PartitionKind.WHOLE or req.takes_whole_devices:
        failed = first_failure(WHOLE_CHECKS, v)
        if failed:
            return (failed[0], uuid, failed[1])
        why = part.count_refusal(None, req.count)
        if why:
            return (FitReason.TEMPLATE_NOT_FIT, uuid, why)
        # Compute is in percent of one device; a core-scaled device (200 %) is still held whole at 100.
        return Proposal(st, part.memory_mib, min(part.compute_percent, 100), exclusive=True, tags=_tags(req))

    if part.kind is PartitionKind.SHARES:
        failed = first_failure(SHARE_CHECKS, v)
        if failed:
            return (failed[0], uuid, failed[1])
        return Proposal(st, v.need, v.cores, exclusive=part.exclusive_full_compute and v.cores >= 100, tags=_tags(req))

    got = _fit_template(st, v.need, v.cores, req.count)
    if isinstance(got, Proposal):
        got.tags = _tags(req)
    return got


def _tags(req: ResourceRequest) -> tuple[tuple[str, str], ...]:
    """What a tenant leaves on the device for later tenants' ``tenants`` rules."""
    return tuple((a.attribute, a.value) for a in req.attributes if a.match is AttributeMatch.TENANTS)


def _fit_template(st: DeviceState, need: int, cores: int, count: int) -> Proposal | Refusal:
    """Templates / slices: round up to the smallest fitting template, then check its geometry and the count rules
    of this device's templates (``PartitionModel.count_refusal``)."""
    uuid, part = st.device.uuid, st.part
    tpl = part.smallest_template(need, cores)
    if tpl is None:
        return (FitReason.TEMPLATE_NOT_FIT, uuid, f"no template holds {need} MiB / {cores}%")
    why = part.count_refusal(tpl, count)
    if why:
        return (FitReason.TEMPLATE_NOT_FIT, uuid, why)
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
            return (FitReason.PLACEMENT_INFEASIBLE, uuid, f"no free placement for {tpl.name}")
    return Proposal(st, tpl.memory_mib, tpl.compute_percent, tpl.name, placement, units)
