"""What a check gets: the plugin manager, the node's inventory and the devices of one matrix row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hami_hal.context import Backend
from hami_hal.engine import NodeState
from hami_hal.manager import Hal
from hami_hal.models import (
    CapabilityResult,
    ContainerRequest,
    Device,
    Level,
    Measurement,
    PodRequest,
    ResourceRequest,
    Topology,
)

from ..catalogue import Behaviour


@dataclass
class CheckContext:
    """One behaviour to check against one row (vendor + device model) of one node."""

    hal: Hal
    #: Builds a fresh plugin manager with the same plugins (restart checks, fault injection).
    hal_factory: Callable[[], Hal]
    inventory_node: str
    backend: Backend
    vendor: str
    #: The devices of this row (one device model).
    devices: list[Device]
    #: Every device of the vendor on the node (topology checks look across models).
    vendor_devices: list[Device]
    topology: Topology
    behaviour: Behaviour
    sim_node: str | None = None
    config: dict = field(default_factory=dict)
    seed: int = 20261123

    # -- results ------------------------------------------------------------------------------

    def result(self, level: Level, evidence: Sequence[str], *, measurements: Sequence[Measurement] = (),
               notes: str = "") -> CapabilityResult:
        return CapabilityResult(
            id=self.behaviour.id, requirement=self.behaviour.requirement, level=level,
            evidence=list(evidence), measurements=list(measurements), notes=notes,
        )

    # -- facts --------------------------------------------------------------------------------

    @property
    def simulated(self) -> bool:
        return self.backend == "sim"

    def implements(self, hook: str) -> bool:
        plugin = self.hal.plugin_for_vendor(self.vendor)
        return bool(plugin and hook in plugin.hooks)

    def where(self) -> str:
        """How the devices were obtained, for evidence lines."""
        prov = self.devices[0].provenance
        return prov.label()

    @staticmethod
    def memory_scaling(dev: Device) -> float:
        """Oversubscription the plugin declares in the device's partition model (>1 = configured)."""
        return dev.partition.memory_scaling if dev.partition else 1.0

    @staticmethod
    def core_scaling(dev: Device) -> float:
        return dev.partition.compute_scaling if dev.partition else 1.0

    # -- engine helpers -----------------------------------------------------------------------

    def common_word(self) -> str:
        # devices that serve one family (Device.family) only take requests of that family
        family = next((d.family for d in self.devices if d.family), None)
        if family:
            return family
        plugin = self.hal.plugin_for_vendor(self.vendor)
        fams = plugin.vendor.resources if plugin else []
        shared = [f for f in fams if not f.whole_device]
        return (shared or fams)[0].common_word if fams else self.vendor.upper()

    def node_state(self, devices: Sequence[Device] | None = None) -> NodeState:
        devs = list(devices if devices is not None else self.devices)
        keep = {d.uuid for d in devs}
        topo = Topology(
            links=[lk for lk in self.topology.links if lk.a in keep and lk.b in keep],
            numa={u: n for u, n in self.topology.numa.items() if u in keep},
        )
        return NodeState(self.inventory_node, devs, topo)

    def request(self, count: int = 1, memory_mib: int | None = None, compute_percent: int = 0,
                **kw) -> ResourceRequest:
        return ResourceRequest(vendor=self.vendor, common_word=self.common_word(), count=count,
                               memory_mib=memory_mib, compute_percent=compute_percent, **kw)

    @staticmethod
    def small_memory(device: Device) -> int:
        """A modest slice size any vendor rule accepts: the smallest template, else <= 1 GiB."""
        p = device.partition
        if p is None:
            return max(1, min(1024, device.memory_mib // 4))
        if p.templates:
            return min(t.memory_mib for t in p.templates)
        return max(1, min(1024, p.memory_mib // 4))

    @staticmethod
    def pod(name: str, *requests: ResourceRequest) -> PodRequest:
        return PodRequest(name=name, containers=[ContainerRequest(name="main", index=0, requests=list(requests))])
