"""Checks of the health hook: status per device, and faulty devices never allocated.

Faults are injected through a simulated node profile, i.e. through the plugin's fake SDK, which runs the
same code as on hardware. If the plugin ships a node profile with ``faults`` for its devices, that one is
used; otherwise the suite adds a ``lost`` fault to a copy of one of the plugin's node profiles.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import yaml

from hami_hal.models import CapabilityResult, FitReason, Level
from hami_hal.simulation import PROFILE_PATH_ENV, ProfileCatalog

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


@contextmanager
def _extra_profile(doc: dict):
    with tempfile.TemporaryDirectory(prefix="hami-conformance-") as tmp:
        path = Path(tmp) / "fault.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        old = os.environ.get(PROFILE_PATH_ENV)
        os.environ[PROFILE_PATH_ENV] = f"{old}:{path}" if old else str(path)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(PROFILE_PATH_ENV, None)
            else:
                os.environ[PROFILE_PATH_ENV] = old


@check("health/unhealthy-unallocatable")
def unhealthy_unallocatable(ctx: CheckContext) -> CapabilityResult:
    cat = ctx.hal.catalog()
    name = _vendor_faults(cat, ctx.vendor)
    doc = None if name else _fault_profile(cat, ctx.vendor, ctx.sim_node)
    if name is None and doc is None:
        return ctx.result(Level.UNVERIFIED, ["plugin ships no simulated profile, so no fault can be injected"])
    fresh = ctx.hal_factory()
    if doc is not None:
        name = doc["metadata"]["name"]
        with _extra_profile(doc):
            node = fresh.simulated_node(name)
            inv = fresh.discover("sim", node_name=ctx.inventory_node, sim_node=name, config=ctx.config)
    else:
        node = fresh.simulated_node(name)
        inv = fresh.discover("sim", node_name=ctx.inventory_node, sim_node=name, config=ctx.config)
    # Match by per-vendor index: the injected fault is on a device position, whatever UUID the plugin reports.
    by_index = {d.index: d.fault for d in node.devices if d.fault and d.spec.vendor == ctx.vendor}
    devs = [d for d in inv.devices if d.vendor == ctx.vendor]
    faults = {d.uuid: by_index[d.index] for d in devs if d.index in by_index}
    where = f"simulated node {name!r} (fault injected through the plugin's fake SDK)"
    evidence = [f"{where}: faults {sorted(set(by_index.values()))} on device index(es) {sorted(by_index)} "
                f"of {len(devs)} device(s)"]
    if not faults:
        return ctx.result(Level.UNSUPPORTED, evidence + [f"no discovered device has index {sorted(by_index)}"])
    still = [d for d in devs if d.uuid in faults and d.healthy]
    if still:
        d = still[0]
        hook = "" if ctx.implements("hami_hal_device_health") else " (plugin implements no hami_hal_device_health)"
        return ctx.result(Level.UNSUPPORTED, evidence + [
            f"device {d.index} with fault {faults[d.uuid]!r} is reported healthy{hook}"])
    state = ctx.node_state(devs)
    bad = next(d for d in devs if d.uuid in faults)
    evidence.append(f"device {bad.index} reported unhealthy: {bad.health_reason or 'no reason given'}")
    fit = state.fit_pod(ctx.pod("faulty", ctx.request(1, ctx.small_memory(bad), 0, uuid_include=[bad.uuid])))
    if fit.ok:
        return ctx.result(Level.UNSUPPORTED, evidence + [f"the engine placed a request on faulty device {bad.index}"])
    if not any(f.reason is FitReason.CARD_NOT_HEALTH for f in fit.failures):
        evidence.append(f"refused, but not as CardNotHealth: {fit.reason}")
    else:
        evidence.append(f"request pinned to device {bad.index} refused: {fit.reason}")
    healthy = [d for d in devs if d.healthy]
    if healthy:
        alloc = state.fit_pod(ctx.pod("healthy", ctx.request(len(healthy), min(ctx.small_memory(d) for d in healthy), 0)))
        if not alloc.ok or alloc.allocation is None:
            return ctx.result(Level.PARTIAL, evidence + [f"the {len(healthy)} healthy device(s) were refused too: "
                                                         f"{alloc.reason}"])
        if any(s.uuid in faults for s in alloc.allocation.slices()):
            return ctx.result(Level.UNSUPPORTED, evidence + ["a request was placed on the faulty device"])
        evidence.append(f"a request for all {len(healthy)} healthy device(s) placed, none on the faulty one")
    return ctx.result(Level.SUPPORTED, evidence)
