"""HAMi's Kubernetes annotations as the scheduler uses them: a view of :mod:`hami_hal.hami_compat`.

The wire format lives in one place, the core's ``hami_compat`` package; this module only re-exports
the names the scheduler modules import, so there is no second encoder or decoder here.
"""

from __future__ import annotations

from hami_hal.hami_compat import (
    BIND_PHASE,
    BIND_TIME,
    DEVICE_CORDON,
    HAL_INVENTORY,
    NODE_LOCK,
    NODE_POLICY,
    PLACED_REQUEST,
    VGPU_NODE,
    VGPU_TIME,
    allocation_annotations,
    allocation_from_pod,
    allocation_inputs,
    allocation_keys,
    decode_allocation,
    encode_allocation,
    encode_placed,
    node_inputs,
    parse_node,
    parse_node_devices,
    request_pod_keys,
)

__all__ = [
    "BIND_PHASE", "BIND_TIME", "DEVICE_CORDON", "HAL_INVENTORY", "NODE_LOCK", "NODE_POLICY", "PLACED_REQUEST",
    "VGPU_NODE", "VGPU_TIME", "allocation_annotations", "allocation_from_pod", "allocation_inputs", "allocation_keys",
    "decode_allocation", "encode_allocation", "encode_placed", "node_inputs", "parse_node", "parse_node_devices", "request_pod_keys",
]
