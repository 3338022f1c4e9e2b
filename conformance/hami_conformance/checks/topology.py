"""Checks of the topology hook: pairwise links and NUMA affinity."""

from __future__ import annotations

from collections import Counter, defaultdict

from hami_hal.models import CapabilityResult, Level, LinkTier

from . import check
from .context import CheckContext


@check("topology/links")
def links(ctx: CheckContext) -> CapabilityResult:
    """Every pair of the vendor's devices has exactly one link of a known kind, naming known devices."""
    devs = ctx.vendor_devices
    if len(devs) < 2:
        return ctx.result(Level.NOT_APPLICABLE, [f"{len(devs)} device(s) of vendor {ctx.vendor} on the node"],
                          notes="links need at least two devices")
    uuids = {d.uuid for d in devs}
    mine = [lk for lk in ctx.topology.links if lk.a in uuids or lk.b in uuids]
    problems = []
    strangers = [lk for lk in mine if lk.a not in uuids or lk.b not in uuids]
    selfs = [lk for lk in mine if lk.a == lk.b]
    pairs = Counter(frozenset((lk.a, lk.b)) for lk in mine if lk.a != lk.b)
    dups = [p for p, n in pairs.items() if n > 1]
    if strangers:
        problems.append(f"link {strangers[0].a} - {strangers[0].b} names a device the plugin did not discover")
    if selfs:
        problems.append(f"link from {selfs[0].a} to itself")
    if dups:
        problems.append(f"{len(dups)} device pair(s) have more than one link")
    total = len(devs) * (len(devs) - 1) // 2
    covered = len(pairs)
    unknown = sum(1 for lk in mine if lk.tier is LinkTier.UNKNOWN)
    kinds = Counter(lk.kind for lk in mine)
    evidence = [f"{covered}/{total} device pairs linked: "
                + (", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none")]
    if not ctx.implements("hami_hal_topology"):
        evidence.append("plugin implements no hami_hal_topology")
    if problems:
        return ctx.result(Level.UNSUPPORTED, problems + evidence)
    if covered == 0:
        return ctx.result(Level.UNSUPPORTED, evidence)
    if covered < total or unknown:
        return ctx.result(Level.PARTIAL, evidence, notes=f"{total - covered} pair(s) without a link, {unknown} of unknown kind")
    return ctx.result(Level.SUPPORTED, evidence)


@check("topology/numa")
def numa(ctx: CheckContext) -> CapabilityResult:
    """NUMA nodes are reported consistently and a numa_bind request stays on one node."""
    devs = ctx.vendor_devices
    seen = {d.uuid: (d.numa_node, ctx.topology.numa.get(d.uuid)) for d in devs}
    missing = [u for u, (a, b) in seen.items() if a is None and b is None]
    clash = [u for u, (a, b) in seen.items() if a is not None and b is not None and a != b]
    if clash:
        u = clash[0]
        return ctx.result(Level.UNSUPPORTED, [f"{u}: device says NUMA {seen[u][0]}, topology says {seen[u][1]}"])
    if len(missing) == len(devs):
        return ctx.result(Level.UNSUPPORTED, [f"no NUMA node reported for any of {len(devs)} device(s)"])
    groups: dict[int, list] = defaultdict(list)
    for d in devs:
        n = d.numa_node if d.numa_node is not None else ctx.topology.numa.get(d.uuid)
        if n is not None and d.healthy:
            groups[n].append(d)
    evidence = ["NUMA nodes: " + ", ".join(f"{n}: {len(g)} device(s)" for n, g in sorted(groups.items()))]
    want = max((len(g) for g in groups.values()), default=0)
    if want >= 2:
        count = min(2, want)
        numa_devs = [d for g in groups.values() for d in g]
        node = ctx.node_state(numa_devs)
        fit = node.fit_pod(ctx.pod("numa", ctx.request(count, min(ctx.small_memory(d) for d in numa_devs), 0, numa_bind=True)))
        if not fit.ok or fit.allocation is None:
            return ctx.result(Level.UNSUPPORTED, evidence + [f"numa_bind request for {count} devices refused: {fit.reason}"])
        by_uuid = {d.uuid: d for d in numa_devs}
        nodes = {by_uuid[s.uuid].numa_node if by_uuid[s.uuid].numa_node is not None
                 else ctx.topology.numa.get(s.uuid) for s in fit.allocation.slices()}
        if len(nodes) != 1:
            return ctx.result(Level.UNSUPPORTED, evidence + [f"numa_bind request spread over NUMA nodes {sorted(nodes)}"])
        evidence.append(f"numa_bind request for {count} devices placed on NUMA node {nodes.pop()} only")
    if missing:
        return ctx.result(Level.PARTIAL, evidence, notes=f"{len(missing)} device(s) without a NUMA node")
    return ctx.result(Level.SUPPORTED, evidence)
