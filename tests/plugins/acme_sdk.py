"""Fake "libacme" SDK over a simulated node: the acme plugin talks to it as it would to a real library.

Only for hami-hal's own tests. A real vendor plugin ships the same shape: a thin port over the vendor
library plus a fake built from ``context.sim``, so the plugin code above it is identical for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hami_hal.errors import BackendUnavailable, HalError
from hami_hal.simulation import SimulatedNode


@dataclass
class AcmeDeviceInfo:
    index: int
    uuid: str
    name: str
    memory_mib: int
    cores: int | None
    numa: int | None
    pci_bus_id: str
    mode: str
    fault: str | None
    templates: list[dict]
    tdp_watts: float
    idle_temperature_c: float


@dataclass
class FakeAcmeSdk:
    """What ``libacme`` would answer, served from a simulated node."""

    node: SimulatedNode
    #: Live template instances per device index: (instance id, template, placement start).
    instances: dict[int, list[tuple[int, str, int]]] = field(default_factory=dict)

    @property
    def driver_version(self) -> str:
        return self.node.driver_version

    def device_count(self) -> int:
        return len(self.node.devices)

    def device(self, index: int) -> AcmeDeviceInfo:
        d = self.node.devices[index]
        vd = d.spec.vendor_data
        return AcmeDeviceInfo(
            index=d.index, uuid=d.uuid, name=d.spec.model, memory_mib=d.spec.memory_mib,
            cores=d.spec.compute_units, numa=d.numa_node, pci_bus_id=d.pci_bus_id,
            mode=str(vd.get("mode", "hami-core")), fault=d.fault, templates=list(vd.get("templates", [])),
            tdp_watts=float(vd.get("tdp_watts", 100)), idle_temperature_c=float(vd.get("idle_temperature_c", 35)),
        )

    def links(self) -> list[tuple[int, int, str, int]]:
        """(index a, index b, kind, count) per linked pair, indexes counted within the vendor."""
        pos = {d.node_index: d.index for d in self.node.devices}
        return [(pos[lk.a], pos[lk.b], lk.kind, lk.count) for lk in self.node.links]

    def memory_used_mib(self, index: int) -> int:
        used = sum(int(t.get("memory_mib", 0)) for t in self._live_templates(index))
        return used + 256  # firmware reserve, as real cards report

    def _live_templates(self, index: int) -> list[dict]:
        by_name = {t["name"]: t for t in self.device(index).templates}
        return [by_name[name] for _, name, _ in self.instances.get(index, [])]

    def create_instance(self, index: int, template: str, start: int) -> int:
        info = self.device(index)
        if info.fault:
            raise HalError(f"acme device {index}: cannot create {template}, device has fault {info.fault}")
        if template not in {t["name"] for t in info.templates}:
            raise HalError(f"acme device {index}: unknown template {template!r}")
        live = self.instances.setdefault(index, [])
        if any(s == start for _, _, s in live):
            raise HalError(f"acme device {index}: placement {start} is taken")
        new_id = max((i for i, _, _ in live), default=0) + 1
        live.append((new_id, template, start))
        return new_id

    def destroy_instance(self, index: int, instance_id: int) -> bool:
        live = self.instances.get(index, [])
        keep = [x for x in live if x[0] != instance_id]
        self.instances[index] = keep
        return len(keep) < len(live)


def open_real_sdk() -> FakeAcmeSdk:
    """The real library does not exist: this is what a plugin does when its SDK is absent."""
    raise BackendUnavailable("libacme.so not found (fictional test vendor; use --backend sim)")
