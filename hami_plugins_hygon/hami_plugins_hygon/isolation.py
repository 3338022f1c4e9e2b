"""Container edits for Hygon slices (HAMi's dcu plugin and Hygon's k8s-hcu-device-plugin):
``HIP_VISIBLE_DEVICES`` (container-local indexes 0..n-1, one per allocated DCU), the DCU's DRM nodes
(``/dev/dri/card<N>``, ``/dev/dri/renderD<128+N>``), ``/dev/kfd`` and ``/dev/mkfd``, the driver tree
``/opt/hyhal`` (read-only), and for a vDCU its config ``/etc/vdev/vdev<N>.conf`` at
``/etc/vdev/docker/vdev<N>.conf`` (the index travels as slice attribute ``vdevice`` once created)."""

from __future__ import annotations

from hami_hal.digits import is_digits
from hami_hal.errors import HalError
from hami_hal.models import ContainerAllocation, ContainerEdits, Device, DeviceNode, Mount

RENDER_BASE = 128


def container_edits(allocation: ContainerAllocation, devices: list[Device]) -> ContainerEdits | None:
    slices = allocation.slices
    if not slices:
        return None
    by_uuid = {d.uuid: d for d in devices}
    missing = [s.uuid for s in slices if s.uuid not in by_uuid]
    if missing:
        raise HalError(f"allocation names DCU {missing[0]!r}, which is not on this node")
    nodes = [DeviceNode(path="/dev/kfd"), DeviceNode(path="/dev/mkfd")]
    mounts = [Mount(host_path="/opt/hyhal", container_path="/opt/hyhal")]
    for s in slices:
        idx = by_uuid[s.uuid].index
        nodes += [DeviceNode(path=f"/dev/dri/card{idx}"), DeviceNode(path=f"/dev/dri/renderD{RENDER_BASE + idx}")]
        vdev = s.attributes.get("vdevice")
        if vdev is not None:
            if not is_digits(str(vdev)) or int(vdev) >= 1000:
                raise HalError(f"slice on DCU {idx} has a bad vdevice {vdev!r}")
            mounts.append(Mount(host_path=f"/etc/vdev/vdev{int(vdev)}.conf",
                                container_path=f"/etc/vdev/docker/vdev{int(vdev)}.conf"))
    env = {"HIP_VISIBLE_DEVICES": ",".join(str(i) for i in range(len(slices)))}
    return ContainerEdits(env=env, mounts=mounts, device_nodes=nodes)
