"""Discovery: ``xpu-smi -m`` lists the cards, ``xpu-smi -i <n> -q`` names each; the same code for real and
simulated cards. Attributes: ``pci_bus_id``, ``serial``, ``driver_version``, ``runtime_version``,
``xpu_group`` (0 for cards 0-3, 1 for 4-7), ``cards_on_node`` (each card holds one of the node's 32
driver handles). The NUMA node comes from sysfs; where sysfs has none, HAMi's
rule (cards 4-7 on NUMA 1) stands in."""

from __future__ import annotations

from hami_hal.context import NodeContext
from hami_hal.errors import BackendUnavailable
from hami_hal.models import Device, Provenance
from hami_hal.vendor_tool import ToolError

from .port import XpuSmi
from .topology import GROUPS
from .vendor import VENDOR
from .xpusmi import parse_machine, parse_query


def device_id(serial: str) -> str:
    """The card's serial number: stable across restarts and slots. (HAMi's closed vXPU plugin registers the bus
    ID instead; the scheduler treats either as opaque, and ``:``, HAMi's field separator, is replaced.)"""
    return serial.replace(":", "-").replace(",", "-").replace(";", "-")


def _group(index: int) -> int | None:
    return next((g for g, members in enumerate(GROUPS) if index in members), None)


def discover(port: XpuSmi, context: NodeContext) -> list[Device]:
    try:
        rows = parse_machine(port.machine())
    except ToolError as err:  # the tool is there but cannot list the cards: skip this plugin, say why
        raise BackendUnavailable(str(err)) from None
    devices = []
    for row in rows:
        try:
            rec = parse_query(port.query(row.index))
        except ToolError as err:
            devices.append(Device(
                vendor=VENDOR, index=row.index, uuid=f"XPU-UNREADABLE-{row.index}", model="unknown",
                hami_type="XPU-unknown", memory_mib=row.total_mib, healthy=False, health_reason=str(err),
                provenance=Provenance(source="real" if port.source == "real" else "simulated",
                                      host=context.node_name),
            ))
            continue
        group = _group(row.index)
        numa = port.numa_node(rec.bus_id)
        devices.append(Device(
            vendor=VENDOR, index=row.index, uuid=device_id(rec.serial), model=rec.model,
            hami_type=rec.model, memory_mib=rec.total_mib, numa_node=group if numa is None else numa,
            attributes={"pci_bus_id": rec.bus_id, "serial": rec.serial, "driver_version": rec.driver_version,
                        "runtime_version": rec.runtime_version, "xpu_group": group, "cards_on_node": len(rows)},
            provenance=Provenance(source="real" if port.source == "real" else "simulated",
                                  device_model=rec.model, driver_version=rec.driver_version,
                                  runtime_version=rec.runtime_version, host=context.node_name,
                                  profile=context.sim.name if context.sim else None),
        ))
    return devices
