"""HAMi's node-monitor metric names and labels (HAMi v2.10 ``cmd/vGPUmonitor/metrics.go``), in one table.

New ``hami_*`` names with snake_case labels are always served; the legacy names (HAMi <= v2.8) are served
in addition with ``--legacy-metrics``, exactly as HAMi's switch does. Memory is in bytes; the ``_ratio``
series are in percent 0..100, as HAMi serves them (its help text: "utilization ratio (0-100)").
"""

from __future__ import annotations

from dataclasses import dataclass

#: Host (whole device) labels: new and legacy spellings, in the same order.
HOST = ("node", "device_index", "device_uuid", "device_type")
HOST_LEGACY = ("nodeid", "deviceidx", "deviceuuid", "devicetype")
#: Container labels.
CTR = ("namespace", "pod", "container", "vdevice_index", "device_uuid")
CTR_LEGACY = ("podnamespace", "podname", "ctrname", "vdeviceid", "deviceuuid")
MIG_EXTRA = ("mig_uuid", "profile", "gpu_instance_id", "compute_instance_id")
BUILD_INFO = ("version", "revision", "build_date", "go_version", "compiler", "platform")


@dataclass(frozen=True)
class Series:
    """One HAMi series: its name, labels, help, and the legacy twin (None when HAMi has none)."""

    name: str
    labels: tuple[str, ...]
    help: str
    legacy: str | None = None
    legacy_labels: tuple[str, ...] = ()


HOST_MEMORY_USED = Series("hami_host_gpu_memory_used_bytes", HOST, "GPU device memory usage in bytes",
                          "HostGPUMemoryUsage", HOST_LEGACY)
HOST_UTILIZATION = Series("hami_host_gpu_utilization_ratio", HOST, "GPU core utilization ratio (0-100)",
                          "HostCoreUtilization", HOST_LEGACY)
HOST_MEMORY_CONTROLLER = Series("hami_host_gpu_memory_controller_utilization_ratio", HOST[1:],
                                "GPU memory controller utilization ratio (0-100)")
VGPU_MEMORY_USED = Series("hami_vgpu_memory_used_bytes", CTR, "vGPU device memory usage in bytes",
                          "vGPU_device_memory_usage_in_bytes", CTR_LEGACY)
VGPU_MEMORY_LIMIT = Series("hami_vgpu_memory_limit_bytes", CTR, "vGPU device memory limit in bytes",
                           "vGPU_device_memory_limit_in_bytes", CTR_LEGACY)
CTR_DEVICE_MEMORY = Series("hami_container_device_memory_bytes", CTR, "Container device memory usage in bytes")
CTR_UTILIZATION = Series("hami_container_device_utilization_ratio", CTR,
                         "Container device utilization ratio (0-100)", "Device_utilization_desc_of_container",
                         CTR_LEGACY)
CTR_LAST_KERNEL = Series("hami_container_last_kernel_elapsed_seconds", CTR,
                         "Seconds since the container's last kernel launch", "Device_last_kernel_of_container",
                         CTR_LEGACY)
MIG_DEVICE_INFO = Series("hami_mig_device_info", CTR + MIG_EXTRA, "Hardware partition instance of a container (1 per instance)",
                         "MigInfo", CTR_LEGACY + ("instanceid",))
BUILD = Series("hami_build_info", BUILD_INFO, "Build information of the exporter (always 1)")

ALL = (HOST_MEMORY_USED, HOST_UTILIZATION, HOST_MEMORY_CONTROLLER, VGPU_MEMORY_USED, VGPU_MEMORY_LIMIT,
       CTR_DEVICE_MEMORY, CTR_UTILIZATION, CTR_LAST_KERNEL, MIG_DEVICE_INFO, BUILD)


def served_names(legacy: bool) -> set[str]:
    """Every metric name the node monitor can serve with or without the legacy switch."""
    out = {s.name for s in ALL}
    if legacy:
        out |= {s.legacy for s in ALL if s.legacy}
    return out
