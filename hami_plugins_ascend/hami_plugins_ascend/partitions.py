"""The partition model of one Ascend chip, from HAMi's chip catalogue and the node's mode.

- Template (hard) mode: the chip's vNPU templates plus a whole-card entry (``WHOLE_CARD``: all of
  ``memoryAllocatable`` and every AI core, for requests above the largest template or without memory),
  bounded by AI cores and by HAMi's split count; vNPUs are created on the hardware (dynamic vNPU).
  Templates the chip does not report in ``npu-smi info -t template-info`` are dropped.
- Soft mode (hami-vnpu-core): arbitrary memory/compute shares up to the split count.
- A chip outside the catalogue: whole device only.

The catalogue is the node's: HAMi's ``vnpus`` entries from the plugin's config over the built-in table.
"""

from __future__ import annotations

from hami_hal.models import Device, PartitionKind, PartitionModel, PartitionTemplate

from .chips import ChipConfig, by_chip_name, find_chip
from .config import AscendConfig
from .rules import split_count

#: Template name of a whole card in hard mode (no vNPU is created; HAMi writes no ``temp``).
WHOLE_CARD = "whole-card"


def chip_of(device: Device, table: tuple[ChipConfig, ...] | None = None) -> ChipConfig | None:
    """The device's entry in ``table`` (the node's, from its config), else in the built-in table."""
    name = str(device.attributes.get("chip_name") or device.model)
    return find_chip(table, name) if table is not None else by_chip_name(name)


def templates_of(chip: ChipConfig, reported: list[str]) -> list[PartitionTemplate]:
    out = [
        PartitionTemplate(name=t.name, memory_mib=t.memory, compute_percent=t.aiCore * 100 // chip.aiCore,
                          compute_units=t.aiCore)
        for t in chip.templates if not reported or t.name in reported
    ]
    # HAMi's rounding (trimMemory): the smallest template holding the request; above the largest template but within
    # memoryCapacity the whole card (memoryAllocatable); as data here, so the scheduler rounds with this node's
    # templates (rules.py says why admission does not)
    holds = chip.memoryCapacity if chip.memoryCapacity > chip.memoryAllocatable else None
    out.append(PartitionTemplate(name=WHOLE_CARD, memory_mib=chip.memoryAllocatable, compute_percent=100,
                                 compute_units=chip.aiCore, holds_up_to_mib=holds))
    return out


def partition_model(device: Device, cfg: AscendConfig) -> PartitionModel:
    chip = chip_of(device, cfg.chips)
    if chip is None:
        return PartitionModel(kind=PartitionKind.WHOLE, memory_mib=device.memory_mib)
    slots = split_count(chip, cfg.v_device_count)
    if device.attributes.get("soft_mode"):
        return PartitionModel(kind=PartitionKind.SHARES, memory_mib=chip.memoryAllocatable, compute_percent=100,
                              max_slots=slots)
    return template_model(chip, slots, [str(t) for t in device.attributes.get("templates") or []])


def template_model(chip: ChipConfig, slots: int, reported: list[str] = ()) -> PartitionModel:
    """Template (hard) mode of ``chip``: also the family's shape for a device known only from HAMi's register
    annotation (:func:`.vendor.family`), so the scheduler rounds there with the same templates."""
    return PartitionModel(
        kind=PartitionKind.TEMPLATES, memory_mib=chip.memoryAllocatable, compute_percent=100, max_slots=slots,
        compute_units=chip.aiCore, templates=templates_of(chip, list(reported)), exclusive_full_compute=True,
        requires_creation=True,
        # HAMi: "-memory only works with a count of 1" (a vNPU is one card's), and a superPod chip's whole cards
        # come in die pairs; rules of the templates, so each node's are applied with its own
        template_max_count=1, whole_count_multiple=2 if chip.superPod else 1,
    )
