"""The generic probe check: record what the plugin's workload probe measured, and never over-claim.

- no probe (None)            -> unverified
- probe raised               -> unverified, with the error as evidence
- supported, no measurements -> unverified (a claim is not evidence)
- supported, a figure misses its catalogue target -> partial (the catalogue's targets replace the
  plugin's own, so a plugin cannot pass by declaring a loose one)
- supported, a figure the catalogue judges is missing -> unverified
- supported on a simulated device -> unverified: only hardware proves isolation
"""

from __future__ import annotations

from collections.abc import Callable

from hami_hal.models import CapabilityResult, Level, ProbeResult

from ..targets import describe, meets_target
from .context import CheckContext


def probe_check(ctx: CheckContext, fallback: Callable[[], CapabilityResult] | None = None) -> CapabilityResult:
    """Judge the plugin's probe for the behaviour; ``fallback`` answers instead when the plugin has no probe
    for it (no hook, or the hook answered None), for behaviours with a weaker check of their own."""
    bid = ctx.behaviour.id
    dev = next((d for d in ctx.devices if d.healthy), None)
    if dev is None:
        return ctx.result(Level.UNVERIFIED, ["no healthy device to run the probe on"])
    if not ctx.implements("hami_hal_conformance_probe"):
        if fallback is not None:
            return fallback()
        return ctx.result(Level.UNVERIFIED, [f"plugin implements no hami_hal_conformance_probe; {bid} needs a "
                                             "workload on the device"])
    try:
        res = ctx.hal.probe(dev, bid)
    except Exception as err:
        return ctx.result(Level.UNVERIFIED, [f"probe raised {type(err).__name__}: {str(err)[:200]}"],
                          notes="the probe could not complete")
    if res is None:
        if fallback is not None:
            return fallback()
        return ctx.result(Level.UNVERIFIED, [f"plugin has no probe for {bid}"])
    if not isinstance(res, ProbeResult):
        return ctx.result(Level.UNVERIFIED, [f"probe returned {type(res).__name__}, not a ProbeResult"])
    if res.behaviour_id != bid:
        return ctx.result(Level.UNVERIFIED, [f"probe answered for {res.behaviour_id!r}, asked for {bid!r}"])
    level = res.level
    targets = ctx.behaviour.targets
    # The catalogue's target replaces the plugin's; a figure the catalogue does not judge keeps its own
    # target for the reader but decides nothing.
    measurements = [m.model_copy(update={"target": targets[m.name]}) if m.name in targets else m
                    for m in res.measurements]
    evidence = [f"probe on device {dev.index} ({dev.uuid}): " + (res.evidence[0] if res.evidence else "no text")]
    evidence += list(res.evidence[1:])
    evidence += [describe(m) for m in measurements]
    notes = res.notes
    judged = [m for m in measurements if m.name in targets] if targets else measurements
    missing = [name for name in targets if not any(m.name == name for m in measurements)]
    missed = [m for m in judged if meets_target(m) is False]
    if level in (Level.SUPPORTED, Level.PARTIAL) and not res.measurements:
        level = Level.UNVERIFIED
        notes = "probe claimed supported without any measurement"
    elif level in (Level.SUPPORTED, Level.PARTIAL) and missing:
        level = Level.UNVERIFIED
        notes = "probe did not report " + ", ".join(f"{n} (catalogue target {targets[n]})" for n in missing)
    elif level is Level.SUPPORTED and missed:
        level = Level.PARTIAL
        notes = "; ".join(f"{describe(m)} misses the catalogue target" for m in missed)
    if ctx.devices[0].provenance.simulated:
        if not any("simulat" in e.lower() for e in res.evidence):
            evidence.append("simulated device: the figures come from the profile, not from hardware")
        if level is Level.SUPPORTED:
            level = Level.UNVERIFIED
            notes = ("probe reported supported on a simulated device; isolation is only verified on real "
                     "hardware" + (f"; {notes}" if notes else ""))
    return ctx.result(level, evidence, measurements=measurements, notes=notes)
