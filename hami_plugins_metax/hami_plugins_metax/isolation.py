"""Container edits for MetaX: the visible GPUs for the MACA runtime, and the driver's device nodes
(``/dev/mxcd`` control node, the DRM nodes ``/dev/dri/card<i>`` and ``/dev/dri/renderD<128+i>``; that DRM
numbering follows the GPU index is our assumption, to be checked on hardware). Enforcing an sGPU's vcore/vmemory and
QoS is the MetaX sGPU runtime's job (closed); it reads HAMi's ``metax-tech.com/gpu-devices-allocated``
pod annotation, which the core's HAMi codec writes."""

from __future__ import annotations

from hami_hal.models import ContainerAllocation, ContainerEdits, Device, DeviceNode

VISIBLE_ENV = "MACA_VISIBLE_DEVICES"


def container_edits(allocation: ContainerAllocation, devices: list[Device]) -> ContainerEdits | None:
    by_uuid = {d.uuid: d for d in devices}
    cards = sorted({by_uuid[s.uuid].index for s in allocation.slices if s.uuid in by_uuid})
    if not cards:
        return None
    nodes = [DeviceNode(path="/dev/mxcd")]
    nodes += [n for i in cards for n in (DeviceNode(path=f"/dev/dri/card{i}"), DeviceNode(path=f"/dev/dri/renderD{128 + i}"))]
    return ContainerEdits(env={VISIBLE_ENV: ",".join(str(i) for i in cards)}, device_nodes=nodes)
