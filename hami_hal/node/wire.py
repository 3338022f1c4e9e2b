"""The node agent's only door to HAMi's annotation formats: every encode/decode goes to the core codec.

Kept as one small module so the agent never grows its own copy of a wire format; the functions here only
adapt names and shapes for the agent.
"""

from __future__ import annotations

# TEMPORARY until the core codec (hami_hal/hami_compat) lands: the scheduler's decoder is the one decoder.
from hami_scheduler.annotations import BIND_PHASE, BIND_TIME, HAL_INVENTORY, NODE_LOCK, VGPU_NODE  # noqa: F401
from hami_scheduler.annotations import decode_allocation as _decode

from ..models import Device, VendorInfo

Segments = list[list[tuple[str, str, int, int]]]


def decode_to_allocate(value: str, key: str) -> Segments:
    """Per container (positional, init first): the (uuid, type, memory MiB, cores %) entries."""
    return _decode(value, key)


def trimmed(value: str, key: str, container_index: int) -> str:
    """The to-allocate value with one container's segment emptied (what HAMi's plugin patches back)."""
    segs = decode_to_allocate(value, key)
    out = []
    for i, seg in enumerate(segs):
        out.append("" if i == container_index else "".join(f"{u},{t},{m},{c}:" for u, t, m, c in seg))
    return "".join(s + ";" for s in out)


def node_register(vendor: VendorInfo, devices: list[Device]) -> dict[str, str]:
    """HAMi register and handshake annotations of one vendor for these devices."""
    import json

    keys = vendor.annotations
    items = []
    for d in devices:
        part = d.partition
        items.append({k: v for k, v in {
            "id": d.uuid, "index": d.index, "count": part.max_slots if part else 1,
            "devmem": part.memory_mib if part else d.memory_mib, "devcore": part.compute_percent if part else 100,
            "type": d.hami_type, "numa": d.numa_node or 0, "mode": d.mode, "health": d.healthy,
        }.items() if v not in (0, False, None, "")})
    out = {}
    if keys.node_register:
        out[keys.node_register] = json.dumps(items, separators=(",", ":"))
    if keys.node_handshake:
        from datetime import UTC, datetime

        out[keys.node_handshake] = "Reported_" + datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return out


def lock_holder(value: str | None) -> tuple[str, str] | None:
    """(namespace, pod) named by HAMi's node lock ``<RFC3339>,<ns>,<pod>``; None for none or a legacy lock."""
    parts = (value or "").split(",")
    return (parts[1], parts[2]) if len(parts) == 3 and parts[1] and parts[2] else None
