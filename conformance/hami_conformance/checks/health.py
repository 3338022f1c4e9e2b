"""Checks of the health hook: status per device, and faulty devices never allocated.

Faults are injected through a simulated node profile, i.e. through the plugin's fake SDK, which runs the
same code as on hardware. If the plugin ships a node profile with ``faults`` for its devices, that one is
used; otherwise the suite adds a ``lost`` fault to a copy of one of the plugin's node profiles.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from hami_hal.models import CapabilityResult, FitReason, InjectedFault, Level
from hami_hal.simulation import ProfileCatalog

from . import check
from .context import CheckContext

#: Fault the suite injects when the plugin ships no faulty node profile (see hami_hal.simulation).
DEFAULT_FAULT = "lost"


@check("health/reported")
def reported(ctx: CheckContext) -> CapabilityResult:
    if not ctx.implements("hami_hal_device_health"):
        return ctx.result(Level.UNSUPPORTED, ["plugin implements no hami_hal_device_health"])
    problems, unhealthy = [], []
    for d in ctx.devices:
        hs = ctx.hal.health(d)
        if hs is None:
            problems.append(f"device {d.index}: no health status")
        elif hs.uuid != d.uuid:
            problems.append(f"device {d.index}: health status names {hs.uuid}")
        elif not hs.healthy:
            unhealthy.append(d.index)
            if not hs.reason:
                problems.append(f"device {d.index}: unhealthy without a reason")
    if problems:
        return ctx.result(Level.UNSUPPORTED, problems[:6])
    return ctx.result(Level.SUPPORTED, [f"health status for all {len(ctx.devices)} device(s), "
                                        f"{len(unhealthy)} unhealthy with a reason"])


def _vendor_faults(cat: ProfileCatalog, vendor: str) -> str | None:
    """A shipped node profile that injects a fault into one of ``vendor``'s devices."""
    for name in sorted(cat.nodes):
        node = cat.compose(name)
        if any(d.fault and d.spec.vendor == vendor for d in node.devices):
            return name
    return None


def _fault_profile(cat: ProfileCatalog, vendor: str, preferred: str | None) -> dict | None:
    """A copy of a node profile holding ``vendor``'s devices, with DEFAULT_FAULT on the first of them."""
    names = [n for n in ([preferred] if preferred else []) + cat.default_nodes() + sorted(cat.nodes) if n]
    for name in names:
        prof = cat.nodes.get(name)
        if prof is None:
            continue
        node = cat.compose(name)
        target = next((d.node_index for d in node.devices if d.spec.vendor == vendor), None)
        if target is None:
            continue
        doc = prof.model_dump(mode="json", by_alias=True)
        doc["metadata"]["name"] = f"conformance-fault-{vendor}"
        doc["spec"]["default"] = False
        doc["spec"]["faults"] = [{"index": target, "fault": DEFAULT_FAULT}]
        return doc
    return None


@check("health/unhealthy-unallocatable")
def unhealthy_unallocatable(ctx: CheckContext) -> CapabilityResult:
    """A real row's evidence is about its real devices only. When none of them is faulty, the behaviour
    can only be shown by a fault injected on a simulated copy: the cell then says so, takes that level,
    and keeps that evidence apart in ``CapabilityResult.injected`` (never among the real evidence)."""
    faulty = [d for d in ctx.devices if not d.healthy]
    if not ctx.simulated and faulty:  # a real fault on this node: the real devices show it
        level, evidence = _judge(ctx, ctx.devices, {d.uuid: d.health_reason or "unhealthy" for d in faulty},
                                 f"real devices ({ctx.where()})")
        return ctx.result(level, evidence)
    injected = _injected(ctx)
    if injected is None:
        return ctx.result(Level.UNVERIFIED, ["plugin ships no simulated profile, so no fault can be injected"])
    if ctx.simulated:
        return ctx.result(injected.level, injected.evidence)
    real = [f"all {len(ctx.devices)} real device(s) are healthy ({ctx.where()}), so no real device can show it",
            f"level from a fault injected on simulated profile {injected.profile!r}; that evidence is in 'injected'"]
    return ctx.result(injected.level, real, notes="shown only under an injected fault on a simulated copy")\
        .model_copy(update={"injected": injected})


def _injected(ctx: CheckContext) -> InjectedFault | None:
    """Inject a fault through the plugin's fake SDK on a simulated node and judge the result."""
    cat = ctx.hal.catalog()
    name = _vendor_faults(cat, ctx.vendor)
    doc = None if name else _fault_profile(cat, ctx.vendor, ctx.sim_node)
    if name is None and doc is None:
        return None
    fresh = ctx.hal_factory()
    with tempfile.TemporaryDirectory(prefix="hami-conformance-") as tmp:
        if doc is not None:
            name = doc["metadata"]["name"]
            path = Path(tmp) / "fault.yaml"
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            fresh.add_profiles([path])  # this manager only; the process environment is left alone
        node = fresh.simulated_node(name)
        inv = fresh.discover("sim", node_name=ctx.inventory_node, sim_node=name, config=ctx.config)
    # Match by per-vendor index: the injected fault is on a device position, whatever UUID the plugin reports.
    by_index = {d.index: d.fault for d in node.devices if d.fault and d.spec.vendor == ctx.vendor}
    devs = [d for d in inv.devices if d.vendor == ctx.vendor]
    faults = {d.uuid: by_index[d.index] for d in devs if d.index in by_index}
    where = f"simulated node {name!r} (fault injected through the plugin's fake SDK)"
    head = [f"{where}: faults {sorted(set(by_index.values()))} on device index(es) {sorted(by_index)} "
            f"of {len(devs)} device(s)"]
    if not faults:
        return InjectedFault(level=Level.UNSUPPORTED, profile=name,
                             evidence=head + [f"no discovered device has index {sorted(by_index)}"])
    level, evidence = _judge(ctx, devs, faults, where)
    return InjectedFault(level=level, profile=name, evidence=head + evidence)


def _judge(ctx: CheckContext, devs: list, faults: dict[str, str], where: str) -> tuple[Level, list[str]]:
    """Faulty devices must be reported unhealthy and refused; the healthy ones must still be placed."""
    still = [d for d in devs if d.uuid in faults and d.healthy]
    if still:
        d = still[0]
        hook = "" if ctx.implements("hami_hal_device_health") else " (plugin implements no hami_hal_device_health)"
        return Level.UNSUPPORTED, [f"{where}: device {d.index} with fault {faults[d.uuid]!r} is reported healthy{hook}"]
    state = ctx.node_state(devs)
    bad = next(d for d in devs if d.uuid in faults)
    evidence = [f"device {bad.index} reported unhealthy: {bad.health_reason or 'no reason given'}"]
    fit = state.fit_pod(ctx.pod("faulty", ctx.request(1, ctx.small_memory(bad), 0, uuid_include=[bad.uuid])))
    if fit.ok:
        return Level.UNSUPPORTED, evidence + [f"the engine placed a request on faulty device {bad.index}"]
    if not any(f.reason is FitReason.CARD_NOT_HEALTH for f in fit.failures):
        evidence.append(f"refused, but not as CardNotHealth: {fit.reason}")
    else:
        evidence.append(f"request pinned to device {bad.index} refused: {fit.reason}")
    healthy = [d for d in devs if d.healthy]
    if healthy:
        alloc = state.fit_pod(ctx.pod("healthy", ctx.request(len(healthy), min(ctx.small_memory(d) for d in healthy), 0)))
        if alloc.ok and alloc.allocation is not None:
            if any(s.uuid in faults for s in alloc.allocation.slices()):
                return Level.UNSUPPORTED, evidence + ["a request was placed on the faulty device"]
            evidence.append(f"a request for all {len(healthy)} healthy device(s) placed, none on the faulty one")
        else:
            # A vendor rule may refuse them all at once (a node budget): each healthy device alone must fit.
            refused = []
            for d in healthy:
                one = ctx.node_state(devs).fit_pod(ctx.pod(f"healthy-{d.index}", ctx.request(
                    1, ctx.small_memory(d), 0, uuid_include=[d.uuid])))
                if not one.ok:
                    refused.append(f"device {d.index}: {one.reason}")
            if refused:
                return Level.PARTIAL, evidence + [f"healthy device(s) refused too: {'; '.join(refused)[:300]}"]
            evidence.append(f"all {len(healthy)} healthy device(s) at once were refused by a vendor rule "
                            f"({alloc.reason[:120]}); each alone was placed, none on the faulty one")
    return Level.SUPPORTED, evidence
