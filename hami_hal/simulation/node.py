"""A simulated node composed from profiles: the data a plugin's fake SDK serves."""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field

from .profile_models import DeviceSpec

_NAMESPACE = uuidlib.UUID("5f0d3c1e-6a0b-4a35-9c1e-4a616d692d68")


@dataclass(frozen=True)
class SimDevice:
    """One simulated device. ``index`` counts within its vendor, as a vendor library would."""

    index: int
    node_index: int
    uuid: str
    profile: str
    spec: DeviceSpec
    numa_node: int | None = None
    #: Injected fault (a plugin-named fault such as ``ecc-dbe`` or ``lost``), None when healthy.
    fault: str | None = None
    pci_bus_id: str = ""


@dataclass(frozen=True)
class SimLink:
    """A link between two devices, by node index."""

    a: int
    b: int
    #: The plugin's own name for the link (its fake SDK interprets it).
    kind: str
    count: int = 1


@dataclass
class SimulatedNode:
    """Devices and links of one simulated node; ``for_vendor`` gives a plugin its own part."""

    name: str
    driver_version: str
    runtime_version: str | None
    devices: list[SimDevice] = field(default_factory=list)
    links: list[SimLink] = field(default_factory=list)

    def for_vendor(self, vendor: str) -> SimulatedNode:
        keep = [d for d in self.devices if d.spec.vendor == vendor]
        idx = {d.node_index for d in keep}
        links = [lk for lk in self.links if lk.a in idx and lk.b in idx]
        return SimulatedNode(self.name, self.driver_version, self.runtime_version, keep, links)

    def vendors(self) -> list[str]:
        return sorted({d.spec.vendor for d in self.devices})

    def link_between(self, a: SimDevice, b: SimDevice) -> SimLink | None:
        for lk in self.links:
            if {lk.a, lk.b} == {a.node_index, b.node_index}:
                return lk
        return None


def sim_uuid(node: str, node_index: int, spec: DeviceSpec) -> str:
    """Deterministic UUID so simulated IDs are stable across restarts, as real ones are."""
    prefix = str(spec.vendor_data.get("uuid_prefix", "SIM-"))
    return prefix + str(uuidlib.uuid5(_NAMESPACE, f"{node}/{node_index}/{spec.model}"))
