"""Dynamic sMLU (docs/vendors.md, Cambricon): arbitrary shares, memory in 256 MiB steps, compute in percent; HAMi gives
each card ``Count 100`` tenants. The vendor's cambricon-device-plugin (``mode=dynamic-smlu``,
``min-dsmlu-unit=256``) creates the sMLU and enforces it; sMLU must be on per card (``cnmon set -c <i> -smlu on``)."""

from __future__ import annotations

from hami_hal.models import Device, PartitionKind, PartitionModel

SMLU_SLOTS = 100
MEMORY_STEP_MIB = 256


def partition_model(device: Device) -> PartitionModel:
    return PartitionModel(kind=PartitionKind.SHARES, memory_mib=device.memory_mib, compute_percent=100,
                          max_slots=SMLU_SLOTS, memory_granularity_mib=MEMORY_STEP_MIB)
