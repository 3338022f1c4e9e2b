"""Discovery from ``cnmon info``: the same code for real and simulated MLUs. Attributes: ``pci_bus_id``,
``driver_version``, ``ecc_errors`` (None = inline ECC off). A card with DDR ECC errors is listed unhealthy.
The NUMA node comes from sysfs (``/sys/bus/pci/devices/<bus id>/numa_node``)."""

from __future__ import annotations

from hami_hal.context import NodeContext
from hami_hal.errors import BackendUnavailable
from hami_hal.models import Device, Provenance
from hami_hal.vendor_tool import ToolError

from .cnmon import parse_info
from .port import Cnmon
from .vendor import VENDOR


def discover(port: Cnmon, context: NodeContext) -> list[Device]:
    devices = []
    try:
        cards = parse_info(port.info())
    except ToolError as err:  # the tool is there but cannot list the cards: skip this plugin, say why
        raise BackendUnavailable(str(err)) from None
    for card in cards:
        bad = bool(card.ecc_errors)
        devices.append(Device(
            vendor=VENDOR, index=card.index, uuid=card.uuid.replace(":", "-"), model=card.model,
            hami_type=card.model, memory_mib=card.total_mib, healthy=not bad, numa_node=port.numa_node(card.bus_id),
            health_reason=f"{card.ecc_errors} DDR ECC errors" if bad else None,
            attributes={"pci_bus_id": card.bus_id, "driver_version": card.driver_version,
                        "ecc_errors": card.ecc_errors},
            provenance=Provenance(source="real" if port.source == "real" else "simulated",
                                  device_model=card.model, driver_version=card.driver_version,
                                  host=context.node_name, profile=context.sim.name if context.sim else None),
        ))
    return devices
