"""Checks of the metrics hooks: whole-device memory tells the truth, per-tenant samples are sane."""

from __future__ import annotations

from hami_hal.models import CapabilityResult, Level

from . import check
from .context import CheckContext
from .probe import probe_check

MIB = 1 << 20
#: Allowed difference between memory_total and the discovered device memory (driver reservations).
TOTAL_TOLERANCE = 0.02


@check("metrics/device-memory")
def device_memory(ctx: CheckContext) -> CapabilityResult:
    if not ctx.implements("hami_hal_device_metrics"):
        return ctx.result(Level.UNSUPPORTED, ["plugin implements no hami_hal_device_metrics"])
    problems: list[str] = []
    shown: list[str] = []
    for d in ctx.devices:
        samples = ctx.hal.device_metrics(d)
        foreign = [s for s in samples if s.device_uuid != d.uuid]
        if foreign:
            problems.append(f"device {d.index}: sample {foreign[0].name} attributed to {foreign[0].device_uuid}")
        named = {s.name: s for s in samples if s.scope == "device" and s.device_uuid == d.uuid}
        used, total = named.get("memory_used"), named.get("memory_total")
        if used is None or total is None:
            problems.append(f"device {d.index}: no memory_used/memory_total sample (got {sorted(named) or 'none'})")
            continue
        for s in (used, total):
            if s.unit != "bytes":
                problems.append(f"device {d.index}: {s.name} in {s.unit}, expected bytes")
        if used.value < 0 or used.value > total.value:
            problems.append(f"device {d.index}: memory_used {used.value:.0f} B outside 0..memory_total {total.value:.0f} B")
        want = d.memory_mib * MIB
        if want and abs(total.value - want) / want > TOTAL_TOLERANCE:
            problems.append(f"device {d.index}: memory_total {total.value / MIB:.0f} MiB but the device has "
                            f"{d.memory_mib} MiB")
        util = named.get("utilization")
        if util is not None and not (0 <= util.value <= 1 and util.unit == "ratio"):
            problems.append(f"device {d.index}: utilization {util.value} {util.unit}, expected a ratio 0..1")
        if not shown:
            shown.append(f"device {d.index}: memory_used {used.value / MIB:.0f} MiB of memory_total "
                         f"{total.value / MIB:.0f} MiB (device {d.memory_mib} MiB); samples {sorted(named)}")
    if problems:
        return ctx.result(Level.UNSUPPORTED, problems[:6])
    return ctx.result(Level.SUPPORTED, shown + [
        f"{len(ctx.devices)} device(s): memory in bytes, used <= total, total within "
        f"{TOTAL_TOLERANCE:.0%} of the discovered memory"])


@check("metrics/allocation-usage")
def allocation_usage(ctx: CheckContext) -> CapabilityResult:
    """Malformed per-tenant samples fail at once; otherwise the plugin's probe decides (two tenants with
    different limits on one device, their per-container series against their measured usage), and without
    a probe the sample check's own answer stands (never better than the samples show)."""
    samples = _sample_check(ctx)
    if samples.level is Level.UNSUPPORTED and ctx.implements("hami_hal_allocation_metrics"):
        return samples
    probed = probe_check(ctx, fallback=lambda: samples)
    if probed is samples:
        return samples
    # The sample check runs outside the probe (no tenant of its own): label it, so "no tenant ran" is not
    # read as a statement about the probe's tenants.
    return probed.model_copy(update={"evidence": [*probed.evidence,
                                                  *(f"outside the probe: {e}" for e in samples.evidence)]})


def _sample_check(ctx: CheckContext) -> CapabilityResult:
    """The per-tenant samples the plugin reports now: scoped, attributed, in base units, within the device."""
    if not ctx.implements("hami_hal_allocation_metrics"):
        return ctx.result(Level.UNSUPPORTED, ["plugin implements no hami_hal_allocation_metrics"])
    problems: list[str] = []
    count = 0
    for d in ctx.devices:
        for s in ctx.hal.allocation_metrics(d):
            count += 1
            if s.scope not in ("allocation", "process"):
                problems.append(f"device {d.index}: per-tenant sample {s.name} has scope {s.scope}")
            if s.device_uuid != d.uuid:
                problems.append(f"device {d.index}: sample {s.name} attributed to {s.device_uuid}")
            if s.value < 0:
                problems.append(f"device {d.index}: sample {s.name} is negative ({s.value})")
            if "memory" in s.name and (s.unit != "bytes" or s.value > d.memory_mib * MIB):
                problems.append(f"device {d.index}: {s.name} = {s.value:.0f} {s.unit}, more than the device "
                                f"or not in bytes")
    if problems:
        return ctx.result(Level.UNSUPPORTED, problems[:6])
    if count == 0:
        return ctx.result(Level.UNVERIFIED, [f"no tenant ran on {len(ctx.devices)} device(s); no per-tenant "
                                             "sample to check"])
    return ctx.result(Level.SUPPORTED, [f"{count} per-tenant sample(s) on {len(ctx.devices)} device(s): scoped, "
                                        "attributed to the right device, base units, within device totals"])
