"""Create and destroy MIG instances for template slices, through the NVML port.

Creation needs MIG mode already enabled on the GPU; hami-hal never toggles MIG mode (that resets the
GPU). When it cannot create, it says why in one line instead of pretending.
"""

from __future__ import annotations

from hami_hal.errors import HalError
from hami_hal.models import Device, DeviceSlice

from .nvml_port import NvmlCode, NvmlFailure, NvmlPort


def _profile_for(device: Device, template: str) -> dict:
    for prof in device.attributes.get("mig_profiles") or []:
        if prof["name"] == template:
            return prof
    raise HalError(f"MIG profile {template!r} is not offered by {device.uuid} ({device.model})")


def create(port: NvmlPort, device: Device, slice: DeviceSlice) -> dict:
    """Create the GPU instance + compute instance for ``slice``; returns HAMi's MIG allocation fields."""
    where = f"cannot create MIG instance on {device.uuid}"
    if not slice.template or slice.placement is None:
        raise HalError(f"{where}: the slice names no MIG profile and placement")
    if not device.attributes.get("mig_capable"):
        raise HalError(f"{where}: {device.model} does not support MIG")
    if device.mode != "mig":
        raise HalError(f"{where}: MIG mode is disabled on this GPU (enable it with 'nvidia-smi -i "
                       f"{device.index} -mig 1'; hami-hal never changes MIG mode)")
    prof = _profile_for(device, slice.template)
    try:
        index = port.index_of(device.uuid)
        inst = port.create_mig_instance(index, int(prof["profileIndex"]), slice.placement.start,
                                        slice.placement.size)
    except NvmlFailure as err:
        if err.code is NvmlCode.INSUFFICIENT_RESOURCES:
            raise HalError(f"{where}: placement {slice.placement.start}+{slice.placement.size} of "
                           f"{slice.template} is taken or the GPU is full ({err})") from None
        raise HalError(f"{where}: {err}") from None
    return {
        "gpuUUID": device.uuid,
        "profile": slice.template,
        "placement": {"start": inst.start, "size": inst.size},
        "migUUID": inst.uuid,
        "gpuInstanceID": inst.gpu_instance_id,
        "computeInstanceID": inst.compute_instance_id,
    }


def destroy(port: NvmlPort, device: Device, handle: dict) -> bool:
    """Destroy the instance ``create`` returned; True when it is gone (also when already gone)."""
    try:
        gi, ci = int(handle["gpuInstanceID"]), int(handle["computeInstanceID"])
    except (KeyError, TypeError, ValueError):
        raise HalError(f"MIG handle {handle!r} lacks gpuInstanceID/computeInstanceID") from None
    try:
        port.destroy_mig_instance(port.index_of(device.uuid), gi, ci)
    except NvmlFailure as err:
        if err.code is NvmlCode.NOT_FOUND:
            return True
        raise HalError(f"cannot destroy MIG instance {gi}/{ci} on {device.uuid}: {err}") from None
    return True


def find_instance(port: NvmlPort, device: Device, slice: DeviceSlice):
    """The live instance at the slice's placement (for container edits), or None."""
    if slice.placement is None:
        return None
    prof = _profile_for(device, slice.template or "")
    for inst in port.mig_instances(port.index_of(device.uuid)):
        if inst.profile_id == int(prof["profileId"]) and inst.start == slice.placement.start:
            return inst
    return None
