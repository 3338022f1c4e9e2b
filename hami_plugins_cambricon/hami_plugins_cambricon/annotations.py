"""What HAMi's Cambricon PatchAnnotations writes for the vendor plugin (docs/hami-compatibility.md):
``CAMBRICON_DSMLU_PROFILE = "<devIdx>_<vcore>_<vmemory/256>"`` and ``CAMBRICON_DSMLU_ASSIGNED = "false"``
(the vendor plugin sets it to true once it created the sMLU). A profile exists only for an sMLU share
(``vmlu == 1``); whole cards get none."""

from __future__ import annotations

from hami_hal.models import Device, PodAllocation

from .partitions import MEMORY_STEP_MIB
from .vendor import ASSIGNED_ANNOTATION, PROFILE_ANNOTATION


def profile(device_index: int, vcore: int, memory_mib: int) -> str:
    return f"{device_index}_{vcore}_{memory_mib // MEMORY_STEP_MIB}"


def dsmlu_annotations(allocation: PodAllocation, devices: list[Device]) -> dict[str, str] | None:
    by_uuid = {d.uuid: d for d in devices}
    shares = [s for c in allocation.containers for s in c.slices if not s.exclusive and s.uuid in by_uuid
              and s.memory_mib < by_uuid[s.uuid].memory_mib]
    if not shares:
        return None
    s = shares[0]  # HAMi: vmemory/vcore apply to a single vMLU; one sMLU per pod
    return {PROFILE_ANNOTATION: profile(by_uuid[s.uuid].index, s.compute_percent, s.memory_mib),
            ASSIGNED_ANNOTATION: "false"}
