"""Fake vendor plugins for the suite's own tests: one correct, several deliberately broken.

``FakeAccel`` follows the "write a vendor plugin" recipe: identity, simulated profiles (written as data),
discovery through a tiny fake driver over ``context.sim`` (or over a fixed "hardware" list when
``hardware=True``, standing in for a real library), shares partitioning, container edits, topology,
metrics, health and a workload probe. Each broken subclass lies in exactly one way, and the tests check
that the suite catches exactly that.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from hami_hal import hookimpl
from hami_hal.context import NodeContext
from hami_hal.errors import BackendUnavailable
from hami_hal.manager import Hal
from hami_hal.models import (
    ContainerAllocation,
    ContainerEdits,
    Device,
    DeviceNode,
    DeviceSlice,
    HealthStatus,
    Level,
    Link,
    LinkTier,
    Measurement,
    MetricSample,
    PartitionKind,
    PartitionModel,
    PartitionTemplate,
    ProbeResult,
    Provenance,
    ResourceFamily,
    Topology,
    VendorInfo,
)

MIB = 1 << 20
MODEL = "Fake F1 24GB"
MEMORY = 24576
_TMP = Path(tempfile.mkdtemp(prefix="hami-conformance-fakes-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


@dataclass
class FakeDev:
    """What the fake driver knows about one device."""

    index: int
    uuid: str
    model: str
    memory_mib: int
    numa: int | None
    fault: str | None = None


def write_profiles(vendor: str) -> Path:
    """Device + node profile YAML for ``vendor``: 3 devices, 2 on NUMA 0, all linked."""
    path = _TMP / f"{vendor}.yaml"
    if not path.exists():
        docs = [
            {"apiVersion": "hami-hal.io/v1alpha1", "kind": "DeviceProfile", "metadata": {"name": f"{vendor}-f1"},
             "spec": {"vendor": vendor, "model": MODEL, "memory_mib": MEMORY, "compute_units": 32,
                      "vendor_data": {"uuid_prefix": "FAKE-"}}},
            {"apiVersion": "hami-hal.io/v1alpha1", "kind": "NodeProfile", "metadata": {"name": f"{vendor}-node-3"},
             "spec": {"default": True, "driver_version": "fake-sim-1.0",
                      "devices": [{"profile": f"{vendor}-f1", "count": 3, "numa_nodes": [0, 0, 1]}],
                      "links": [{"between": "all", "kind": "single-switch"},
                                {"between": [0, 1], "kind": "nvlink", "count": 4}]}},
        ]
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


class FakeAccel:
    """A correct plugin. ``hardware=True`` makes the "real" backend answer (fixed fake devices)."""

    VENDOR = "fakegood"
    __version__ = "1.0.0"

    def __init__(self, hardware: bool = False) -> None:
        self.hardware = hardware
        self.profiles = write_profiles(self.VENDOR)

    # -- the fake driver ------------------------------------------------------------------------

    def driver(self, context: NodeContext) -> list[FakeDev]:
        if context.simulated and context.sim is not None:
            return [FakeDev(d.index, d.uuid, d.spec.model, d.spec.memory_mib, d.numa_node, d.fault)
                    for d in context.sim.devices]
        if not self.hardware:
            raise BackendUnavailable("libfake.so not found")
        return [FakeDev(i, f"FAKE-HW-{i}", MODEL, MEMORY, 0 if i < 2 else 1) for i in range(3)]

    def provenance(self, context: NodeContext) -> Provenance:
        return Provenance(source="real", device_model=MODEL, driver_version="fake-driver-9.9")

    def reported_memory(self, dev: FakeDev) -> int:
        return dev.memory_mib

    # -- hooks ----------------------------------------------------------------------------------

    @hookimpl
    def hami_hal_vendor(self) -> VendorInfo:
        return VendorInfo(name=self.VENDOR, display_name=f"Fake ({self.VENDOR})", resources=[
            ResourceFamily(common_word="FAKE", count=f"{self.VENDOR}.example/gpu",
                           memory=f"{self.VENDOR}.example/gpumem", cores=f"{self.VENDOR}.example/gpucores")])

    @hookimpl
    def hami_hal_sim_profiles(self) -> list[Path]:
        return [self.profiles]

    @hookimpl
    def hami_hal_discover(self, context: NodeContext) -> list[Device]:
        return [Device(vendor=self.VENDOR, index=d.index, uuid=d.uuid, model=d.model, hami_type=f"FAKE-{d.model}",
                       memory_mib=self.reported_memory(d), numa_node=d.numa, provenance=self.provenance(context))
                for d in self.driver(context)]

    @hookimpl
    def hami_hal_partition_model(self, device: Device) -> PartitionModel:
        return PartitionModel(kind=PartitionKind.SHARES, memory_mib=device.memory_mib, max_slots=4)

    @hookimpl
    def hami_hal_container_edits(self, allocation: ContainerAllocation) -> ContainerEdits | None:
        if not allocation.slices:
            return None
        env = {"FAKE_VISIBLE_DEVICES": ",".join(s.uuid for s in allocation.slices)}
        env |= {f"FAKE_MEMORY_LIMIT_{i}": f"{s.memory_mib}m" for i, s in enumerate(allocation.slices)}
        return ContainerEdits(env=env, device_nodes=[DeviceNode(path=f"/dev/fake{s.device_index}")
                                                     for s in allocation.slices])

    @hookimpl
    def hami_hal_topology(self, devices: list[Device]) -> Topology:
        links = []
        for i, a in enumerate(devices):
            for b in devices[i + 1:]:
                nv = {a.index, b.index} == {0, 1}
                links.append(Link(a=a.uuid, b=b.uuid, kind="fake-fabric" if nv else "fake-switch",
                                  tier=LinkTier.FABRIC if nv else LinkTier.BOARD, count=4 if nv else 1,
                                  score=400 if nv else 50))
        return Topology(links=links, numa={d.uuid: d.numa_node for d in devices})

    def memory_samples(self, device: Device) -> list[MetricSample]:
        return [MetricSample(name="memory_used", value=512 * MIB, unit="bytes", device_uuid=device.uuid),
                MetricSample(name="memory_total", value=device.memory_mib * MIB, unit="bytes",
                             device_uuid=device.uuid)]

    @hookimpl
    def hami_hal_device_metrics(self, device: Device) -> list[MetricSample]:
        return [*self.memory_samples(device),
                MetricSample(name="utilization", value=0.1, unit="ratio", device_uuid=device.uuid)]

    @hookimpl
    def hami_hal_allocation_metrics(self, device: Device) -> list[MetricSample]:
        return [MetricSample(name="memory_used", value=256 * MIB, unit="bytes", device_uuid=device.uuid,
                             scope="process", labels={"pid": "4242"})]

    @hookimpl
    def hami_hal_device_health(self, device: Device, context: NodeContext) -> HealthStatus:
        fault = next((d.fault for d in self.driver(context) if d.uuid == device.uuid), None)
        return HealthStatus(uuid=device.uuid, healthy=fault is None, reason=f"fake fault {fault}" if fault else None)

    def probe_figures(self, behaviour_id: str) -> list[Measurement] | None:
        figures = {
            # Names the catalogue judges (Behaviour.targets); the targets here are the plugin's own and
            # are replaced by the catalogue's.
            "isolation/memory-hard": Measurement(name="memory_overshoot", value=0, unit="MiB", target="<= 0"),
            "isolation/memory-reported-total": Measurement(name="reported_total_error", value=0, unit="MiB",
                                                           target="<= 0"),
            "isolation/compute-share": Measurement(name="compute_share_error", value=1.5, unit="points",
                                                   target="<= 5"),
            "isolation/launch-overhead": Measurement(name="launch_time_ratio", value=1.01, unit="ratio",
                                                     target="<= 1.02"),
        }
        m = figures.get(behaviour_id)
        return [m] if m else None

    @hookimpl
    def hami_hal_conformance_probe(self, device: Device, behaviour_id: str,
                                   context: NodeContext) -> ProbeResult | None:
        figures = self.probe_figures(behaviour_id)
        if figures is None:
            return None
        where = "simulated fake driver" if context.simulated else "fake hardware"
        return ProbeResult(behaviour_id=behaviour_id, level=Level.SUPPORTED,
                           evidence=[f"workload on {where}, device {device.index}"], measurements=figures)


class OverCommitFake(FakeAccel):
    """Its partition model promises twice the device memory and 200 % compute; it declares that
    oversubscription only when the operator configured it (``device_memory_scaling``)."""

    VENDOR = "fakeover"

    @hookimpl
    def hami_hal_partition_model(self, device: Device, context: NodeContext) -> PartitionModel:
        declared = float(context.config.get("device_memory_scaling", 1))
        return PartitionModel(kind=PartitionKind.SHARES, memory_mib=device.memory_mib * 2, compute_percent=200,
                              max_slots=4, memory_scaling=declared, compute_scaling=declared)


class MemoryLiarFake(FakeAccel):
    """Metrics claim more memory used than the device has; the memory-hard probe overshoots its target."""

    VENDOR = "fakeliar"

    def memory_samples(self, device: Device) -> list[MetricSample]:
        return [MetricSample(name="memory_used", value=device.memory_mib * 3 * MIB, unit="bytes",
                             device_uuid=device.uuid),
                MetricSample(name="memory_total", value=device.memory_mib * MIB, unit="bytes",
                             device_uuid=device.uuid)]

    def probe_figures(self, behaviour_id: str) -> list[Measurement] | None:
        if behaviour_id == "isolation/memory-hard":
            return [Measurement(name="memory_overshoot", value=512, unit="MiB", target="<= 0")]
        return super().probe_figures(behaviour_id)


class WrongTotalFake(FakeAccel):
    """memory_total says half the device (MiB put where bytes belong, then halved)."""

    VENDOR = "fakewrongtotal"

    def memory_samples(self, device: Device) -> list[MetricSample]:
        return [MetricSample(name="memory_used", value=512 * MIB, unit="bytes", device_uuid=device.uuid),
                MetricSample(name="memory_total", value=device.memory_mib * MIB // 2, unit="bytes",
                             device_uuid=device.uuid)]


class UnstableIdsFake(FakeAccel):
    """New UUIDs every time the plugin is loaded (e.g. derived from a boot-time counter)."""

    VENDOR = "fakeunstable"

    def __init__(self, hardware: bool = False) -> None:
        super().__init__(hardware)
        self.salt = uuidlib.uuid4().hex[:8]

    def driver(self, context: NodeContext) -> list[FakeDev]:
        return [FakeDev(d.index, f"FAKE-{self.salt}-{d.index}", d.model, d.memory_mib, d.numa, d.fault)
                for d in super().driver(context)]


class HealthBlindFake(FakeAccel):
    """Implements no health hook: an injected fault goes unnoticed."""

    VENDOR = "fakeblind"
    hami_hal_device_health = None


class NoProbeFake(FakeAccel):
    """Claims nothing about isolation: no probe at all."""

    VENDOR = "fakenoprobe"
    hami_hal_conformance_probe = None


class MigLikeFake(FakeAccel):
    """Hardware partitions that must be created before use (like MIG); remembers what is still live."""

    VENDOR = "fakemig"

    def __init__(self, hardware: bool = False) -> None:
        super().__init__(hardware)
        self.live: dict[int, str] = {}

    @hookimpl
    def hami_hal_partition_model(self, device: Device) -> PartitionModel:
        half = device.memory_mib // 2
        return PartitionModel(
            kind=PartitionKind.TEMPLATES, memory_mib=device.memory_mib, max_slots=2, requires_creation=True,
            templates=[PartitionTemplate(name="half", memory_mib=half, compute_percent=50, max_instances=2),
                       PartitionTemplate(name="full", memory_mib=device.memory_mib, compute_percent=100,
                                         max_instances=1)])

    @hookimpl
    def hami_hal_create_partition(self, device: Device, slice: DeviceSlice) -> dict:
        handle = len(self.live) + 1
        self.live[handle] = f"{device.uuid}/{slice.template}"
        return {"instance": handle}

    @hookimpl
    def hami_hal_destroy_partition(self, handle: dict) -> bool:
        return self.live.pop(handle["instance"], None) is not None


def factory(cls: type[FakeAccel], hardware: bool = False):
    """A hal_factory that loads a fresh instance of ``cls`` only (a "restart" of the plugin)."""

    def make() -> Hal:
        hal = Hal(entrypoints=False)
        hal.register(cls(hardware=hardware), cls.VENDOR, cls.__version__)
        return hal

    return make
