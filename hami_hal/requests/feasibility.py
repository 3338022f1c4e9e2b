"""Refuse, with the field and value, a request that no device of this node could hold even when idle.

This is the "a request no device can ever satisfy" case of bad input: it is a mistake in the pod, not a
busy node, so it gets one line naming the field instead of a table of per-device fit failures. Health
and cordons are not considered: those change; memory, compute, templates and selectors do not.
"""

from __future__ import annotations

from ..errors import InputError
from ..models import Device, PartitionKind, PartitionModel, ResourceRequest
from .parser import ParsedPod, RequestFields


def _partition(dev: Device) -> PartitionModel:
    return dev.partition or PartitionModel(kind=PartitionKind.WHOLE, memory_mib=dev.memory_mib)


def _type_ok(req: ResourceRequest, dev: Device) -> bool:
    names = f"{dev.hami_type} {dev.model}".lower()
    if req.type_include and not any(t.lower() in names for t in req.type_include):
        return False
    return not any(t.lower() in names for t in req.type_exclude)


def _uuid_ok(req: ResourceRequest, dev: Device) -> bool:
    if req.uuid_include and dev.uuid not in req.uuid_include:
        return False
    return dev.uuid not in req.uuid_exclude


def _memory_need(req: ResourceRequest, part: PartitionModel) -> int:
    need = req.memory_for(part.memory_mib)
    gran = part.memory_granularity_mib
    return -(-need // gran) * gran


def _memory_ok(req: ResourceRequest, dev: Device) -> bool:
    part = _partition(dev)
    need = _memory_need(req, part)
    if part.kind in (PartitionKind.TEMPLATES, PartitionKind.SLICES):
        return any(t.memory_mib >= need for t in part.templates) or (req.whole_device and need <= part.memory_mib)
    return need <= part.memory_mib


def _cores_ok(req: ResourceRequest, dev: Device) -> bool:
    part = _partition(dev)
    if part.kind in (PartitionKind.TEMPLATES, PartitionKind.SLICES):
        need = _memory_need(req, part)
        return any(t.memory_mib >= need and t.compute_percent >= req.compute_percent for t in part.templates)
    return req.compute_percent <= part.compute_percent


def _check_one(req: ResourceRequest, flds: RequestFields, devices: list[Device]) -> None:
    mine = [d for d in devices if d.vendor == req.vendor]
    if not mine:
        raise InputError(flds.count, req.count, f"asks for {req.vendor} devices; this node has none")
    stages = [
        (_type_ok, flds.type_selector, ",".join(req.type_include + req.type_exclude), "matches no device type"),
        (_uuid_ok, flds.uuid_selector, ",".join(req.uuid_include + req.uuid_exclude), "matches no device uuid"),
        (lambda r, d: not r.modes or d.mode in r.modes, flds.mode_selector, ",".join(req.modes),
         "matches no device mode"),
    ]
    for ok, fld, value, why in stages:
        kept = [d for d in mine if ok(req, d)]
        if not kept:
            seen = sorted({d.hami_type if "type" in why else d.mode if "mode" in why else d.uuid for d in mine})
            raise InputError(fld or flds.count, value, f"{why} of {req.vendor} on this node ({', '.join(seen)})")
        mine = kept
    if len(mine) < req.count:
        raise InputError(flds.count, req.count,
                         f"asks for more distinct {req.vendor} devices than the {len(mine)} that match here")
    fits_mem = [d for d in mine if _memory_ok(req, d)]
    if len(fits_mem) < req.count:
        largest = max(_partition(d).memory_mib for d in mine)
        fld = flds.memory or flds.memory_percent or flds.count
        value = req.memory_mib if flds.memory else (req.memory_percent if flds.memory_percent else req.count)
        raise InputError(fld, value, f"needs more memory per device than {req.count} {req.vendor} device(s) "
                                     f"here can ever give (largest: {largest} MiB)")
    fits = [d for d in fits_mem if _cores_ok(req, d)]
    if len(fits) < req.count:
        fld = flds.cores or flds.count
        raise InputError(fld, req.compute_percent if flds.cores else req.count,
                         f"needs more compute per device than {req.count} {req.vendor} device(s) here offer")


def check_satisfiable(parsed: ParsedPod, devices: list[Device]) -> None:
    """Raise InputError for the first request no device of ``devices`` could hold even when idle."""
    for ctr in parsed.request.containers:
        for pos, req in enumerate(ctr.requests):
            _check_one(req, parsed.fields[(ctr.index, pos)], devices)
