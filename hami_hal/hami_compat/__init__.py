"""HAMi's Kubernetes wire format, in one place: every HAMi annotation is encoded and decoded here.

- :mod:`.register`: node register annotations (JSON ≥ v2.8 and legacy CSV) → devices.
- :mod:`.allocation`: pod allocation strings, per family (CommonWord) keys.
- :mod:`.handshake`: the node handshake value.
- :mod:`.nodelock`: the node lock value.
- :mod:`.keys`: vendor-independent keys and the per-family key lookup.
- :mod:`.placed_request`: hami-hal's record of the request annotations a pod was placed with.

The CLI, the scheduler and the node agent use only this package for HAMi annotations.
"""

from .allocation import (
    AllocatedDevice,
    allocation_annotations,
    allocation_from_pod,
    allocation_inputs,
    decode_allocation,
    encode_allocation,
)
from .handshake import Handshake, decode_handshake, encode_handshake
from .keys import (
    BIND_PHASE,
    BIND_TIME,
    DEVICE_CORDON,
    HAL_INVENTORY,
    NODE_LOCK,
    NODE_POLICY,
    PLACED_REQUEST,
    VGPU_NODE,
    VGPU_TIME,
    allocation_keys,
    families_by_key,
    family_keys,
    family_request_keys,
    request_pod_keys,
)
from .nodelock import NodeLock, decode_lock, encode_lock
from .placed_request import decode_placed, encode_placed, request_changes
from .register import (
    RegisteredDevice,
    decode_register,
    encode_register_csv,
    encode_register_json,
    from_device,
    model_from_type,
    node_inputs,
    parse_node,
    parse_node_devices,
    to_device,
)

__all__ = [
    "BIND_PHASE", "BIND_TIME", "DEVICE_CORDON", "HAL_INVENTORY", "NODE_LOCK", "NODE_POLICY", "PLACED_REQUEST",
    "VGPU_NODE", "VGPU_TIME", "AllocatedDevice", "Handshake", "NodeLock", "RegisteredDevice", "allocation_annotations",
    "allocation_from_pod", "allocation_inputs", "allocation_keys", "decode_allocation", "decode_handshake",
    "decode_lock", "decode_placed", "decode_register", "encode_allocation", "encode_handshake", "encode_lock",
    "encode_placed", "encode_register_csv", "encode_register_json", "families_by_key", "from_device", "family_keys",
    "family_request_keys", "request_changes", "request_pod_keys", "model_from_type", "node_inputs", "parse_node",
    "parse_node_devices", "to_device",
]
