"""HAMi's Ascend request rules, as pure functions over a :class:`ChipConfig` (HAMi's ``vnpus`` config and webhook).

- ``trim_memory``: the smallest template whose memory is >= the request; above the largest template but
  <= ``memoryCapacity`` the whole card (``memoryAllocatable``, no template); anything larger is invalid.
- ``split_count``: ``memoryAllocatable // templates[0].memory`` (910B3 4, 310P 7, 910A 15), unless the node
  overrides it (``vDeviceCount`` in HAMi's per-node config).
- ``admit``: what HAMi's admission webhook does with one container's request of one chip: ``-memory``
  only with a count of 1 (a sub-card vNPU for several devices is refused), no memory = whole cards,
  ``-core`` only in hami-core (soft) mode, and on a superPod chip (910C) whole-card counts are rounded
  up from 1 to 2 (a module pair) while other odd counts are refused (in hami-core mode too: a multi-die
  share still takes module pairs; a single-die share stays 1).

Each refusal carries a stable code (:class:`Refusal`), so tests and the differential table compare codes,
and one readable line.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .chips import ChipConfig

#: ``huawei.com/vnpu-mode`` value that selects soft slicing (hami-vnpu-core).
SOFT_MODE = "hami-core"
MODE_ANNOTATION = "huawei.com/vnpu-mode"


class Refusal(StrEnum):
    """Why a request is refused; ``MODE_NOT_FIT`` is HAMi's Filter reason, the others its webhook's."""

    MEMORY_INVALID = "MemoryInvalid"
    MULTI_DEVICE_VNPU = "MultiDeviceVNPU"
    SUPERPOD_ODD_COUNT = "SuperPodOddCount"
    CORE_WITHOUT_SOFT_MODE = "CoreWithoutSoftMode"
    UNKNOWN_MODE = "UnknownMode"
    MODE_NOT_FIT = "ModeNotFit"


class AdmissionRefused(ValueError):
    """A request HAMi would not admit: ``code`` plus the field, its value and the reason (one line)."""

    def __init__(self, code: Refusal, field: str, value: object, reason: str) -> None:
        self.code, self.field, self.value, self.reason = code, field, value, reason
        super().__init__(f"{field}: {value!r} {reason}")


@dataclass(frozen=True)
class Admitted:
    """The request as HAMi's webhook leaves it: devices, MiB per device and the vNPU template."""

    count: int
    memory_mib: int
    #: Template name; None = whole cards (hard mode) or a soft share (``soft``).
    template: str | None
    soft: bool = False
    cores: int = 0

    @property
    def whole(self) -> bool:
        return self.template is None and not self.soft


def trim_memory(chip: ChipConfig, memory_mib: int) -> tuple[int, str | None] | None:
    """(MiB, template) the request is rounded to; ``(allocatable, None)`` = whole card; None = invalid."""
    for tpl in chip.templates:
        if memory_mib <= tpl.memory:
            return tpl.memory, tpl.name
    if memory_mib <= chip.memoryCapacity:
        return chip.memoryAllocatable, None
    return None


def split_count(chip: ChipConfig, override: int | None = None) -> int:
    """How many vNPUs one card may hold: HAMi's VDeviceCount, or the node's override."""
    if override is not None:
        return override
    return max(1, chip.memoryAllocatable // chip.templates[0].memory)


def pod_mode(annotations: dict[str, str]) -> bool:
    """True when the pod asks for soft slicing; an unknown mode value is refused."""
    raw = annotations.get(MODE_ANNOTATION)
    if raw is None or raw.strip() == "":
        return False
    if raw.strip() != SOFT_MODE:
        raise AdmissionRefused(Refusal.UNKNOWN_MODE, f'metadata.annotations["{MODE_ANNOTATION}"]', raw,
                               f'is not a known mode (only "{SOFT_MODE}")')
    return True


def admit(chip: ChipConfig, count: int, memory_mib: int | None, cores: int | None,
          annotations: dict[str, str]) -> Admitted:
    """Apply HAMi's webhook rules to one request of ``chip``; raises :class:`AdmissionRefused`."""
    soft = pod_mode(annotations)
    if soft:
        if memory_mib is not None and memory_mib > chip.memoryCapacity:
            raise AdmissionRefused(Refusal.MEMORY_INVALID, chip.memory_resource, memory_mib,
                                   f"is invalid (more than the chip's {chip.memoryCapacity} MiB)")
        if chip.superPod and count > 1 and count % 2:
            raise AdmissionRefused(Refusal.SUPERPOD_ODD_COUNT, chip.resource, count,
                                   "must be 1 or even on a superPod chip (dies come in module pairs)")
        mem = chip.memoryAllocatable if memory_mib is None else memory_mib
        return Admitted(count=count, memory_mib=mem, template=None, soft=True, cores=cores or 0)
    if cores:
        raise AdmissionRefused(Refusal.CORE_WITHOUT_SOFT_MODE, chip.core_resource, cores,
                               f"needs the pod annotation {MODE_ANNOTATION}: {SOFT_MODE}")
    if memory_mib is None:
        mem, template = chip.memoryAllocatable, None
    else:
        trimmed = trim_memory(chip, memory_mib)
        if trimmed is None:
            raise AdmissionRefused(Refusal.MEMORY_INVALID, chip.memory_resource, memory_mib,
                                   f"is invalid (more than the chip's {chip.memoryCapacity} MiB)")
        mem, template = trimmed
    if count > 1 and template is not None:
        raise AdmissionRefused(Refusal.MULTI_DEVICE_VNPU, chip.memory_resource, memory_mib,
                               f"asks for a {template} vNPU on {count} devices; vNPU templates need a count of 1")
    if chip.superPod and template is None:
        if count == 1:
            count = 2
        elif count % 2:
            raise AdmissionRefused(Refusal.SUPERPOD_ODD_COUNT, chip.resource, count,
                                   "must be 1 or even on a superPod chip (whole cards come in die pairs)")
    return Admitted(count=count, memory_mib=mem, template=template)
