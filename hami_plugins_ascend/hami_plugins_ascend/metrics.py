"""Whole-chip samples from ``npu-smi info`` (HBM used/total, AI-core utilization, power, temperature);
figures the tool prints as ``NA`` are left out rather than reported as 0."""

from __future__ import annotations

from hami_hal.models import Device, MetricSample
from hami_hal.vendor_tool import ToolError

from .chips import by_chip_name
from .npu_smi import NpuSmi

MIB = 1 << 20


def device_samples(port: NpuSmi, device: Device) -> list[MetricSample]:
    try:
        chips, _ = port.chips()
    except ToolError:
        return []
    logic = device.attributes.get("logic_id", device.index)
    chip = next((c for c in chips if c.logic_id == logic), None)
    if chip is None:
        return []
    r = chip.row
    labels = {"device_index": str(device.index), "device_type": device.hami_type}
    values = [
        ("memory_total", "bytes", None if r.hbm_total_mib is None else r.hbm_total_mib * MIB),
        ("memory_used", "bytes", None if r.hbm_used_mib is None else r.hbm_used_mib * MIB),
        ("utilization", "ratio", None if r.aicore_percent is None else r.aicore_percent / 100),
        ("power", "watts", r.power_w),
        ("temperature", "celsius", r.temp_c),
    ]
    return [MetricSample(name=n, value=float(v), unit=u, device_uuid=device.uuid, labels=labels)
            for n, u, v in values if v is not None]


def vnpu_samples(port: NpuSmi, device: Device) -> list[MetricSample]:
    """One ``memory_limit`` sample per vNPU on the chip (its template's memory), scope ``allocation``."""
    if device.attributes.get("soft_mode"):
        return []
    # the node's templates (its vnpus section may change them or add the chip), else the built-in table's
    chip = by_chip_name(str(device.attributes.get("chip_name") or device.model))
    sizes = {t.name: t.memory for t in chip.templates} if chip else {}
    sizes |= {t.name: t.memory_mib for t in (device.partition.templates if device.partition else [])}
    npu, chip_id = device.attributes.get("npu_id"), device.attributes.get("chip_id")
    if not sizes or not isinstance(npu, int) or not isinstance(chip_id, int):
        return []
    try:
        vnpus = port.vnpus(npu, chip_id)
    except ToolError:
        return []
    labels = {"device_index": str(device.index), "device_type": device.hami_type}
    out = []
    for v in vnpus:
        mib = sizes.get(v.template)
        if mib is not None:
            out.append(MetricSample(name="memory_limit", value=float(mib * MIB), unit="bytes",
                                    device_uuid=device.uuid, scope="allocation",
                                    labels=labels | {"vnpu_id": str(v.vnpu_id), "template": v.template}))
    return out
