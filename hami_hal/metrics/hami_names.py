"""HAMi's metric names and labels, in one place: the node monitor (HAMi v2.10 ``cmd/vGPUmonitor/metrics.go``,
served by ``hami node``) and the scheduler's allocation view (``cmd/scheduler/metrics.go``, served by
``hami-scheduler serve``).

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


# ---- the scheduler's allocation view (HAMi ``cmd/scheduler/metrics.go``, served on :9395) ----------------
#: Every scheduler series carries the constant label zone="vGPU" (last here, in both spellings).
ZONE = "vGPU"
#: Base labels (node, device_uuid, device_index, device_type) and their legacy spelling.
SCHED = ("node", "device_uuid", "device_index", "device_type")
SCHED_LEGACY = ("nodeid", "deviceuuid", "deviceidx", "devicetype")
SCHED_CTR = ("namespace", "node", "pod", "container_index", "device_uuid")
SCHED_CTR_LEGACY = ("podnamespace", "nodename", "podname", "containeridx", "deviceuuid")
SCHED_MIG = ("node", "device_uuid", "device_index", "mig_uuid", "profile", "gpu_instance_id", "compute_instance_id",
             "placement_start", "placement_size")


def _z(labels: tuple[str, ...]) -> tuple[str, ...]:
    return labels + ("zone",)


GPU_MEMORY_LIMIT = Series("hami_gpu_memory_limit_bytes", _z(SCHED), "Device memory the scheduler hands out, in bytes",
                          "GPUDeviceMemoryLimit", _z(SCHED_LEGACY))
GPU_CORE_LIMIT = Series("hami_gpu_core_limit_ratio", _z(SCHED), "Device compute the scheduler hands out (percent)",
                        "GPUDeviceCoreLimit", _z(SCHED_LEGACY))
GPU_MEMORY_ALLOCATED = Series("hami_gpu_memory_allocated_bytes", _z(SCHED + ("device_cores",)),
                              "Device memory allocated to pods, in bytes", "GPUDeviceMemoryAllocated",
                              _z(SCHED_LEGACY + ("devicecores",)))
GPU_SHARED_COUNT = Series("hami_gpu_shared_count", _z(SCHED), "Containers sharing the device", "GPUDeviceSharedNum",
                          _z(SCHED_LEGACY))
GPU_CORE_ALLOCATED = Series("hami_gpu_core_allocated_ratio", _z(SCHED), "Device compute allocated to pods (percent)",
                            "GPUDeviceCoreAllocated", _z(SCHED_LEGACY))
NODE_GPU_OVERVIEW = Series("hami_node_gpu_overview", _z(SCHED + ("device_cores", "device_memory_limit")),
                           "Device memory allocated, with allocated cores and the memory limit as labels",
                           "nodeGPUOverview", _z(SCHED_LEGACY + ("devicecores", "devicememorylimit")))
NODE_GPU_MEMORY_RATIO = Series("hami_node_gpu_memory_allocated_ratio", _z(SCHED),
                               "Allocated device memory / device memory (0-1)", "nodeGPUMemoryPercentage",
                               _z(SCHED_LEGACY[:3]))
NODE_GPU_MIG_INSTANCE = Series("hami_node_gpu_mig_instance_info", _z(SCHED_MIG),
                               "Hardware partition instance the scheduler placed (1 per instance)",
                               "nodeGPUMigInstance", _z(SCHED_LEGACY[:3] + ("migname",)))
VGPU_MEMORY_ALLOCATED = Series("hami_vgpu_memory_allocated_bytes", _z(SCHED_CTR),
                               "Device memory allocated to one container, in bytes", "vGPUMemoryAllocated",
                               _z(SCHED_CTR_LEGACY))
VGPU_CORE_ALLOCATED = Series("hami_vgpu_core_allocated_ratio", _z(SCHED_CTR),
                             "Device compute allocated to one container (percent)", "vGPUCoreAllocated",
                             _z(SCHED_CTR_LEGACY))

SCHEDULER = (GPU_MEMORY_LIMIT, GPU_CORE_LIMIT, GPU_MEMORY_ALLOCATED, GPU_SHARED_COUNT, GPU_CORE_ALLOCATED,
             NODE_GPU_OVERVIEW, NODE_GPU_MEMORY_RATIO, NODE_GPU_MIG_INSTANCE, VGPU_MEMORY_ALLOCATED,
             VGPU_CORE_ALLOCATED, BUILD)


def served_names(legacy: bool, table: tuple[Series, ...] = ALL) -> set[str]:
    """Every metric name ``table`` (default: the node monitor) serves with or without the legacy switch."""
    out = {s.name for s in table}
    if legacy:
        out |= {s.legacy for s in table if s.legacy}
    return out
