"""Partition models per GPU: whole GPU, HAMi vGPU shares, or MIG profiles as fixed templates.

- ``hami-core`` (default): shares of memory (MiB, × deviceMemoryScaling) and compute (percent,
  100 × deviceCoreScaling), at most deviceSplitCount tenants; enforced in software by the CUDA
  interposer. This is HAMi's default device (hami-compat.md §4.2, §7.1).
- ``mig``: the GPU's NVML GPU-instance profiles become templates with their placements; used only when
  MIG mode is already enabled on the GPU (hami-hal never changes MIG mode). Instances are created on
  allocation (``requires_creation``).
- ``whole``: one tenant, the whole GPU (operating mode ``whole`` or a GPU reporting no memory).
"""

from __future__ import annotations

from hami_hal.models import Device, PartitionKind, PartitionModel, PartitionTemplate, Placement

from .config import NvidiaConfig
from .discovery import is_plain_profile


def partition_model(device: Device, cfg: NvidiaConfig) -> PartitionModel:
    """The model the engine must honour for ``device`` under the node config."""
    if device.mode == "mig":
        model = mig_model(device, cfg)
        if model is not None:
            return model
    if cfg.operating_mode == "whole" or device.memory_mib == 0:
        return PartitionModel(kind=PartitionKind.WHOLE, memory_mib=device.memory_mib)
    return PartitionModel(
        kind=PartitionKind.SHARES,
        memory_mib=int(device.memory_mib * cfg.device_memory_scaling),
        compute_percent=int(100 * cfg.device_core_scaling),
        max_slots=cfg.device_split_count,
        memory_scaling=max(cfg.device_memory_scaling, 1.0),
        compute_scaling=max(cfg.device_core_scaling, 1.0),
    )


def mig_templates(device: Device, cfg: NvidiaConfig) -> list[PartitionTemplate]:
    """Plain ``<N>g.<mem>gb`` profiles as templates, those HAMi's ``migProfileAllowlist`` allows for this GPU's
    model when it names some (NvidiaConfig.allowed_mig_profiles: the flat list, or the first per-model entry
    one of whose models is a substring of the NVML name)."""
    allowed = cfg.allowed_mig_profiles(device.model)
    out = []
    for prof in device.attributes.get("mig_profiles") or []:
        name = prof["name"]
        if not is_plain_profile(name) or (allowed is not None and name not in allowed):
            continue
        out.append(PartitionTemplate(
            name=name,
            memory_mib=int(prof["memoryMB"]),
            compute_percent=int(prof["core"]),
            compute_units=int(prof["sliceCount"]),
            max_instances=int(prof["instanceCount"]),
            placements=[Placement(start=p["start"], size=p["size"]) for p in prof["placements"]],
        ))
    return out


def mig_model(device: Device, cfg: NvidiaConfig) -> PartitionModel | None:
    """Templates for a MIG-enabled GPU; None when NVML listed no usable profile."""
    templates = mig_templates(device, cfg)
    if not templates:
        return None
    slices = max(t.compute_units or 0 for t in templates)
    return PartitionModel(
        kind=PartitionKind.TEMPLATES,
        memory_mib=device.memory_mib,
        compute_percent=100,
        max_slots=max(t.max_instances or 1 for t in templates),
        compute_units=slices,
        templates=templates,
        exclusive_full_compute=False,
        requires_creation=True,
    )
