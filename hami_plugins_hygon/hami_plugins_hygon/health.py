"""DCU health: a DCU listed by ``hy-smi --showproductname`` but missing from the summary table has stopped
answering (Hygon's plugin compares the RSMI count with lspci for the same reason)."""

from __future__ import annotations

from hami_hal.models import Device, HealthStatus
from hami_hal.vendor_tool import ToolError

from .hy_smi import HySmi


def check(port: HySmi, device: Device) -> HealthStatus:
    try:
        table = port.table()
    except ToolError as err:
        return HealthStatus(uuid=device.uuid, healthy=False, reason=f"hy-smi unreadable: {err}")
    if device.index not in table:
        return HealthStatus(uuid=device.uuid, healthy=False, reason="DCU missing from the hy-smi summary table")
    return HealthStatus(uuid=device.uuid, healthy=True)
