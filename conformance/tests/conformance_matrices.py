"""Small matrices built by hand for the report, validate, merge and diff tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hami_hal.models import (
    CapabilityMatrix,
    CapabilityResult,
    DeviceModelEntry,
    Level,
    MatrixMetadata,
    Measurement,
    Provenance,
    Requirement,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
REAL = Provenance(source="real", device_model="NVIDIA H100 80GB HBM3", driver_version="580.95.05",
                  runtime_version="13.0")
SIM = Provenance(source="simulated", device_model="NVIDIA H100 80GB HBM3", profile="nvidia-8xh100",
                 driver_version="sim-1.0")


def cell(bid: str, level: Level, req: Requirement = Requirement.MUST, *, evidence=("seen",), measurements=(),
         notes: str = "") -> CapabilityResult:
    return CapabilityResult(id=bid, requirement=req, level=level, evidence=list(evidence),
                            measurements=list(measurements), notes=notes)


def overshoot(value: float) -> Measurement:
    return Measurement(name="memory overshoot", value=value, unit="MiB", target="<= 0", conditions="4 GiB slice")


def entry(node: str = "gpu-1", *, prov: Provenance = REAL, cells=None, count: int = 8, minutes: int = 0,
          model: str = "NVIDIA H100 80GB HBM3", version: str = "0.1.0") -> DeviceModelEntry:
    cells = cells if cells is not None else [
        cell("partition/no-overcommit", Level.SUPPORTED),
        cell("isolation/memory-hard", Level.SUPPORTED, measurements=[overshoot(0)]),
        cell("topology/links", Level.PARTIAL, Requirement.SHOULD, notes="2 pairs without a link"),
        cell("partition/templates-exact", Level.NOT_APPLICABLE, notes="no templates"),
    ]
    return DeviceModelEntry(vendor="nvidia", model=model, plugin="nvidia", plugin_version=version,
                            provenance=prov, nodes=[node], device_count=count,
                            tested_at=T0 + timedelta(minutes=minutes), capabilities=cells)


def matrix(*entries: DeviceModelEntry) -> CapabilityMatrix:
    return CapabilityMatrix(metadata=MatrixMetadata(generated_at=T0, generator_version="0.1.0",
                                                    suite_version="0.1.0+test"), entries=list(entries))
