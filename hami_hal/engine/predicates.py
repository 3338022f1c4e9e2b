"""The engine's usage checks as data: one ordered list of (reason, pass-predicate, detail) per step.

Each predicate reads a :class:`UsageView` whose fields may be Python ints (the engine judging one
device) or numpy arrays (the scheduler's prefilter judging every device of every node at once), so
the prefilter's masks are these very predicates, in the engine's order, and cannot drift from them.
Predicates combine with ``&``/``|`` and comparisons only, which both kinds of value support.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..models import FitReason, ResourceRequest

Value = Any  # int | bool | numpy.ndarray


@dataclass(slots=True)
class UsageView:
    """What the usage checks read, for one device (ints) or many (arrays of one shape)."""

    used_slots: Value
    max_slots: Value
    held_exclusive: Value  # a tenant holds the device exclusively
    mutex: Value  # the request's device policy is mutex
    free_mem: Value
    total_mem: Value
    need: Value  # MiB the request takes here (memory_need)
    free_core: Value
    total_core: Value
    used_core: Value
    cores: Value  # compute percent the request takes (≤ 100)
    full_exclusive: Value  # the partition's exclusive_full_compute flag


Check = tuple[FitReason, Callable[[UsageView], Value], Callable[[UsageView], str]]

#: Every device kind, first: a free slot, and no exclusive holder (or any tenant under mutex).
SLOT_CHECKS: tuple[Check, ...] = (
    (FitReason.CARD_TIME_SLICING_EXHAUSTED, lambda v: v.used_slots < v.max_slots,
     lambda v: f"{v.used_slots}/{v.max_slots} slots used"),
    (FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT,
     lambda v: (v.held_exclusive == 0) & ((v.mutex == 0) | (v.used_slots == 0)),
     lambda v: "device is held by another tenant"),
)

#: A whole-device request (or a whole-only device): idle, and big enough.
WHOLE_CHECKS: tuple[Check, ...] = (
    (FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT, lambda v: v.used_slots == 0,
     lambda v: "whole device requested but in use"),
    (FitReason.CARD_INSUFFICIENT_MEMORY, lambda v: v.need <= v.total_mem,
     lambda v: f"needs {v.need} MiB, device has {v.total_mem}"),
)

#: A share of a shares device (HAMi §6.6 steps 9-11).
SHARE_CHECKS: tuple[Check, ...] = (
    (FitReason.CARD_INSUFFICIENT_MEMORY, lambda v: v.free_mem >= v.need,
     lambda v: f"needs {v.need} MiB, {v.free_mem} free"),
    (FitReason.CARD_INSUFFICIENT_CORE, lambda v: v.free_core >= v.cores,
     lambda v: f"needs {v.cores}%, {v.free_core}% free"),
    (FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT,
     lambda v: (v.full_exclusive == 0) | (v.cores < 100) | (v.used_slots == 0),
     lambda v: "100% compute needs an idle device"),
    (FitReason.CARD_COMPUTE_UNITS_EXHAUSTED,
     lambda v: (v.cores > 0) | (v.total_core == 0) | (v.used_core < v.total_core),
     lambda v: "all compute is taken"),
)


def first_failure(checks: tuple[Check, ...], v: UsageView) -> tuple[FitReason, str] | None:
    """The first check a single device fails, with its detail; None when it passes them all."""
    for reason, passes, detail in checks:
        if not passes(v):
            return reason, detail(v)
    return None


def memory_need(req: ResourceRequest, total_mem: Value, granularity: Value) -> Value:
    """MiB ``req`` takes on a device offering ``total_mem``, rounded up to the device's granularity."""
    if req.takes_whole_devices:
        need = total_mem
    elif req.memory_mib:
        need = total_mem * 0 + req.memory_mib
    else:
        pct = 100 if req.memory_percent is None else req.memory_percent
        need = total_mem * pct // 100
    return -(-need // granularity) * granularity


def type_allowed(req: ResourceRequest, hami_type: str, model: str) -> bool:
    """HAMi ``use-*type``/``nouse-*type``: case-insensitive substrings of the type or the model."""
    values = (hami_type.lower(), model.lower())
    if req.type_include and not any(p.lower() in v for p in req.type_include for v in values):
        return False
    return not (req.type_exclude and any(p.lower() in v for p in req.type_exclude for v in values))
