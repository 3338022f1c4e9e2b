"""Checks of the partitioning hooks, driven through the allocation engine with the plugin's rules as data.

The suite re-derives every limit from the partition model and the device itself instead of trusting the
engine's bookkeeping, so a plugin whose model promises more than the device has is caught.
"""

from __future__ import annotations

import random
import statistics
import time
from math import ceil

from hami_hal.errors import AllocationError
from hami_hal.models import (
    CapabilityResult,
    Device,
    DeviceUsage,
    Level,
    Measurement,
    PartitionKind,
    PartitionModel,
    PodAllocation,
)

from . import check
from .context import CheckContext
from .probe import probe_check

#: Random operations per row; enough to fill and drain every slot a few times, fast on 2 cores.
OPERATIONS = 400
#: Devices of a row put into one engine node (an 8-GPU node is the common case).
MAX_DEVICES = 8


def static_problems(ctx: CheckContext, dev: Device) -> list[str]:
    """What the partition model itself promises beyond the device."""
    p = dev.partition
    assert p is not None
    out = []
    mem_cap = int(dev.memory_mib * ctx.memory_scaling(dev))
    if p.memory_mib > mem_cap:
        out.append(f"device {dev.index}: partition model offers {p.memory_mib} MiB on a {dev.memory_mib} MiB device "
                   f"(memory scaling {ctx.memory_scaling(dev):g})")
    cu_cap = int(100 * ctx.core_scaling(dev))
    if p.compute_percent > cu_cap:
        out.append(f"device {dev.index}: partition model offers {p.compute_percent} % compute (limit {cu_cap} %)")
    for t in p.templates:
        if t.memory_mib > p.memory_mib:
            out.append(f"device {dev.index}: template {t.name} has {t.memory_mib} MiB, more than the device's "
                       f"{p.memory_mib} MiB")
        if p.compute_units is not None and t.compute_units is not None and t.compute_units > p.compute_units:
            out.append(f"device {dev.index}: template {t.name} needs {t.compute_units} compute units of "
                       f"{p.compute_units}")
    return out


def usage_problems(ctx: CheckContext, dev: Device, u: DeviceUsage) -> list[str]:
    """Usage beyond the partition model or the physical device."""
    p = dev.partition
    assert p is not None
    out = []
    mem_cap = min(p.memory_mib, int(dev.memory_mib * ctx.memory_scaling(dev)))
    if u.used_memory_mib > mem_cap:
        out.append(f"device {dev.index}: {u.used_memory_mib} MiB allocated of {mem_cap} MiB")
    if u.used_compute_percent > min(p.compute_percent, int(100 * ctx.core_scaling(dev))):
        out.append(f"device {dev.index}: {u.used_compute_percent} % compute allocated of {p.compute_percent} %")
    if u.used_slots > p.max_slots:
        out.append(f"device {dev.index}: {u.used_slots} tenants on {p.max_slots} slots")
    if p.compute_units is not None and u.used_compute_units > p.compute_units:
        out.append(f"device {dev.index}: {u.used_compute_units} compute units used of {p.compute_units}")
    by_name = {t.name: t for t in p.templates}
    counts: dict[str, int] = {}
    for inst in u.instances:
        counts[inst.template] = counts.get(inst.template, 0) + 1
    for name, n in counts.items():
        t = by_name.get(name)
        if t is None:
            out.append(f"device {dev.index}: instance of unknown template {name}")
        elif t.max_instances is not None and n > t.max_instances:
            out.append(f"device {dev.index}: {n} instances of {name} (max {t.max_instances})")
    if p.kind is PartitionKind.SLICES and len(counts) > 1:
        out.append(f"device {dev.index}: templates {sorted(counts)} mixed on a slices device")
    placed = [i.placement for i in u.instances if i.placement is not None]
    for i, a in enumerate(placed):
        if any(a.overlaps(b) for b in placed[i + 1:]):
            out.append(f"device {dev.index}: overlapping placements {a.start}+{a.size}")
            break
    if sum(by_name[i.template].memory_mib for i in u.instances if i.template in by_name) > mem_cap:
        out.append(f"device {dev.index}: template instances hold more memory than the device has")
    return out


def _random_request(ctx: CheckContext, rng: random.Random, devices: list[Device]):
    p = devices[0].partition
    assert p is not None
    count = rng.choice([1, 1, 1, 2]) if len(devices) > 1 else 1
    if p.templates and rng.random() < 0.6:
        t = rng.choice(p.templates)
        mem = max(1, t.memory_mib - rng.choice([0, 0, 1, t.memory_mib // 3]))
        return ctx.request(count, mem, 0)
    mem = rng.randint(1, max(1, p.memory_mib))
    if rng.random() < 0.3:
        mem = rng.randint(1, max(1, p.memory_mib // 8))
    cores = rng.choice([0, 0, 10, 25, 30, 50, 100])
    return ctx.request(count, mem, cores)


@check("partition/no-overcommit")
def no_overcommit(ctx: CheckContext) -> CapabilityResult:
    """Static model vs device, then random allocate/release sequences through the engine."""
    problems = [msg for d in ctx.devices for msg in static_problems(ctx, d)]
    devices = [d for d in ctx.devices if d.healthy][:MAX_DEVICES] or ctx.devices[:MAX_DEVICES]
    node = ctx.node_state(devices)
    rng = random.Random(ctx.seed)
    held: list[PodAllocation] = []
    placed = refused = 0
    latencies: list[float] = []
    for step in range(OPERATIONS):
        if held and rng.random() < 0.35:
            node.release(held.pop(rng.randrange(len(held))))
        else:
            pod = ctx.pod(f"conf-{step}", _random_request(ctx, rng, devices))
            t0 = time.perf_counter_ns()
            fit = node.fit_pod(pod)
            latencies.append((time.perf_counter_ns() - t0) / 1000)
            if fit.ok and fit.allocation is not None:
                try:
                    node.commit(fit.allocation)
                except AllocationError as err:
                    problems.append(f"step {step}: engine refused its own fit on commit: {err}")
                    break
                held.append(fit.allocation)
                placed += 1
            else:
                refused += 1
        for d in devices:
            found = usage_problems(ctx, d, node.usage(d.uuid))
            if found:
                problems.append(f"after step {step}: {found[0]}")
                break
        if len(problems) > 4:
            break
    while held:
        node.release(held.pop())
    leftover = [d.index for d in devices if node.usage(d.uuid).used_memory_mib or node.usage(d.uuid).used_slots]
    if leftover:
        problems.append(f"devices {leftover} still show usage after every allocation was released")
    measurements = []
    if latencies:
        qs = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
        cond = (f"engine fit_pod with the plugin's rules as data on {len(devices)} x {devices[0].model}, "
                f"{len(latencies)} random requests; {ctx.where()}; this host's CPU")
        measurements = [
            Measurement(name="allocation decision latency p50", value=round(qs[49], 1), unit="µs", conditions=cond),
            Measurement(name="allocation decision latency p99", value=round(qs[98], 1), unit="µs", conditions=cond),
        ]
    if problems:
        return ctx.result(Level.UNSUPPORTED, problems[:6], measurements=measurements)
    return ctx.result(Level.SUPPORTED, [
        f"partition models of {len(ctx.devices)} device(s) stay within device memory and compute",
        f"{OPERATIONS} random allocate/release steps on {len(devices)} device(s): {placed} placed, "
        f"{refused} refused, usage never above the partition model or the device (checked after every step)",
        "all usage returned to zero after releasing every allocation",
    ], measurements=measurements)


def _expected_memory(p: PartitionModel, mem: int) -> int:
    return ceil(mem / p.memory_granularity_mib) * p.memory_granularity_mib


@check("partition/arbitrary-memory")
def arbitrary_memory(ctx: CheckContext) -> CapabilityResult:
    """Two tenants of odd sizes on one device each get exactly what they asked for (to granularity)."""
    dev = next((d for d in ctx.devices if d.healthy), ctx.devices[0])
    p = dev.partition
    assert p is not None
    if p.kind is PartitionKind.WHOLE:
        return ctx.result(Level.UNSUPPORTED, [f"partition kind whole: a request takes all {p.memory_mib} MiB"])
    if p.kind in (PartitionKind.TEMPLATES, PartitionKind.SLICES):
        sizes = ", ".join(f"{t.name}={t.memory_mib}" for t in p.templates)
        return ctx.result(Level.UNSUPPORTED, [f"partition kind {p.kind.value}: memory rounds up to templates ({sizes} MiB)"])
    sizes = [max(1, p.memory_mib // 7 + 13), max(1, p.memory_mib // 5 + 101)]
    node = ctx.node_state([dev])
    got = []
    for i, mem in enumerate(sizes[: p.max_slots]):
        alloc = node.allocate(ctx.pod(f"arbitrary-{i}", ctx.request(1, mem, 0)))
        got.append((mem, alloc.slices()[0].memory_mib))
    wrong = [(m, g) for m, g in got if g != _expected_memory(p, m)]
    used = node.usage(dev.uuid).used_memory_mib
    if wrong:
        m, g = wrong[0]
        return ctx.result(Level.UNSUPPORTED, [f"asked {m} MiB, got {g} MiB (granularity {p.memory_granularity_mib} MiB)"])
    if used != sum(g for _, g in got):
        return ctx.result(Level.UNSUPPORTED, [f"device usage {used} MiB does not equal the slices {got}"])
    evidence = [f"tenants of {', '.join(f'{m} MiB' for m, _ in got)} on one device got "
                f"{', '.join(f'{g} MiB' for _, g in got)} (granularity {p.memory_granularity_mib} MiB)"]
    if p.max_slots < 2:
        return ctx.result(Level.PARTIAL, evidence, notes="only one tenant per device (max_slots 1)")
    return ctx.result(Level.SUPPORTED, evidence + [f"up to {p.max_slots} tenants per device"])


@check("partition/templates-exact")
def templates_exact(ctx: CheckContext) -> CapabilityResult:
    """Exact and in-between requests round to the right template; instance limits hold."""
    dev = next((d for d in ctx.devices if d.healthy), ctx.devices[0])
    p = dev.partition
    assert p is not None
    if p.kind not in (PartitionKind.TEMPLATES, PartitionKind.SLICES):
        return ctx.result(Level.NOT_APPLICABLE, [f"partition kind {p.kind.value}"],
                          notes=f"partition kind {p.kind.value} has no templates")
    problems: list[str] = []
    evidence: list[str] = []
    for t in sorted(p.templates, key=lambda t: (t.memory_mib, t.compute_percent, t.name)):
        asks = sorted({(t.memory_mib, t.compute_percent), (max(1, t.memory_mib - 1), 0)})
        for mem, cores in asks:
            want = p.smallest_template(mem, cores)
            if want is None:
                continue
            fit = ctx.node_state([dev]).fit_pod(ctx.pod("tmpl", ctx.request(1, mem, cores)))
            if not fit.ok or fit.allocation is None:
                problems.append(f"{mem} MiB / {cores} % should get template {want.name} but was refused: {fit.reason}")
                continue
            s = fit.allocation.slices()[0]
            if s.template != want.name or s.memory_mib != want.memory_mib:
                problems.append(f"{mem} MiB / {cores} % should get {want.name} ({want.memory_mib} MiB), got "
                                f"{s.template} ({s.memory_mib} MiB)")
        owner = p.smallest_template(t.memory_mib, t.compute_percent)
        if owner is not None and owner.name != t.name:
            evidence.append(f"{t.name}: requests of its size get {owner.name} (same memory and compute, "
                            "smaller name); not addressable on its own")
            continue
        node = ctx.node_state([dev])
        placed = 0
        for i in range(64):
            fit = node.fit_pod(ctx.pod(f"fill-{i}", ctx.request(1, t.memory_mib, t.compute_percent)))
            if not fit.ok or fit.allocation is None or fit.allocation.slices()[0].template != t.name:
                break
            node.commit(fit.allocation)
            placed += 1
        limit = min(x for x in (t.max_instances, len(t.placements) or None, p.max_slots) if x is not None)
        found = usage_problems(ctx, dev, node.usage(dev.uuid))
        if found:
            problems.append(found[0])
        if placed > limit:
            problems.append(f"template {t.name}: {placed} instances placed, limit {limit}")
        elif placed == 0:
            problems.append(f"template {t.name}: not even one instance could be placed on an empty device")
        evidence.append(f"{t.name}: exact and 1 MiB smaller requests round as expected; {placed} instance(s) "
                        f"fit on one device (limit {limit})")
    if p.kind is PartitionKind.SLICES and len(p.templates) > 1:
        a, b = sorted(p.templates, key=lambda t: t.memory_mib)[:2]
        node = ctx.node_state([dev])
        node.allocate(ctx.pod("slice-a", ctx.request(1, a.memory_mib, 0)))
        fit = node.fit_pod(ctx.pod("slice-b", ctx.request(1, b.memory_mib, 0)))
        if fit.ok:
            problems.append(f"slices device accepted template {b.name} next to {a.name}")
        else:
            evidence.append(f"slices: {b.name} refused next to {a.name} ({fit.reason})")
    if p.requires_creation:
        evidence.append("hardware partitions were not created by the suite (requires_creation); geometry checked")
    if problems:
        return ctx.result(Level.UNSUPPORTED, problems[:6])
    return ctx.result(Level.SUPPORTED, evidence)


@check("oversubscription/memory")
def oversubscription(ctx: CheckContext) -> CapabilityResult:
    """Only a probe that spills past physical memory can show this; the model alone proves nothing."""
    return probe_check(ctx)
