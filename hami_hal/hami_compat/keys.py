"""HAMi's annotation keys that belong to no vendor (hami-compat.md §4, §5.2), and the per-family keys.

HAMi keys register and allocation annotations per device family (CommonWord). A family may name its
own keys; otherwise it shares the vendor's. Every key lookup in the project goes through here.
"""

from __future__ import annotations

from ..models import AnnotationKeys, ResourceFamily, VendorInfo

#: Full hami-hal inventory (NodeInventory JSON), written by hami-hal's node side; preferred when present.
HAL_INVENTORY = "hami-hal.io/node-inventory"
VGPU_NODE = "hami.io/vgpu-node"
VGPU_TIME = "hami.io/vgpu-time"
BIND_PHASE = "hami.io/bind-phase"
BIND_TIME = "hami.io/bind-time"
NODE_LOCK = "hami.io/mutex.lock"
DEVICE_CORDON = "hami.io/device-cordon"
NODE_POLICY = "hami.io/node-scheduler-policy"
#: Label on the scheduler pods: which replica leads (``leader`` | ``follower``), as HAMi labels them.
SCHEDULER_ROLE = "hami.io/scheduler-role"
#: User pod annotations (hami-compat.md §3), read by the pod parser.
GPU_POLICY = "hami.io/gpu-scheduler-policy"
SCORING_WEIGHTS = "hami.io/device-scoring-weights"


def family_keys(vendor: VendorInfo, family: ResourceFamily) -> AnnotationKeys:
    """The keys of one family: its own where it names them, the vendor's otherwise (field by field)."""
    own = family.annotations
    if own is None:
        return vendor.annotations
    base = vendor.annotations
    return AnnotationKeys(
        node_register=own.node_register or base.node_register,
        node_handshake=own.node_handshake or base.node_handshake,
        to_allocate=own.to_allocate or base.to_allocate,
        allocated=own.allocated or base.allocated,
    )


def families_by_key(vendors: list[VendorInfo], field: str) -> dict[str, list[tuple[VendorInfo, ResourceFamily]]]:
    """``{annotation key: [(vendor, family), ...]}`` for one AnnotationKeys field, in vendor order.

    Families that share a key share one annotation value, so the encoders write it once with all of
    their slices and the decoders read it once.
    """
    out: dict[str, list[tuple[VendorInfo, ResourceFamily]]] = {}
    for vendor in vendors:
        for fam in vendor.resources:
            key = getattr(family_keys(vendor, fam), field)
            if key:
                out.setdefault(key, []).append((vendor, fam))
    return out


def allocation_keys(vendors: list[VendorInfo]) -> list[str]:
    """Every pod allocation key (to-allocate and allocated) of the installed vendors, once each."""
    keys = list(families_by_key(vendors, "allocated")) + list(families_by_key(vendors, "to_allocate"))
    return list(dict.fromkeys(keys))


#: Pod keys the scheduler writes for every vendor at Filter/Bind (beside the families' allocation keys).
SCHEDULER_POD_KEYS = (VGPU_NODE, VGPU_TIME, BIND_PHASE, BIND_TIME)


#: Pod labels only the scheduler writes. HAMi labels a filtered pod with the node it chose (``hami.io/vgpu-node``,
#: beside the annotation of that name): HAMi's monitor and this scheduler's bind replay list a node's pods by it.
SCHEDULER_POD_LABELS = (VGPU_NODE,)


def guarded_pod_labels() -> list[str]:
    """Every pod label only the scheduler may write, sorted (the chart's admission policy guards them as keys)."""
    return sorted(set(SCHEDULER_POD_LABELS))


def guarded_pod_keys(vendors: list[VendorInfo], vendor_extras: list[str] = ()) -> list[str]:
    """Every pod annotation only the scheduler and the node agents may write, sorted, once each.

    The chart's ValidatingAdmissionPolicy refuses anyone else's change to these (docs/security.md);
    ``vendor_extras`` are the keys a plugin's ``hami_hal_pod_annotations`` writes. The user-facing
    request annotations (the selectors, ``use-*``/``nouse-*``) are not here: the pod author sets those.
    """
    return sorted({*SCHEDULER_POD_KEYS, *allocation_keys(vendors), *vendor_extras})
