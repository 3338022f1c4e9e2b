"""Container edits that enforce NVIDIA slices, as HAMi's device plugin returns them (hami-compat.md §9).

Shares (hami-core): ``NVIDIA_VISIBLE_DEVICES`` = the GPU UUIDs in slice order,
``CUDA_DEVICE_MEMORY_LIMIT_<i>=<MiB>m`` per GPU, ``CUDA_DEVICE_SM_LIMIT`` = the first GPU's percent,
``CUDA_DEVICE_MEMORY_SHARED_CACHE`` = ``<hook>/vgpu/<uuid>.cache``, ``CUDA_TASK_PRIORITY`` from
``nvidia.com/priority`` (HAMi's webhook sets it; here it travels with the slice),
``GPU_CORE_UTILIZATION_POLICY`` from ``gpuCorePolicy``/``disableCoreLimit`` (NvidiaConfig.core_policy_env; HAMi's
webhook sets the former, here it travels with the slice too), and the interposer mounts
(libvgpu.so, the per-container cache folder, the vgpulock folder, /etc/ld.so.preload), plus, where the node
agent publishes it, the process census folder read-only with ``HAMI_PROC_CENSUS_DIR`` (proc_census.py: what
bounds the neighbours a charge counts in a pod's own PID namespace). The cache folder is
``allocation.state_dir`` when the node agent made one (HAMi's ``<hook>/vgpu/containers/<podUID>_<ctr>``).
MIG slices expose the MIG device (its UUID) and set no HAMi-core variable. As in HAMi, a whole-GPU
slice still gets its (full-size) limits: HAMi-core treats 100 % as "no limit".
"""

from __future__ import annotations

import uuid as uuidlib

from hami_hal.errors import HalError
from hami_hal.models import ContainerAllocation, ContainerEdits, Device, DeviceNode, Mount

from . import mig, proc_census
from .config import NvidiaConfig
from .nvml_port import NvmlPort


def _interposer_library(hook: str) -> str:
    """Host path of libvgpu.so: the package's interposer build when present, else HAMi's hook path."""
    try:
        from .interposer import library_path
    except ImportError:
        return f"{hook}/vgpu/libvgpu.so"
    try:
        path = library_path()
    except Exception:  # noqa: BLE001 - a broken optional build must not break Allocate
        path = None
    return str(path) if path is not None else f"{hook}/vgpu/libvgpu.so"


def _device_nodes(devices: list[Device]) -> list[DeviceNode]:
    nodes = [DeviceNode(path="/dev/nvidiactl"), DeviceNode(path="/dev/nvidia-uvm"),
             DeviceNode(path="/dev/nvidia-uvm-tools")]
    for d in devices:
        minor = d.attributes.get("minor_number")
        if isinstance(minor, int):
            nodes.append(DeviceNode(path=f"/dev/nvidia{minor}"))
    return nodes


def container_edits(
    allocation: ContainerAllocation, devices: list[Device], cfg: NvidiaConfig, port: NvmlPort | None = None,
    *, cache_id: str | None = None, census_dir: str | None = None,
) -> ContainerEdits | None:
    """Edits for this container's NVIDIA slices; None when it holds none."""
    slices = allocation.slices
    if not slices:
        return None
    by_uuid = {d.uuid: d for d in devices}
    missing = [s.uuid for s in slices if s.uuid not in by_uuid]
    if missing:
        raise HalError(f"allocation names GPU {missing[0]!r}, which is not on this node")
    used = [by_uuid[s.uuid] for s in slices]
    if any(s.template for s in slices):
        return _mig_edits(allocation, used, port)
    env: dict[str, str] = {"NVIDIA_VISIBLE_DEVICES": ",".join(s.uuid for s in slices)}
    hook = cfg.hook_path.rstrip("/")
    cache = cache_id or str(uuidlib.uuid4())
    for i, s in enumerate(slices):
        env[f"CUDA_DEVICE_MEMORY_LIMIT_{i}"] = f"{s.memory_mib}m"
    env["CUDA_DEVICE_SM_LIMIT"] = str(slices[0].compute_percent)
    env["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = f"{hook}/vgpu/{cache}.cache"
    if cfg.device_memory_scaling > 1:
        env["CUDA_OVERSUBSCRIBE"] = "true"
    policy = cfg.core_policy_env()  # gpuCorePolicy force/disable, else disableCoreLimit (HAMi's precedence)
    if policy is not None:
        env["GPU_CORE_UTILIZATION_POLICY"] = policy
    priorities = {s.priority for s in slices if s.priority is not None}
    if priorities:
        env["CUDA_TASK_PRIORITY"] = str(min(priorities))
    if cfg.lib_cuda_log_level is not None:
        env["LIBCUDA_LOG_LEVEL"] = str(cfg.lib_cuda_log_level)
    rw = ["rw", "nosuid", "nodev", "bind"]
    mounts = [
        Mount(host_path=_interposer_library(hook), container_path=f"{hook}/vgpu/libvgpu.so"),
        Mount(host_path=allocation.state_dir or f"{hook}/vgpu/containers/{cache}_{allocation.name}",
              container_path=f"{hook}/vgpu", options=rw),
        Mount(host_path="/tmp/vgpulock", container_path="/tmp/vgpulock", options=rw),
        Mount(host_path=f"{hook}/vgpu/ld.so.preload", container_path="/etc/ld.so.preload"),
    ]
    if census_dir:  # read-only: the interposer trusts it only where a root tenant cannot write it
        env[proc_census.ENV_DIR] = census_dir
        env[proc_census.ENV_REQUIRED] = "1"  # given the census, its absence must not lift the bound
        mounts.append(Mount(host_path=census_dir, container_path=census_dir,
                            options=["ro", "nosuid", "nodev", "noexec", "bind"]))
    return ContainerEdits(env=env, mounts=mounts, device_nodes=_device_nodes(used))


def _mig_edits(allocation: ContainerAllocation, used: list[Device], port: NvmlPort | None) -> ContainerEdits:
    ids = []
    for s, dev in zip(allocation.slices, used, strict=True):
        if not s.template:
            raise HalError(f"container {allocation.name!r} mixes MIG and shared slices, which cannot be enforced")
        inst = mig.find_instance(port, dev, s) if port is not None else None
        if inst is None or not inst.uuid:
            start = s.placement.start if s.placement else "?"
            raise HalError(f"MIG slice {s.template} at placement {start} on {s.uuid} has no instance yet; "
                           "create it first (hami_hal_create_partition)")
        ids.append(inst.uuid)
    return ContainerEdits(env={"NVIDIA_VISIBLE_DEVICES": ",".join(ids)}, device_nodes=_device_nodes(used))
