"""Container edits for the Cambricon runtime: the visible MLUs (``MLU_VISIBLE_DEVICES``, read by CNRT) and the
card device nodes (``/dev/cambricon_dev<i>`` and the control node ``/dev/cambricon_ctl``, the names the
vendor's device plugin exposes). An sMLU's memory/compute limit is created and enforced by the vendor's
cambricon-device-plugin from ``CAMBRICON_DSMLU_PROFILE``; these edits do not enforce it themselves."""

from __future__ import annotations

from hami_hal.models import ContainerAllocation, ContainerEdits, Device, DeviceNode

VISIBLE_ENV = "MLU_VISIBLE_DEVICES"


def container_edits(allocation: ContainerAllocation, devices: list[Device]) -> ContainerEdits | None:
    by_uuid = {d.uuid: d for d in devices}
    cards = sorted({by_uuid[s.uuid].index for s in allocation.slices if s.uuid in by_uuid})
    if not cards:
        return None
    nodes = [DeviceNode(path=f"/dev/cambricon_dev{i}") for i in cards] + [DeviceNode(path="/dev/cambricon_ctl")]
    return ContainerEdits(env={VISIBLE_ENV: ",".join(map(str, cards))}, device_nodes=nodes)
