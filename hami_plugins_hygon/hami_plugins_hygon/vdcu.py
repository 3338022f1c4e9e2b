"""Dynamic vDCUs through ``hy-smi virtual``: create one per shared slice, destroy it, and clean up the
vDCUs whose pod is gone (Hygon's HAMi-mode plugin and HAMi's ``RefreshContainerDevices``).

Compute units of a vDCU: ``max(1, ceil(cores% × CUs / 100))`` (k8s-hcu-device-plugin, the canonical rule;
the legacy dcu plugin used ``cores% × CUs // 100``). A whole-card slice (100 % compute and all memory)
gets no vDCU. After creating, the node side records ``<podUID>_<container>_<devIdx>_<vdevIdx>`` in the
mark folder (``record``), which ``cleanup`` reads back.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from hami_hal.errors import HalError, InputError
from hami_hal.models import Device, DeviceSlice
from hami_hal.vendor_tool import ToolError

from .hy_smi import HySmi

_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_MARK = re.compile(r"^([A-Za-z0-9-]{1,64})_([A-Za-z0-9-]{1,64})_(\d{1,3})_(\d{1,3})$")


def vdcu_compute_units(cores_percent: int, device_cus: int) -> int:
    return max(1, math.ceil(cores_percent * device_cus / 100))


def legacy_compute_units(cores_percent: int, device_cus: int) -> int:
    """The legacy dcu-vgpu-device-plugin's ``cu_count`` (integer division), for comparison only."""
    return cores_percent * device_cus // 100


def is_whole(device: Device, slice: DeviceSlice) -> bool:
    return slice.compute_percent >= 100 and slice.memory_mib >= device.memory_mib


def create(port: HySmi, device: Device, slice: DeviceSlice) -> dict:
    if is_whole(device, slice):
        return {"vdevice": None, "device": device.index}
    cus = device.compute_units
    if not cus:
        raise HalError(f"DCU {device.uuid} ({device.model}) has no known compute-unit count: no vDCU")
    want = vdcu_compute_units(slice.compute_percent, cus)
    try:
        vid = port.create_vdevice(device.index, want, slice.memory_mib)
    except ToolError as err:
        raise HalError(f"cannot create a vDCU ({want} CUs, {slice.memory_mib} MiB) on DCU {device.index}: {err}") from None
    return {"vdevice": vid, "device": device.index, "compute_units": want, "memory_mib": slice.memory_mib}


def destroy(port: HySmi, device: Device, handle: dict) -> bool:
    vid = handle.get("vdevice")
    if vid is None:
        return True
    if isinstance(vid, bool) or not isinstance(vid, int) or not 0 <= vid < 1000:
        raise HalError(f"vDCU handle has a bad vdevice {vid!r}")
    try:
        port.destroy_vdevice(vid)
    except ToolError as err:
        raise HalError(f"cannot destroy vDCU {vid} on DCU {device.index}: {err}") from None
    return True


def record(mark_dir: str | Path, pod_uid: str, container: str, device_index: int, vdevice: int) -> Path:
    """Write the mark file of a created vDCU (names are checked: they become a file name)."""
    for field, value in (("pod uid", pod_uid), ("container", container)):
        if not _NAME.match(value):
            raise InputError(field, value, "must be 1-64 letters, digits or '-'")
    path = Path(mark_dir) / f"{pod_uid}_{container}_{device_index}_{vdevice}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def cleanup(port: HySmi, mark_dir: str | Path, live_pods: set[str]) -> list[int]:
    """Destroy each marked vDCU whose pod is not in ``live_pods``; returns the vDCU indexes destroyed.
    A mark whose vDCU is already gone is removed; a file that is not a mark is left alone."""
    folder = Path(mark_dir)
    if not folder.is_dir():
        return []
    existing = {v.index for v in port.vdevices()}
    gone: list[int] = []
    for mark in sorted(folder.iterdir()):
        m = _MARK.match(mark.name)
        if not m or m.group(1) in live_pods:
            continue
        vid = int(m.group(4))
        if vid in existing:
            port.destroy_vdevice(vid)
            gone.append(vid)
        mark.unlink(missing_ok=True)
    return gone
