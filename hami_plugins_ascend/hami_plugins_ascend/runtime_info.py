"""HAMi's Ascend runtime-info pod annotation, written at Filter (HAMi ``pkg/device/ascend``):
``huawei.com/<CW>: [{"UUID": ..., "temp": "vir05_1c_16g", "memory": 16384, "core": 5}]`` (``temp`` omitted
for whole cards and in hami-core mode; ``core`` = the template's AI cores, or the ``-core`` percent in
hami-core mode) and ``predicate-time: <unix seconds>``."""

from __future__ import annotations

import json
import time

from hami_hal.models import Device, PartitionModel, PodAllocation

from .chips import ChipConfig, by_common_word
from .partitions import WHOLE_CARD
from .rules import SOFT_MODE

PREDICATE_TIME = "predicate-time"


def _template_cores(name: str, part: PartitionModel | None, chip: ChipConfig | None) -> int | None:
    """AI cores of template ``name``: the node's own templates first (its vnpus section may change them or add the
    chip; a device read from HAMi's register annotation has its family's), then the built-in table's."""
    mine = next((t for t in (part.templates if part else []) if t.name == name), None)
    if mine is not None:
        return mine.compute_units or 0
    known = chip.template(name) if chip else None
    return known.aiCore if known else None


def runtime_annotations(allocation: PodAllocation, devices: list[Device], now: float | None = None) -> dict[str, str]:
    by_uuid = {d.uuid: d for d in devices}
    per_word: dict[str, list[dict]] = {}
    for s in allocation.slices():
        dev = by_uuid.get(s.uuid)
        soft = bool(dev and dev.attributes.get("soft_mode")) or s.attributes.get("vnpu_mode") == SOFT_MODE
        entry: dict = {"UUID": s.uuid, "memory": s.memory_mib}
        chip = by_common_word(s.common_word)
        part = dev.partition if dev is not None else None
        cores = _template_cores(s.template, part, chip) if s.template and s.template != WHOLE_CARD else None
        if soft:
            entry["core"] = s.compute_percent
        elif cores is not None:
            entry |= {"temp": s.template, "core": cores}
        else:
            entry["core"] = (part.compute_units if part else None) or (chip.aiCore if chip else 0)
        per_word.setdefault(s.common_word, []).append(entry)
    if not per_word:
        return {}
    out = {f"huawei.com/{word}": json.dumps(entries, separators=(",", ":")) for word, entries in per_word.items()}
    out[PREDICATE_TIME] = str(int(time.time() if now is None else now))
    return out
