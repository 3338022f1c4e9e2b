"""The node agent's only door to HAMi's annotation formats: everything goes through the core codec
(:mod:`hami_hal.hami_compat`). This module only adapts the agent's shapes (families, devices) to it; it
never formats or parses an annotation value itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import InputError
from ..hami_compat import (
    BIND_PHASE,
    BIND_TIME,
    HAL_INVENTORY,
    NODE_LOCK,
    PLACED_REQUEST,
    VGPU_NODE,
    AllocatedDevice,
    decode_allocation,
    decode_handshake,
    decode_lock,
    decode_placed,
    encode_allocation,
    encode_handshake,
    encode_register_json,
    families_by_key,
    family_keys,
    family_request_keys,
    from_device,
    request_changes,
)
from ..models import AnnotationKeys, ContainerAllocation, Device, DeviceSlice, PodAllocation, VendorInfo

__all__ = ["BIND_PHASE", "BIND_TIME", "HAL_INVENTORY", "NODE_LOCK", "PLACED_REQUEST", "VGPU_NODE", "AllocatedDevice",
           "decode_to_allocate", "handshake_stale", "keys", "left_to_allocate", "lock_holder", "register_values",
           "reported", "request_changed", "trimmed"]

Segments = list[list[AllocatedDevice]]


def keys(family) -> AnnotationKeys:
    """The annotation keys of one agent family (its own, else its vendor's)."""
    return family_keys(family.vendor, family.resource)


def decode_to_allocate(value: str, key: str) -> Segments:
    """Per container (positional, init first): the devices still to allocate."""
    return decode_allocation(value, key)


def trimmed(value: str, key: str, container_index: int, vendor: str) -> str:
    """The to-allocate value with one container's segment emptied (what HAMi's plugin patches back)."""
    segs = decode_allocation(value, key)
    containers = [
        ContainerAllocation(name=f"c{i}", index=i, slices=[] if i == container_index else [
            DeviceSlice(vendor=vendor, uuid=d.uuid, device_index=0, common_word=d.type, memory_mib=d.memory_mib,
                        compute_percent=d.compute_percent) for d in seg])
        for i, seg in enumerate(segs)]
    alloc = PodAllocation(name="trim", node="-", containers=containers)
    return encode_allocation(alloc, None, len(segs))


def left_to_allocate(annotations: dict[str, str], vendors: list[VendorInfo]) -> bool:
    """Whether any installed family's to-allocate value of the pod still holds a device."""
    for key in families_by_key(vendors, "to_allocate"):
        value = annotations.get(key)
        if value and any(decode_allocation(value, key)):
            return True
    return False


def request_changed(annotations: dict[str, str], family) -> list[str]:
    """How the pod's request annotations read by ``family`` differ from what the scheduler placed (its
    ``hami-hal.io/placed-request`` record), one ``<field> <what happened>`` each; [] when they match or the pod
    carries no record (placed by HAMi's scheduler). A malformed record raises InputError."""
    if PLACED_REQUEST not in annotations:
        return []
    record = decode_placed(annotations[PLACED_REQUEST])
    return request_changes(record, annotations, family_request_keys(family.vendor, family.resource))


def lock_holder(value: str | None) -> tuple[str, str] | None:
    """(namespace, pod) named by HAMi's node lock; None for none, a legacy (time only) or unreadable lock."""
    if not value:
        return None
    try:
        lock = decode_lock(value)
    except InputError:
        return None
    return (lock.namespace, lock.name) if lock.namespace and lock.name else None


def register_values(families) -> dict[str, str]:
    """HAMi register annotation value per key, for the agent's families (families sharing a key share it)."""
    by_key: dict[str, list[Device]] = {}
    for fam in families:
        key = keys(fam).node_register
        if key:
            # a device whose memory cannot be read (a GPU lost to the driver) cannot be described in HAMi's
            # format (devmem >= 1) and would make readers reject the whole annotation: it is left out there
            # and stays, unhealthy, in the hami-hal inventory
            by_key.setdefault(key, []).extend(d for d in fam.devices if _registered_ok(d))
    return {key: encode_register_json([from_device(d) for d in devs]) for key, devs in by_key.items()}


def _registered_ok(d: Device) -> bool:
    part = d.partition
    return (part.memory_mib if part else d.memory_mib) >= 1


def handshake_keys(families) -> list[str]:
    return sorted({k for k in (keys(f).node_handshake for f in families) if k})


def handshake_stale(value: str | None) -> bool:
    """True when the node should (re)report: no handshake yet, the scheduler asked (state ``requesting``)
    or gave up (state ``deleted``), or the value is unreadable."""
    if not value:
        return True
    try:
        return decode_handshake(value).state != "reported"
    except InputError:
        return True


def reported(now: datetime | None = None) -> str:
    return encode_handshake("reported", now or datetime.now(UTC))
