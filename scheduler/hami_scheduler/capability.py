"""Capability-aware fit: keep requests off device models that cannot enforce them.

A slice smaller than the device needs hard memory isolation; a compute share of 1-99 % needs
compute-share isolation. The capability matrix (hami-hal's CapabilityMatrix JSON, from a file or a
ConfigMap) says per device model whether that holds; only the configured levels are accepted.
"""

from __future__ import annotations

from hami_hal.models import (
    CapabilityMatrix,
    Device,
    DeviceSlice,
    DeviceUsage,
    FitFailure,
    FitReason,
    Level,
    ResourceRequest,
)

MEMORY_HARD = "isolation/memory-hard"
COMPUTE_SHARE = "isolation/compute-share"


class CapabilityGate:
    """An engine Veto built from the matrix. With no matrix every request passes (and says so)."""

    def __init__(self, matrix: CapabilityMatrix | None, accept: set[Level] | None = None) -> None:
        self.matrix = matrix
        self.accept = accept if accept is not None else {Level.SUPPORTED, Level.PARTIAL}

    @staticmethod
    def needs(device: Device, sl: DeviceSlice) -> list[str]:
        """Capabilities a slice relies on."""
        if sl.exclusive:
            return []
        total = device.partition.memory_mib if device.partition else device.memory_mib
        out = []
        if sl.memory_mib < total:
            out.append(MEMORY_HARD)
        if 1 <= sl.compute_percent <= 99:
            out.append(COMPUTE_SHARE)
        return out

    def __call__(self, device: Device, usage: DeviceUsage, req: ResourceRequest, sl: DeviceSlice) -> FitFailure | None:
        if self.matrix is None:
            return None
        for cap in self.needs(device, sl):
            level, why = self.matrix.vouch(device.vendor, device.model, cap, device.provenance.source)
            if level not in self.accept:
                return FitFailure(uuid=device.uuid, reason=FitReason.CAPABILITY_NOT_VERIFIED, detail=why)
        return None


def parse_levels(text: str) -> set[Level]:
    from hami_hal.errors import InputError

    out = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            out.add(Level(part))
        except ValueError:
            raise InputError("--accept-levels", part, f"is not one of {', '.join(lv.value for lv in Level)}") from None
    return out
