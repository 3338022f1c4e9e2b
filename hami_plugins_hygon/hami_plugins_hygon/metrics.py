"""Samples from hy-smi: memory total/used (``--showmeminfo vram``), busy %, power and temperature (summary
table); per-vDCU limits (``virtual -show-device-info``). The vendor exporter's names for the same figures
are ``hcu_memorycap_bytes``, ``hcu_usedmemory_bytes``, ``hcu_utilizationrate``, ``hcu_power_usage``,
``hcu_temp``; the core's exporter names ours."""

from __future__ import annotations

from hami_hal.models import Device, MetricSample
from hami_hal.vendor_tool import ToolError

from .hy_smi import HySmi

MIB = 1 << 20


def _labels(device: Device) -> dict[str, str]:
    return {"device_index": str(device.index), "device_type": device.hami_type}


def device_samples(port: HySmi, device: Device) -> list[MetricSample]:
    try:
        infos = {i.index: i for i in port.devices()}
        table = port.table()
    except ToolError:
        return []
    info, row = infos.get(device.index), table.get(device.index)
    values = []
    if info is not None:
        values += [("memory_total", "bytes", info.memory_total_bytes), ("memory_used", "bytes", info.memory_used_bytes)]
    if row is not None:
        values += [("utilization", "ratio", None if row.busy_percent is None else row.busy_percent / 100),
                   ("power", "watts", row.power_w), ("temperature", "celsius", row.temp_c)]
    return [MetricSample(name=n, value=float(v), unit=u, device_uuid=device.uuid, labels=_labels(device))
            for n, u, v in values if v is not None]


def vdcu_samples(port: HySmi, device: Device) -> list[MetricSample]:
    try:
        vdevs = [v for v in port.vdevices() if v.actual_device == device.index]
    except ToolError:
        return []
    out = []
    for v in vdevs:
        labels = _labels(device) | {"vdevice": str(v.index)}
        out += [MetricSample(name="memory_limit", value=float(v.memory_bytes), unit="bytes", device_uuid=device.uuid,
                             scope="allocation", labels=labels),
                MetricSample(name="compute_units", value=float(v.compute_units), unit="count",
                             device_uuid=device.uuid, scope="allocation", labels=labels)]
    return out
