"""HAMi's Ascend runtime-info pod annotation, written at Filter (HAMi ``pkg/device/ascend``):
``huawei.com/<CW>: [{"UUID": ..., "temp": "vir05_1c_16g", "memory": 16384, "core": 5}]`` (``temp`` omitted
for whole cards and in hami-core mode; ``core`` = the template's AI cores, or the ``-core`` percent in
hami-core mode) and ``predicate-time: <unix seconds>``."""

from __future__ import annotations

import json
import time

from hami_hal.models import Device, PodAllocation

from .chips import by_common_word
from .partitions import WHOLE_CARD
from .rules import SOFT_MODE, trim_memory

PREDICATE_TIME = "predicate-time"


def runtime_annotations(allocation: PodAllocation, devices: list[Device], now: float | None = None) -> dict[str, str]:
    by_uuid = {d.uuid: d for d in devices}
    per_word: dict[str, list[dict]] = {}
    for s in allocation.slices():
        dev = by_uuid.get(s.uuid)
        soft = bool(dev and dev.attributes.get("soft_mode")) or s.attributes.get("vnpu_mode") == SOFT_MODE
        entry: dict = {"UUID": s.uuid, "memory": s.memory_mib}
        chip = by_common_word(s.common_word)
        tpl = chip.template(s.template) if chip and s.template and s.template != WHOLE_CARD else None
        if tpl is None and chip is not None and not s.template:
            # a device known only from HAMi's register annotation is a share to the engine; its vNPU is the
            # template HAMi's rounding names for that memory
            trimmed = trim_memory(chip, s.memory_mib)
            tpl = chip.template(trimmed[1]) if trimmed and trimmed[1] else None
        if soft:
            entry["core"] = s.compute_percent
        elif tpl is not None:
            entry |= {"temp": tpl.name, "core": tpl.aiCore}
        else:
            entry["core"] = chip.aiCore if chip else 0
        per_word.setdefault(s.common_word, []).append(entry)
    if not per_word:
        return {}
    out = {f"huawei.com/{word}": json.dumps(entries, separators=(",", ":")) for word, entries in per_word.items()}
    out[PREDICATE_TIME] = str(int(time.time() if now is None else now))
    return out
