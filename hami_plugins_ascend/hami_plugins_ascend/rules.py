"""HAMi's Ascend request rules, as pure functions over a :class:`ChipConfig` (HAMi's ``vnpus`` config and webhook).

- ``split_count``: ``memoryAllocatable // templates[0].memory`` (910B3 4, 310P 7, 910A 15), unless the node
  overrides it (``vDeviceCount`` in HAMi's per-node config).
- ``admit``: what HAMi's admission webhook does with one container's request of one chip that needs no node:
  ``-core`` only in hami-core (soft) mode, and on a superPod chip (910C) odd counts above 1 are refused and a
  whole-card request (no memory) of 1 is rounded up to 2, a module pair (in hami-core mode the odd counts too: a
  multi-die share still takes module pairs; a single-die share stays 1).

The template rounding (HAMi's ``trimMemory``: the smallest template whose memory is >= the request; above the
largest template but <= ``memoryCapacity`` the whole card; anything larger is invalid), ``-memory`` only with a
count of 1, and the superPod pair rule for a request that rounds to whole cards depend on the templates, and a
node's ``vnpus`` section may change those: they are the node's partition model
(:func:`.partitions.template_model`: ``PartitionTemplate.holds_up_to_mib``, ``PartitionModel.template_max_count``,
``whole_count_multiple``), applied by the engine on each node with that node's templates.

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
    """The request as HAMi's webhook leaves it: the device count, and the cores of a soft share."""

    count: int
    soft: bool = False
    cores: int = 0


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
    """Apply HAMi's webhook rules that need no node to one request of ``chip`` (``memory_mib`` None: whole cards
    asked); raises :class:`AdmissionRefused`."""
    soft = pod_mode(annotations)
    if soft:
        if memory_mib is not None and memory_mib > chip.memoryCapacity:
            raise AdmissionRefused(Refusal.MEMORY_INVALID, chip.memory_resource, memory_mib,
                                   f"is invalid (more than the chip's {chip.memoryCapacity} MiB)")
        if chip.superPod and count > 1 and count % 2:
            raise AdmissionRefused(Refusal.SUPERPOD_ODD_COUNT, chip.resource, count,
                                   "must be 1 or even on a superPod chip (dies come in module pairs)")
        return Admitted(count=count, soft=True, cores=cores or 0)
    if cores:
        raise AdmissionRefused(Refusal.CORE_WITHOUT_SOFT_MODE, chip.core_resource, cores,
                               f"needs the pod annotation {MODE_ANNOTATION}: {SOFT_MODE}")
    if chip.superPod and count > 1 and count % 2:  # whole cards in die pairs, and a vNPU is one card's
        raise AdmissionRefused(Refusal.SUPERPOD_ODD_COUNT, chip.resource, count,
                               "must be 1 or even on a superPod chip (whole cards come in die pairs)")
    if chip.superPod and memory_mib is None and count == 1:
        count = 2
    return Admitted(count=count)
