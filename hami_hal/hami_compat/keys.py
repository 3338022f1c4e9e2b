"""HAMi's annotation keys that belong to no vendor (hami-compat.md §4, §5.2), and the per-family keys.

HAMi keys register and allocation annotations per device family (CommonWord). A family may name its
own keys; otherwise it shares the vendor's. Every key lookup in the project goes through here.
"""

from __future__ import annotations

from ..models import AnnotationKeys, ResourceFamily, SelectorAnnotations, VendorInfo

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
#: The pod's request annotations as the scheduler placed it (hami-hal's own key, :mod:`.placed_request`): the node
#: agent refuses an Allocate whose request annotations no longer match it.
PLACED_REQUEST = "hami-hal.io/placed-request"
#: Request annotations of every family (the pod parser reads them whatever the pod asks for).
POD_REQUEST_KEYS = (GPU_POLICY, NODE_POLICY, SCORING_WEIGHTS)


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
SCHEDULER_POD_KEYS = (VGPU_NODE, VGPU_TIME, BIND_PHASE, BIND_TIME, PLACED_REQUEST)


def selector_keys(sel: SelectorAnnotations | None) -> list[str]:
    """The pod annotation keys a selector set names (``use-*``, ``nouse-*``, mode, NUMA binding)."""
    if sel is None:
        return []
    return [k for k in (sel.use_type, sel.nouse_type, sel.use_uuid, sel.nouse_uuid, sel.mode, sel.numa_bind) if k]


def family_selectors(vendor: VendorInfo, family: ResourceFamily) -> SelectorAnnotations:
    """The family's selector keys, field by field over the vendor's."""
    own = family.selectors
    if own is None:
        return vendor.selectors
    base = vendor.selectors.model_dump()
    return SelectorAnnotations(**{k: v if v is not None else base[k] for k, v in own.model_dump().items()})


def family_request_keys(vendor: VendorInfo, family: ResourceFamily) -> list[str]:
    """The pod annotations a request of this family is read from: the pod-wide ones, the family's selectors
    and its vendor rules (``pod_annotations``), once each."""
    sel = selector_keys(family_selectors(vendor, family))
    return list(dict.fromkeys([*POD_REQUEST_KEYS, *sel, *(r.key for r in family.pod_annotations)]))


def request_pod_keys(vendors: list[VendorInfo]) -> list[str]:
    """Every pod request annotation of the installed vendors, sorted: the pod author's before placement, the
    scheduler's and node agents' after it (the chart's admission policy, docs/security.md)."""
    return sorted({k for v in vendors for f in v.resources for k in family_request_keys(v, f)}
                  | set(POD_REQUEST_KEYS))


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
