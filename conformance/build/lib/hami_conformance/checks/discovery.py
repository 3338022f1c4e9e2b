"""Checks of the discovery hooks: a complete inventory and IDs that survive a restart."""

from __future__ import annotations

from collections import Counter

from hami_hal.models import CapabilityResult, Level

from . import check
from .context import CheckContext


def _sim_truth(ctx: CheckContext) -> dict[str, int] | None:
    """UUID -> profile memory of the vendor's simulated devices: ground truth for a simulated run."""
    if not ctx.simulated:
        return None
    node = ctx.hal.simulated_node(ctx.sim_node).for_vendor(ctx.vendor)
    return {d.uuid: d.spec.memory_mib for d in node.devices}


@check("discovery/inventory-complete")
def inventory_complete(ctx: CheckContext) -> CapabilityResult:
    """Every field a scheduler relies on is present, unique and (when simulated) equal to the profile."""
    problems: list[str] = []
    plugin = ctx.hal.plugin_for_vendor(ctx.vendor)
    families = plugin.vendor.resources if plugin else []
    if not families:
        problems.append("hami_hal_vendor declares no resource family")
    names = [n for f in families for n in f.names()]
    dup_names = sorted(n for n, c in Counter(names).items() if c > 1)
    if dup_names:
        problems.append(f"resource name {dup_names[0]!r} is declared twice")
    uuids = Counter(d.uuid for d in ctx.vendor_devices)
    indexes = Counter(d.index for d in ctx.vendor_devices)
    for d in ctx.devices:
        label = f"device {d.index}"
        if not d.uuid.strip():
            problems.append(f"{label}: empty uuid")
        elif uuids[d.uuid] > 1:
            problems.append(f"{label}: uuid {d.uuid} is shared with another device")
        if indexes[d.index] > 1:
            problems.append(f"{label}: index {d.index} is used by another device of vendor {ctx.vendor}")
        if not d.model.strip():
            problems.append(f"{label}: empty model")
        if not d.hami_type.strip():
            problems.append(f"{label}: empty hami_type")
        if d.memory_mib <= 0:
            problems.append(f"{label}: memory_mib is {d.memory_mib}")
        if d.partition is None:
            problems.append(f"{label}: no partition model")
    truth = _sim_truth(ctx)
    if truth is not None:
        found = {d.uuid for d in ctx.vendor_devices}
        missing = sorted(set(truth) - found)
        extra = sorted(found - set(truth))
        if missing:
            problems.append(f"{len(missing)} device(s) of the simulated node were not discovered, e.g. {missing[0]}")
        if extra:
            problems.append(f"{len(extra)} discovered device(s) are not in the simulated node, e.g. {extra[0]}")
        for d in ctx.devices:
            if d.uuid in truth and truth[d.uuid] != d.memory_mib:
                problems.append(f"device {d.index}: memory_mib {d.memory_mib} but the profile says {truth[d.uuid]}")
    if problems:
        return ctx.result(Level.UNSUPPORTED, problems[:8], notes=f"{len(problems)} problem(s) found")
    mem = sorted({d.memory_mib for d in ctx.devices})
    evidence = [
        f"{len(ctx.devices)} device(s) of model {ctx.devices[0].model!r}: unique UUIDs and indexes "
        f"{sorted(d.index for d in ctx.devices)}, memory {', '.join(map(str, mem))} MiB, partition model filled",
        f"vendor {ctx.vendor!r} declares {len(families)} resource family(ies): {', '.join(names)}",
    ]
    if truth is not None:
        evidence.append(f"all {len(truth)} device(s) of the simulated node discovered with the profile's memory")
    else:
        evidence.append(f"discovered through the vendor library ({ctx.where()})")
    return ctx.result(Level.SUPPORTED, evidence)


@check("discovery/ids-stable-across-restarts")
def ids_stable(ctx: CheckContext) -> CapabilityResult:
    """Rediscover with a freshly loaded plugin manager and compare UUID -> (index, model)."""
    before = {d.uuid: (d.index, d.model) for d in ctx.vendor_devices}
    fresh = ctx.hal_factory()
    inv = fresh.discover(ctx.backend, node_name=ctx.inventory_node, sim_node=ctx.sim_node, config=ctx.config)
    after = {d.uuid: (d.index, d.model) for d in inv.devices if d.vendor == ctx.vendor}
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    moved = sorted(u for u in set(before) & set(after) if before[u] != after[u])
    problems = []
    if gone:
        problems.append(f"{len(gone)} UUID(s) disappeared after a restart, e.g. {gone[0]}")
    if new:
        problems.append(f"{len(new)} UUID(s) appeared after a restart, e.g. {new[0]}")
    if moved:
        u = moved[0]
        problems.append(f"{u} changed from index/model {before[u]} to {after[u]}")
    if problems:
        return ctx.result(Level.UNSUPPORTED, problems)
    return ctx.result(Level.SUPPORTED, [
        f"rediscovered with a fresh plugin manager: the same {len(after)} UUID(s) with the same index and model"
    ])
