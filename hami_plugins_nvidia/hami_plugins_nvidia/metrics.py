"""Device and per-process samples from NVML in base units, ready for a Prometheus exporter.

Names are vendor-neutral (the exporter adds the ``hami_`` prefix and units): ``memory_used`` /
``memory_total`` (bytes), ``utilization`` and ``memory_utilization`` (ratio 0..1), ``power`` and
``power_limit`` (watts), ``temperature`` (celsius), ``sm_clock`` (hertz); per process
``process_memory_used`` (bytes, label ``pid``). A reading NVML does not support is left out.
"""

from __future__ import annotations

from hami_hal.models import Device, MetricSample

from .nvml_port import NvmlCode, NvmlFailure, NvmlPort


def _labels(device: Device) -> dict[str, str]:
    return {"device_index": str(device.index), "device_type": device.hami_type}


def device_samples(port: NvmlPort, device: Device) -> list[MetricSample]:
    """Whole-GPU samples; empty for a GPU NVML can no longer read (health says why)."""
    try:
        index = port.index_of(device.uuid)
    except NvmlFailure:
        return []
    out: list[MetricSample] = []

    def add(name: str, unit: str, read) -> None:
        try:
            value = read()
        except NvmlFailure as err:
            if err.code is NvmlCode.GPU_LOST:
                raise
            return
        out.append(MetricSample(name=name, value=float(value), unit=unit, device_uuid=device.uuid,
                                labels=_labels(device)))

    try:
        mem = port.memory_info(index)
        add("memory_total", "bytes", lambda: mem[0])
        add("memory_used", "bytes", lambda: mem[1])
    except NvmlFailure as err:
        if err.code is NvmlCode.GPU_LOST:
            return []
    try:
        util = port.utilization(index)
        add("utilization", "ratio", lambda: util[0] / 100)
        add("memory_utilization", "ratio", lambda: util[1] / 100)
    except NvmlFailure as err:
        if err.code is NvmlCode.GPU_LOST:
            return []
    try:
        add("power", "watts", lambda: port.power_mw(index) / 1000)
        add("power_limit", "watts", lambda: port.power_limit_mw(index) / 1000)
        add("temperature", "celsius", lambda: port.temperature_c(index))
        add("sm_clock", "hertz", lambda: port.sm_clock_mhz(index) * 1_000_000)
    except NvmlFailure:
        return []
    return out


def process_samples(port: NvmlPort, device: Device) -> list[MetricSample]:
    """GPU memory per process where NVML attributes it (not inside most containers)."""
    try:
        procs = port.processes(port.index_of(device.uuid))
    except NvmlFailure:
        return []
    return [
        MetricSample(name="process_memory_used", value=float(p.used_bytes), unit="bytes",
                     device_uuid=device.uuid, scope="process", labels={**_labels(device), "pid": str(p.pid)})
        for p in procs if p.used_bytes is not None
    ]
