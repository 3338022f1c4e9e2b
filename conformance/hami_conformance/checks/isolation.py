"""Checks of the isolation hook; the accuracy behaviours go through the plugin's probe (checks.probe)."""

from __future__ import annotations

import os

from hami_hal.models import CapabilityResult, Level

from . import check
from .context import CheckContext
from .probe import probe_check

#: Opt-in to create (and destroy) a hardware partition such as a MIG instance on a real device.
CREATE_ENV = "HAMI_CONFORMANCE_CREATE_PARTITIONS"


@check("isolation/container-edits")
def container_edits(ctx: CheckContext) -> CapabilityResult:
    """Allocate a small slice, ask for its edits, check they name the device and render as CDI."""
    dev = next((d for d in ctx.devices if d.healthy), None)
    if dev is None:
        return ctx.result(Level.UNVERIFIED, ["no healthy device to allocate"])
    if not ctx.implements("hami_hal_container_edits"):
        return ctx.result(Level.UNSUPPORTED, ["plugin implements no hami_hal_container_edits"])
    mem = ctx.small_memory(dev)
    alloc = ctx.node_state([dev]).allocate(ctx.pod("edits", ctx.request(1, mem, 0)))
    ctr = alloc.containers[0]
    created = None
    p = dev.partition
    if p is not None and p.requires_creation:
        if not ctx.simulated and os.environ.get(CREATE_ENV) != "1":
            return ctx.result(Level.UNVERIFIED, [
                f"device {dev.index} needs a hardware partition before its edits exist; the suite creates "
                f"one on real hardware only with {CREATE_ENV}=1"])
        created = ctx.hal.create_partition(dev, ctr.slices[0])
    try:
        edits = ctx.hal.container_edits(ctr, [dev])
    finally:
        if created is not None:
            ctx.hal.destroy_partition(dev, created)
    if not (edits.env or edits.mounts or edits.device_nodes):
        return ctx.result(Level.UNSUPPORTED, [f"no env, mounts or device nodes for a {mem} MiB slice of device {dev.index}"])
    named = any(dev.uuid in v for v in edits.env.values()) or any(
        d.path.rstrip("0123456789") != d.path and d.path.endswith(str(dev.index)) for d in edits.device_nodes
    ) or _lists_device(edits.env, dev)
    cdi = edits.to_cdi(f"{ctx.vendor}.hami-hal.io/device", "conformance")
    evidence = [
        *([f"created partition {created} for the slice, destroyed afterwards"] if created else []),
        f"{mem} MiB slice of device {dev.index}: env {sorted(edits.env)}, {len(edits.mounts)} mount(s), "
        f"{len(edits.device_nodes)} device node(s)",
        f"renders as CDI {cdi['cdiVersion']} with {len(cdi['devices'][0]['containerEdits'])} edit kind(s)",
    ]
    if not named:
        return ctx.result(Level.PARTIAL, evidence, notes=f"no env value or device node names {dev.uuid} or index {dev.index}")
    return ctx.result(Level.SUPPORTED, evidence)


def _lists_device(env: dict[str, str], dev) -> bool:
    """A device-list variable (``*VISIBLE*``/``*DEVICE*``) whose comma list holds the device's index or
    physical id: runtimes that create the device node themselves name the device this way."""
    ids = {str(dev.index)} | ({str(dev.attributes["phy_id"])} if dev.attributes.get("phy_id") is not None else set())
    return any(item.strip() in ids for key, value in env.items() if "VISIBLE" in key or "DEVICE" in key
               for item in value.split(","))


for _bid in ("isolation/memory-hard", "isolation/memory-reported-total", "isolation/compute-share",
             "isolation/priority", "isolation/launch-overhead"):
    check(_bid)(probe_check)
