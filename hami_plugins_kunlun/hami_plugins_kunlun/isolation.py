"""Container edits for the Kunlunxin runtime: the cards (device nodes), the runtime mount and the env the
vendor's container toolkit reads. Isolation of a vXPU slice is the vendor runtime's job (closed
``vxpu-device-plugin`` + driver); these edits only make the chosen cards visible."""

from __future__ import annotations

from hami_hal.models import ContainerAllocation, ContainerEdits, Device, DeviceNode, Mount

#: Env naming the visible cards for the Kunlunxin runtime.
VISIBLE_ENV = "XPU_VISIBLE_DEVICES"
RUNTIME_DIR = "/usr/local/xpu"


def container_edits(allocation: ContainerAllocation, devices: list[Device]) -> ContainerEdits | None:
    by_uuid = {d.uuid: d for d in devices}
    cards = sorted({by_uuid[s.uuid].index for s in allocation.slices if s.uuid in by_uuid})
    if not cards:
        return None
    env = {VISIBLE_ENV: ",".join(str(i) for i in cards)}
    nodes = [DeviceNode(path=f"/dev/xpu{i}") for i in cards] + [DeviceNode(path="/dev/xpuctrl")]
    return ContainerEdits(env=env, device_nodes=nodes,
                          mounts=[Mount(host_path=RUNTIME_DIR, container_path=RUNTIME_DIR)])
