"""Container edits for Ascend slices, as HAMi's ascend-device-plugin returns them (``internal/server/allocate.go``).

Hard (template) mode: ``ASCEND_VISIBLE_DEVICES=<phy ids>`` and, for a vNPU, ``ASCEND_VNPU_SPECS=<template>``;
the Ascend Docker Runtime (RuntimeClass ``ascend``) creates the vNPU and its device nodes when the
container starts, so no ``/dev/davinci*`` node is added here (that would expose the whole chip).

Soft mode (hami-vnpu-core): the physical chips' device nodes, the limiter's variables
(``NPU_GLOBAL_SHM_PATH``, ``NPU_LOCAL_SHM_PATH``, ``NPU_MEM_QUOTA`` in MB, ``NPU_PRIORITY`` = the ``-core``
percent) and its mounts (``libvnpu.so`` preload, shared regions, npu-smi and driver files).
"""

from __future__ import annotations

import re

from hami_hal.errors import HalError
from hami_hal.models import ContainerAllocation, ContainerEdits, Device, DeviceNode, Mount

from .partitions import WHOLE_CARD

SOFT_ROOT = "/usr/local/hami-vnpu-core"
SHARED_REGION = "/usr/local/hami-shared-region"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _phy(dev: Device) -> int:
    phy = dev.attributes.get("phy_id")
    if not isinstance(phy, int):
        raise HalError(f"Ascend device {dev.uuid} has no physical id")
    return phy


def container_edits(allocation: ContainerAllocation, devices: list[Device]) -> ContainerEdits | None:
    slices = allocation.slices
    if not slices:
        return None
    by_uuid = {d.uuid: d for d in devices}
    missing = [s.uuid for s in slices if s.uuid not in by_uuid]
    if missing:
        raise HalError(f"allocation names NPU {missing[0]!r}, which is not on this node")
    used = [by_uuid[s.uuid] for s in slices]
    phys = [_phy(d) for d in used]
    env = {"ASCEND_VISIBLE_DEVICES": ",".join(str(p) for p in phys)}
    if not any(d.attributes.get("soft_mode") for d in used):
        vnpus = [s.template for s in slices if s.template and s.template != WHOLE_CARD]
        if vnpus:
            if len(slices) != 1:
                raise HalError("a vNPU template slice must be the container's only Ascend device")
            env["ASCEND_VNPU_SPECS"] = vnpus[0]
        return ContainerEdits(env=env)
    first = slices[0]
    ctr = _SAFE.sub("_", allocation.name)[:63] or "container"
    env |= {
        "NPU_GLOBAL_SHM_PATH": f"/hami-shared-region/{phys[0]}_global_registry",
        "NPU_LOCAL_SHM_PATH": "/hami-vnpu-shmem/vnpu_local_shmem",
        "NPU_MEM_QUOTA": str(first.memory_mib),
        "NPU_PRIORITY": str(first.compute_percent),
    }
    rw = ["rw", "nosuid", "nodev", "bind"]
    mounts = [
        Mount(host_path=f"{SOFT_ROOT}/ld.so.preload", container_path="/etc/ld.so.preload"),
        Mount(host_path=SOFT_ROOT, container_path="/hami-vnpu-core"),
        Mount(host_path=SHARED_REGION, container_path="/hami-shared-region", options=rw),
        Mount(host_path=f"{SOFT_ROOT}/containers/{allocation.index}_{ctr}", container_path="/hami-vnpu-shmem",
              options=rw),
        Mount(host_path="/usr/local/Ascend/driver/tools/npu-smi", container_path="/usr/local/bin/npu-smi"),
        Mount(host_path="/etc/ascend_install.info", container_path="/etc/ascend_install.info"),
        Mount(host_path="/usr/local/Ascend/driver/lib64/driver", container_path="/usr/local/Ascend/driver/lib64/driver"),
        Mount(host_path="/usr/local/Ascend/driver/version.info", container_path="/usr/local/Ascend/driver/version.info"),
    ]
    nodes = [DeviceNode(path=f"/dev/davinci{p}") for p in phys]
    nodes += [DeviceNode(path=p) for p in ("/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc")]
    return ContainerEdits(env=env, mounts=mounts, device_nodes=nodes)
