"""vDCU shares (HAMi hygon adapter + Hygon's HAMi-mode plugin): arbitrary memory (MiB) and compute (%)
up to ``device_split_count`` tenants; 100 % compute is exclusive; a 0 % request cannot join a card whose
compute is all taken (engine rules). vDCUs are created on the hardware per allocation. A model without a
known compute-unit count is whole-device only."""

from __future__ import annotations

from hami_hal.models import Device, PartitionKind, PartitionModel

from .config import HygonConfig


def partition_model(device: Device, cfg: HygonConfig) -> PartitionModel:
    if not device.attributes.get("vhcu_capable"):
        return PartitionModel(kind=PartitionKind.WHOLE, memory_mib=device.memory_mib)
    return PartitionModel(kind=PartitionKind.SHARES, memory_mib=device.memory_mib, compute_percent=100,
                          max_slots=cfg.device_split_count, exclusive_full_compute=True, requires_creation=True)
