"""What HAMi's MetaX sGPU PatchAnnotations writes for the MetaX sGPU runtime (docs/hami-compatibility.md):
``metax-tech.com/gpu-devices-allocated`` = one list per container of ``{"uuid", "compute", "vRam"}``
(vRam in MiB, compute in percent) and ``metax-tech.com/predicate-time``."""

from __future__ import annotations

import json
import time

from hami_hal.models import PodAllocation

from .vendor import GPU_DEVICES_ALLOCATED, PREDICATE_TIME, SGPU_WORD


def sgpu_annotations(allocation: PodAllocation, now: float | None = None) -> dict[str, str] | None:
    per_container = [[{"uuid": s.uuid, "compute": s.compute_percent, "vRam": s.memory_mib}
                      for s in c.slices if s.common_word == SGPU_WORD] for c in allocation.containers]
    if not any(per_container):
        return None
    return {GPU_DEVICES_ALLOCATED: json.dumps(per_container, separators=(",", ":")),
            PREDICATE_TIME: str(int(time.time() if now is None else now))}
