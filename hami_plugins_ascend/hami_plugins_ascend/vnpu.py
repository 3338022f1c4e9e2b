"""Dynamic vNPUs through npu-smi: create one for a template slice, destroy it, and clean up idle ones.

In HAMi the Ascend Docker Runtime creates the vNPU at container start and the device plugin's
``CleanupIdleVNPUs`` destroys vNPUs no container uses; here the same two operations go through the port,
so they run (and are tested) on simulated chips too.
"""

from __future__ import annotations

from hami_hal.errors import HalError
from hami_hal.models import Device, DeviceSlice
from hami_hal.vendor_tool import ToolError

from .npu_smi import NpuSmi
from .partitions import WHOLE_CARD


def _where(device: Device) -> tuple[int, int, int]:
    a = device.attributes
    if not all(isinstance(a.get(k), int) for k in ("npu_id", "chip_id", "logic_id")):
        raise HalError(f"Ascend device {device.uuid} lacks npu/chip/logic ids")
    return a["npu_id"], a["chip_id"], a["logic_id"]


def create(port: NpuSmi, device: Device, slice: DeviceSlice) -> dict:
    """Create the vNPU for ``slice``; a whole-card slice needs none (handle without a vNPU id)."""
    if slice.template in (None, WHOLE_CARD):
        return {"template": WHOLE_CARD, "vnpu_id": None}
    npu, chip, logic = _where(device)
    try:
        vid = port.create_vnpu(npu, chip, logic, slice.template)
    except ToolError as err:
        raise HalError(f"cannot create vNPU {slice.template} on NPU {npu} chip {chip}: {err}") from None
    return {"template": slice.template, "vnpu_id": vid, "npu_id": npu, "chip_id": chip}


def destroy(port: NpuSmi, device: Device, handle: dict) -> bool:
    vid = handle.get("vnpu_id")
    if vid is None:
        return True
    if isinstance(vid, bool) or not isinstance(vid, int):
        raise HalError(f"vNPU handle has a bad vnpu_id {vid!r}")
    npu, chip, _ = _where(device)
    try:
        port.destroy_vnpu(npu, chip, vid)
    except ToolError as err:
        raise HalError(f"cannot destroy vNPU {vid} on NPU {npu} chip {chip}: {err}") from None
    return True


def cleanup_idle(port: NpuSmi, devices: list[Device]) -> list[tuple[str, int]]:
    """Destroy every vNPU no container uses (HAMi's CleanupIdleVNPUs); returns (uuid, vnpu id) destroyed."""
    gone: list[tuple[str, int]] = []
    for dev in devices:
        if dev.attributes.get("soft_mode"):
            continue
        npu, chip, _ = _where(dev)
        for v in port.vnpus(npu, chip):
            if not v.in_use:
                port.destroy_vnpu(npu, chip, v.vnpu_id)
                gone.append((dev.uuid, v.vnpu_id))
    return gone
