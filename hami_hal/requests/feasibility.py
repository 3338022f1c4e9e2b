"""Refuse, with the field and value, a request that no device of this node could hold even when idle.

This is the "a request no device can ever satisfy" case of bad input: it is a mistake in the pod, not a
busy node, so it gets one line naming the field instead of a table of per-device fit failures.

Feasibility is the engine itself run on an empty copy of the node (health and cordons are ignored:
those change). Its checks are applied stage by stage only to name the field at fault: the selectors
(type, uuid, mode), the count, the memory, the compute, and finally the whole request through
``NodeState.fit_pod`` (device sets, templates, budgets). There is no second rule set here.
"""

from __future__ import annotations

from ..engine import NodeState
from ..engine.device_fit import fit_device, selectors_refuse
from ..engine.device_state import DeviceState
from ..errors import InputError
from ..models import ContainerRequest, Device, FitReason, PodAllocation, PodRequest, ResourceRequest
from .parser import ParsedPod, RequestFields

_MEMORY = {FitReason.CARD_INSUFFICIENT_MEMORY, FitReason.TEMPLATE_NOT_FIT}
_COMPUTE = {FitReason.CARD_INSUFFICIENT_CORE, FitReason.TEMPLATE_NOT_FIT, FitReason.CARD_COMPUTE_UNITS_EXHAUSTED}


def _idle(devices: list[Device]) -> list[DeviceState]:
    """Each device as the engine sees it when healthy and empty."""
    return [DeviceState.of(d.model_copy(update={"healthy": True})) for d in devices]


def _only(req: ResourceRequest, **fields) -> ResourceRequest:
    """``req`` with just the named selectors kept (and others cleared), to find which one refuses."""
    base = {"type_include": [], "type_exclude": [], "uuid_include": [], "uuid_exclude": [], "modes": []}
    return req.model_copy(update={**base, **fields})


def _check_one(req: ResourceRequest, flds: RequestFields, devices: list[Device]) -> PodAllocation:
    mine = _idle([d for d in devices if d.vendor == req.vendor])
    if not mine:
        raise InputError(flds.count, req.count, f"asks for {req.vendor} devices; this node has none")
    stages = [
        (_only(req, type_include=req.type_include, type_exclude=req.type_exclude), flds.type_selector,
         ",".join(req.type_include + req.type_exclude), "matches no device type", lambda d: d.hami_type),
        (_only(req, uuid_include=req.uuid_include, uuid_exclude=req.uuid_exclude), flds.uuid_selector,
         ",".join(req.uuid_include + req.uuid_exclude), "matches no device uuid", lambda d: d.uuid),
        (_only(req, modes=req.modes), flds.mode_selector, ",".join(req.modes), "matches no device mode",
         lambda d: d.mode),
    ]
    for sub, fld, value, why, shown in stages:
        kept = [st for st in mine if selectors_refuse(st, sub, frozenset()) is None]
        if not kept:
            seen = sorted({shown(st.device) for st in mine})
            raise InputError(fld or flds.count, value, f"{why} of {req.vendor} on this node ({', '.join(seen)})")
        mine = kept
    if len(mine) < req.count:
        raise InputError(flds.count, req.count,
                         f"asks for more distinct {req.vendor} devices than the {len(mine)} that match here")
    memory_only = req.model_copy(update={"compute_percent": 0})
    fits_mem = [st for st in mine if not _refused(fit_device(st, memory_only, frozenset()), _MEMORY)]
    if len(fits_mem) < req.count:
        largest = max(st.part.memory_mib for st in mine)
        fld = flds.memory or flds.memory_percent or flds.count
        value = req.memory_mib if flds.memory else (req.memory_percent if flds.memory_percent else req.count)
        raise InputError(fld, value, f"needs more memory per device than {req.count} {req.vendor} device(s) "
                                     f"here can ever give (largest: {largest} MiB)")
    fits = [st for st in fits_mem if not _refused(fit_device(st, req, frozenset()), _COMPUTE)]
    if len(fits) < req.count:
        fld = flds.cores or flds.count
        raise InputError(fld, req.compute_percent if flds.cores else req.count,
                         f"needs more compute per device than {req.count} {req.vendor} device(s) here offer")
    empty = NodeState("feasibility", [st.device for st in _idle(devices)])
    fit = empty.fit_pod(PodRequest(name="feasibility", containers=[
        ContainerRequest(name="probe", index=0, requests=[req])]))
    if not fit.ok:
        why = fit.reason.removeprefix("container probe: ")
        raise InputError(flds.count, req.count, f"can never fit on this node, even empty: {why}")
    assert fit.allocation is not None
    return fit.allocation


def _refused(got, reasons: set[FitReason]) -> bool:
    return isinstance(got, tuple) and got[0] in reasons


def check_satisfiable(parsed: ParsedPod, devices: list[Device]) -> list[PodAllocation]:
    """Raise InputError for the first request no device of ``devices`` could hold even when idle;
    otherwise return, per request, what the engine gives it on the empty node (the proof it can fit)."""
    return [_check_one(req, parsed.fields[(ctr.index, pos)], devices)
            for ctr in parsed.request.containers for pos, req in enumerate(ctr.requests)]
