"""Chip health from npu-smi's Health column: ``OK`` is healthy; ``Warning``, ``Alarm``, ``Critical`` or a
chip that vanished from the table is not (HAMi's plugin uses DCMI GetDeviceHealth, 0 = healthy)."""

from __future__ import annotations

from hami_hal.models import Device, HealthStatus
from hami_hal.vendor_tool import ToolError

from .npu_smi import NpuSmi


def check(port: NpuSmi, device: Device) -> HealthStatus:
    try:
        chips, _ = port.chips()
    except ToolError as err:
        return HealthStatus(uuid=device.uuid, healthy=False, reason=f"npu-smi unreadable: {err}")
    logic = device.attributes.get("logic_id", device.index)
    chip = next((c for c in chips if c.logic_id == logic), None)
    if chip is None:
        return HealthStatus(uuid=device.uuid, healthy=False, reason=f"chip {logic} is gone from npu-smi info")
    if chip.row.health != "OK":
        return HealthStatus(uuid=device.uuid, healthy=False, reason=f"npu-smi reports Health {chip.row.health}",
                            events=[f"Health {chip.row.health}"])
    return HealthStatus(uuid=device.uuid, healthy=True)
