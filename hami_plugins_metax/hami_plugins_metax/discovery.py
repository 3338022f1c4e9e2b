"""Discovery: ``mx-smi`` lists the GPUs, ``mx-smi --show-memory`` cross-checks memory, ``mx-smi topo -m`` gives
MetaXLink zones; the same code for real and simulated GPUs.

Attributes: ``pci_bus_id``, ``driver_version``, ``maca_version``, ``link_zone`` (0 = no MetaXLink).
"""

from __future__ import annotations

from hami_hal.context import NodeContext
from hami_hal.errors import BackendUnavailable
from hami_hal.models import Device, Provenance
from hami_hal.vendor_tool import ToolError

from .mxsmi import parse_list, parse_memory, parse_numa, parse_summary, parse_topology
from .port import MxSmi
from .topology import link_zones
from .vendor import VENDOR


def device_id(bus_id: str) -> str:
    """Fallback id from the bus id when ``mx-smi -L`` gives none (``:`` separates HAMi fields, so ``-``)."""
    return "METAX-" + bus_id.replace(":", "-")


def discover(port: MxSmi, context: NodeContext) -> list[Device]:
    try:
        summary = parse_summary(port.summary())
        memory = parse_memory(port.memory())
    except ToolError as err:  # the tool is there but cannot list the GPUs: skip this plugin, say why
        raise BackendUnavailable(str(err)) from None
    indexes = [g.index for g in summary.gpus]
    try:
        uuids, uuid_error = parse_list(port.uuids()), None
    except ToolError as err:  # an older mx-smi without -L: ids from the bus id, said so
        uuids, uuid_error = {}, str(err)
    try:
        text = port.topology()
        pairs = parse_topology(text) if len(indexes) > 1 else {}
        zones, numa, topo_error = link_zones(pairs, indexes), parse_numa(text), None
    except ToolError as err:  # discovery survives a broken link matrix: no zones, said so
        zones, numa, topo_error = {i: 0 for i in indexes}, {}, str(err)
    prov = Provenance(source="real" if port.source == "real" else "simulated",
                      driver_version=summary.driver_version, runtime_version=summary.maca_version,
                      host=context.node_name, profile=context.sim.name if context.sim else None)
    devices = []
    for g in summary.gpus:
        lost = g.index not in memory
        if not lost and memory[g.index][1] != g.total_mib:
            raise ToolError(f"mx-smi: GPU {g.index} total {g.total_mib} MiB but --show-memory says "
                            f"{memory[g.index][1]} MiB")
        attrs = {"pci_bus_id": g.bus_id, "driver_version": summary.driver_version,
                 "maca_version": summary.maca_version, "link_zone": zones.get(g.index, 0)}
        unknown = {k: v for k, v in (("link_zone", topo_error), ("uuid", uuid_error)) if v}
        if unknown:
            attrs["unknown"] = unknown
        devices.append(Device(
            vendor=VENDOR, index=g.index, uuid=uuids.get(g.index) or device_id(g.bus_id), model=g.model,
            hami_type=g.model, memory_mib=g.total_mib, attributes=attrs, healthy=not lost,
            health_reason="mx-smi --show-memory cannot read it (GPU lost?)" if lost else None,
            numa_node=numa.get(g.index),
            provenance=prov.model_copy(update={"device_model": g.model}),
        ))
    return devices
