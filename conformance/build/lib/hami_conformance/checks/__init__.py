"""Checks: one function per behaviour ID, each turning a plugin + devices into one matrix cell.

A check receives a :class:`CheckContext` and returns a :class:`CapabilityResult` whose evidence says what
was done and what was seen. Behaviours that need a workload fall back to :func:`probe.probe_check`.
"""

from __future__ import annotations

from collections.abc import Callable

from hami_hal.models import CapabilityResult, Level

from ..catalogue import Behaviour
from .context import CheckContext

CheckFn = Callable[[CheckContext], CapabilityResult]
_REGISTRY: dict[str, CheckFn] = {}


def check(behaviour_id: str) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as the check of ``behaviour_id`` (one check per ID)."""

    def deco(fn: CheckFn) -> CheckFn:
        if behaviour_id in _REGISTRY:
            raise ValueError(f"check for {behaviour_id!r} registered twice")
        _REGISTRY[behaviour_id] = fn
        return fn

    return deco


def registry() -> dict[str, CheckFn]:
    """Every registered check, importing the area modules on first use."""
    from . import discovery, health, isolation, metrics, partition, topology  # noqa: F401

    return dict(_REGISTRY)


def check_for(behaviour: Behaviour) -> CheckFn | None:
    """The check of a behaviour; probe-only behaviours without their own check use the generic probe."""
    fn = registry().get(behaviour.id)
    if fn is None and behaviour.needs_probe:
        from .probe import probe_check

        return probe_check
    return fn


def run_check(ctx: CheckContext) -> tuple[CapabilityResult, bool]:
    """Run one behaviour's check; returns the cell and whether the check itself crashed."""
    fn = check_for(ctx.behaviour)
    if fn is None:
        return ctx.result(Level.UNVERIFIED, [], notes="this suite version has no check for this behaviour"), False
    try:
        cell = fn(ctx)
    except Exception as err:  # a plugin hook or the engine raised: that is a finding, not a crash of the run
        msg = str(err).splitlines()[0] if str(err) else ""
        return ctx.result(
            Level.UNSUPPORTED, [f"check raised {type(err).__name__}: {msg}"],
            notes="the check could not complete; the exception came from the plugin or the engine",
        ), True
    if cell.id != ctx.behaviour.id or cell.requirement != ctx.behaviour.requirement:
        cell = cell.model_copy(update={"id": ctx.behaviour.id, "requirement": ctx.behaviour.requirement})
    return cell, False


__all__ = ["CheckContext", "CheckFn", "check", "check_for", "registry", "run_check"]
