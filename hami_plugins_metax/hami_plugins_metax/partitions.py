"""sGPU shares per GPU: memory in MiB (requests in GiB, × 1024), compute in percent, up to the card's
sGPU count; a 100 % vcore request is exclusive (HAMi: the topology score counts only those).
The whole-GPU family (``metax-tech.com/gpu``) takes a card exclusively through the engine's whole path."""

from __future__ import annotations

from hami_hal.models import Device, PartitionKind, PartitionModel

#: sGPUs per card when the profile does not say (real nodes: ``totalDevCount`` of the GPU operator).
DEFAULT_SGPU_SLOTS = 16


def partition_model(device: Device, slots: int | None) -> PartitionModel:
    if device.memory_mib == 0:
        return PartitionModel(kind=PartitionKind.WHOLE, memory_mib=0)
    return PartitionModel(kind=PartitionKind.SHARES, memory_mib=device.memory_mib, compute_percent=100,
                          max_slots=slots or DEFAULT_SGPU_SLOTS, exclusive_full_compute=True)
