"""Device builders for the engine tests: fictional vendor ``acme``, no plugin needed."""

from __future__ import annotations

from hami_hal.models import (
    ContainerRequest,
    Device,
    PartitionKind,
    PartitionModel,
    PartitionTemplate,
    Placement,
    PodRequest,
    Provenance,
    ResourceRequest,
)

SIM = Provenance(source="simulated", profile="engine-test")


def device(i: int, part: PartitionModel, *, model: str = "Acme X1", numa: int | None = None,
           healthy: bool = True, vendor: str = "acme") -> Device:
    return Device(
        vendor=vendor, index=i, uuid=f"ACME-{vendor}-{i}", model=model, hami_type=f"ACME-{model}",
        memory_mib=part.memory_mib, numa_node=numa, healthy=healthy,
        health_reason=None if healthy else "xid 79", partition=part, provenance=SIM,
    )


def shares(mem: int = 32768, slots: int = 10) -> PartitionModel:
    return PartitionModel(kind=PartitionKind.SHARES, memory_mib=mem, max_slots=slots)


def whole(mem: int = 16384) -> PartitionModel:
    return PartitionModel(kind=PartitionKind.WHOLE, memory_mib=mem)


def mig_like() -> PartitionModel:
    """A MIG-shaped device: 7 compute slices, 8 memory slots, placements as data."""
    return PartitionModel(
        kind=PartitionKind.TEMPLATES, memory_mib=81920, max_slots=7, compute_units=7,
        templates=[
            PartitionTemplate(name="1g.10gb", memory_mib=9984, compute_percent=14, compute_units=1,
                              max_instances=7, placements=[Placement(start=s, size=1) for s in range(7)]),
            PartitionTemplate(name="2g.20gb", memory_mib=19968, compute_percent=28, compute_units=2,
                              max_instances=3, placements=[Placement(start=s, size=2) for s in (0, 2, 4)]),
            PartitionTemplate(name="3g.40gb", memory_mib=40192, compute_percent=42, compute_units=3,
                              max_instances=2, placements=[Placement(start=s, size=4) for s in (0, 4)]),
            PartitionTemplate(name="7g.80gb", memory_mib=80896, compute_percent=100, compute_units=7,
                              max_instances=1, placements=[Placement(start=0, size=8)]),
        ],
    )


def slices_like() -> PartitionModel:
    """A Kunlun-vXPU-shaped device: one slice size per card."""
    return PartitionModel(
        kind=PartitionKind.SLICES, memory_mib=98304, max_slots=4,
        templates=[
            PartitionTemplate(name="24g", memory_mib=24576, compute_percent=25, max_instances=4),
            PartitionTemplate(name="48g", memory_mib=49152, compute_percent=50, max_instances=2),
            PartitionTemplate(name="96g", memory_mib=98304, compute_percent=100, max_instances=1),
        ],
    )


def req(count: int = 1, mem: int | None = None, cores: int = 0, **kw) -> ResourceRequest:
    return ResourceRequest(vendor=kw.pop("vendor", "acme"), common_word="ACME", count=count, memory_mib=mem,
                           compute_percent=cores, **kw)


def pod(name: str, *containers: list[ResourceRequest], init: tuple[list[ResourceRequest], ...] = ()) -> PodRequest:
    ctrs = [ContainerRequest(name=f"init{i}", index=i, init=True, requests=r) for i, r in enumerate(init)]
    ctrs += [ContainerRequest(name=f"c{i}", index=len(init) + i, requests=r) for i, r in enumerate(containers)]
    return PodRequest(name=name, containers=ctrs)
