"""Pod allocation strings (hami-compat.md §5.1): ``<uuid>,<Type>,<mem MiB>,<cores %>:...;`` per container.

Containers are positional (init containers first); a container without devices is an empty segment.
Each family key lists only its own families' slices, so a pod using two families (whole cards + shares)
carries two annotations and keeps both allocations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from ..errors import InputError
from ..models import ContainerAllocation, Device, DeviceSlice, PodAllocation, VendorInfo
from .checks import int_field, str_field, value_text
from .keys import VGPU_NODE, families_by_key
from .limits import MAX_CONTAINERS, MAX_DEVICES, MAX_MEMORY_MIB


class AllocatedDevice(NamedTuple):
    """One entry of an allocation string (a tuple: ``(uuid, type, memory_mib, compute_percent)``)."""

    uuid: str
    type: str
    memory_mib: int
    compute_percent: int


def encode_allocation(alloc: PodAllocation, common_words: str | Iterable[str] | None = None,
                      n_containers: int | None = None) -> str:
    """Allocation string of the slices whose CommonWord is in ``common_words`` (all when None)."""
    if isinstance(common_words, str):
        common_words = {common_words}
    elif common_words is not None:
        common_words = set(common_words)
    by_index = {c.index: c for c in alloc.containers}
    total = n_containers if n_containers is not None else (max(by_index, default=-1) + 1)
    parts = []
    for i in range(total):
        ctr = by_index.get(i)
        seg = "".join(
            f"{s.uuid},{s.common_word},{s.memory_mib},{s.compute_percent}:"
            for s in (ctr.slices if ctr else []) if common_words is None or s.common_word in common_words
        )
        parts.append(seg + ";")
    return "".join(parts)


def decode_allocation(value: object, key: str = "allocation") -> list[list[AllocatedDevice]]:
    """Allocation string → per container list of entries; rejects the whole value on any bad entry."""
    text = value_text(key, value)
    if not text.endswith(";"):
        raise InputError(key, text[:80], "must end with ';' (one segment per container)")
    segments = text.split(";")[:-1]
    if len(segments) > MAX_CONTAINERS:
        raise InputError(key, f"{len(segments)} containers", f"has more than {MAX_CONTAINERS} containers")
    out: list[list[AllocatedDevice]] = []
    for seg in segments:
        ctr: list[AllocatedDevice] = []
        entries = [e for e in seg.split(":") if e.strip()]
        if len(entries) > MAX_DEVICES:
            raise InputError(key, f"{len(entries)} devices", f"lists more than {MAX_DEVICES} devices in a container")
        for dev in entries:
            f = dev.split(",")
            if len(f) != 4:
                raise InputError(key, dev[:80], "device entry needs uuid,type,mem,cores")
            if not f[0]:
                if f[2:] in (["0", "0"], ["", ""]):
                    continue  # legacy empty entry ",,0,0" (#991)
                raise InputError(key, dev[:80], "device entry has no uuid")
            ctr.append(AllocatedDevice(
                uuid=str_field(f"{key} uuid", f[0]),
                type=str_field(f"{key} type", f[1], required=False),
                memory_mib=int_field(f"{key} memory of {f[0]}", f[2], 0, MAX_MEMORY_MIB),
                compute_percent=int_field(f"{key} cores of {f[0]}", f[3], 0, 100),
            ))
        out.append(ctr)
    return out


def allocation_annotations(alloc: PodAllocation, vendors: list[VendorInfo], n_containers: int | None = None,
                           *, to_allocate: bool = True) -> dict[str, str]:
    """Every family's allocated (and to-allocate) annotation for ``alloc``; one value per key.

    Families sharing a key share its value (all their slices); a key none of whose families is used
    is not written.
    """
    used = {s.common_word for s in alloc.slices()}
    out: dict[str, str] = {}
    fields = ("allocated", "to_allocate") if to_allocate else ("allocated",)
    for fld in fields:
        for key, fams in families_by_key(vendors, fld).items():
            words = {f.common_word for _, f in fams}
            if words & used:
                out[key] = encode_allocation(alloc, words, n_containers)
    return out


def _container_names(pod: dict) -> tuple[list[str], int]:
    spec = pod.get("spec") or {}
    names = [c.get("name", f"c{i}") for i, c in enumerate(spec.get("initContainers") or [])]
    n_init = len(names)
    names += [c.get("name", f"c{i}") for i, c in enumerate(spec.get("containers") or [])]
    return names, n_init


def _attributes(family, anns: dict) -> dict[str, str]:
    """The family's pod-annotation values on this pod (as the parser read them at placement)."""
    from ..requests.parser import family_attributes  # the parser is the one reader of these rules

    try:
        return {a.attribute: a.value for a in family_attributes(family, anns)}
    except InputError:
        return {}  # validated when the pod was placed; a later edit does not unplace it


def allocation_inputs(pod: dict, vendors: list[VendorInfo]) -> tuple:
    """What a refusal by :func:`allocation_from_pod` depends on, beside the vendors and the node's devices: the pod,
    its node and its families' ``allocated`` annotations. Why: a pod is handed over again on every change of its
    status, and an allocation it refused for these values stays refused while they and the devices are unchanged."""
    meta = pod.get("metadata") or {}
    anns = meta.get("annotations") or {}
    node = anns.get(VGPU_NODE) or (pod.get("spec") or {}).get("nodeName")
    return (meta.get("namespace"), meta.get("name"), node,
            *((key, anns.get(key)) for key in families_by_key(vendors, "allocated")))


def allocation_from_pod(pod: dict, vendors: list[VendorInfo], devices: dict[str, Device]) -> PodAllocation | None:
    """The allocation a pod records in its families' ``allocated`` annotations, or None if it has none."""
    meta = pod.get("metadata") or {}
    anns = meta.get("annotations") or {}
    node = anns.get(VGPU_NODE) or (pod.get("spec") or {}).get("nodeName")
    names, n_init = _container_names(pod)
    containers: dict[int, ContainerAllocation] = {}
    found = False
    for key, fams in families_by_key(vendors, "allocated").items():
        if not anns.get(key):
            continue
        found = True
        words = {f.common_word for _, f in fams}
        # The pod's own vendor annotations (a QoS policy) travel with its slices, so a replayed pod
        # still constrains later tenants as it did when it was placed.
        attrs = {f.common_word: _attributes(f, anns) for _, f in fams}
        for i, ctr in enumerate(decode_allocation(anns[key], key)):
            for entry in ctr:
                dev = devices.get(entry.uuid)
                if dev is None:
                    raise InputError(key, entry.uuid, f"is not a device of node {node}")
                if entry.type and entry.type not in words:
                    raise InputError(key, entry.type, f"is not a device family of this key ({', '.join(sorted(words))})")
                c = containers.setdefault(
                    i, ContainerAllocation(name=names[i] if i < len(names) else f"c{i}", index=i, init=i < n_init))
                part = dev.partition
                exclusive = bool(part and part.exclusive_full_compute and entry.compute_percent >= 100)
                c.slices.append(DeviceSlice(
                    vendor=dev.vendor, uuid=entry.uuid, device_index=dev.index, common_word=entry.type,
                    memory_mib=entry.memory_mib, compute_percent=entry.compute_percent, exclusive=exclusive,
                    attributes=attrs.get(entry.type, {})))
    if not found or not node:
        return None
    return PodAllocation(namespace=meta.get("namespace", "default"), name=meta.get("name", ""), uid=meta.get("uid"),
                         node=node, containers=[containers[i] for i in sorted(containers)])
