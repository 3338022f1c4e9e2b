"""HAMi's Kubernetes annotations: node inventories in, pod allocation strings in and out.

Formats follow hami-compat.md §4.2/§4.3 (inventory JSON and CSV) and §5.1 (allocation string
``<uuid>,<Type>,<mem>,<cores>:...;`` per container, init containers first). Malformed input raises
:class:`InputError` naming the annotation and the bad value, so callers change nothing.
"""

from __future__ import annotations

import json

from hami_hal.errors import InputError
from hami_hal.models import (
    ContainerAllocation,
    Device,
    DeviceSlice,
    NodeInventory,
    PartitionKind,
    PartitionModel,
    PodAllocation,
    Provenance,
    VendorInfo,
)

#: Full hami-hal inventory (NodeInventory JSON), written by hami-hal's node side; preferred when present.
HAL_INVENTORY = "hami-hal.io/node-inventory"
VGPU_NODE = "hami.io/vgpu-node"
VGPU_TIME = "hami.io/vgpu-time"
BIND_PHASE = "hami.io/bind-phase"
BIND_TIME = "hami.io/bind-time"
NODE_LOCK = "hami.io/mutex.lock"
DEVICE_CORDON = "hami.io/device-cordon"
NODE_POLICY = "hami.io/node-scheduler-policy"


def _device_from_json(item: dict, vendor: VendorInfo, key: str, i: int) -> Device:
    where = f"{key}[{i}]"
    if not isinstance(item, dict):
        raise InputError(where, item, "must be an object")
    uuid = item.get("id")
    if not isinstance(uuid, str) or not uuid:
        raise InputError(f"{where}.id", uuid, "is required")
    try:
        count = int(item.get("count", 1))
        devmem = int(item.get("devmem", 0))
        devcore = int(item.get("devcore", 100))
        index = int(item.get("index", i) or 0)
        numa = int(item.get("numa", 0) or 0)
    except (TypeError, ValueError):
        raise InputError(where, json.dumps(item), "count, devmem, devcore, index and numa must be integers") from None
    if count < 1 or devmem < 1 or devcore < 1:
        raise InputError(where, json.dumps(item), "count, devmem and devcore must be positive")
    dtype = str(item.get("type", ""))
    return Device(
        vendor=vendor.name, index=index, uuid=uuid, model=dtype, hami_type=dtype, memory_mib=devmem,
        numa_node=numa, healthy=bool(item.get("health", False)), mode=str(item.get("mode") or "hami-core"),
        partition=PartitionModel(kind=PartitionKind.SHARES, memory_mib=devmem, compute_percent=devcore,
                                 max_slots=count),
        provenance=Provenance(source="real", device_model=dtype),
    )


def _csv_items(value: str, key: str) -> list[dict]:
    if ":" not in value:
        raise InputError(key, value, "is neither a JSON array nor HAMi CSV (needs ':' after each device)")
    items = []
    for chunk in value.split(":"):
        if not chunk.strip():
            continue
        f = chunk.split(",")
        if len(f) not in (7, 9):
            raise InputError(key, chunk, "CSV device needs 7 or 9 fields")
        items.append({"id": f[0], "count": f[1], "devmem": f[2], "devcore": f[3], "type": f[4], "numa": f[5],
                      "health": f[6].strip().lower() == "true", "index": f[7] if len(f) == 9 else 0,
                      "mode": f[8] if len(f) == 9 else "hami-core"})
    return items


def parse_node_devices(annotations: dict[str, str], vendors: list[VendorInfo]) -> list[Device]:
    """Devices a node advertises through the vendors' HAMi register annotations (JSON or CSV)."""
    out: list[Device] = []
    for vendor in vendors:
        key = vendor.annotations.node_register
        value = annotations.get(key) if key else None
        if not value:
            continue
        value = value.strip()
        if value.startswith("["):
            try:
                items = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InputError(key, value[:80], f"is not valid JSON ({exc.msg})") from None
        else:
            items = _csv_items(value, key)
        out.extend(_device_from_json(it, vendor, key, i) for i, it in enumerate(items))
    seen: set[str] = set()
    for d in out:
        if d.uuid in seen:
            raise InputError("node devices", d.uuid, "is listed twice")
        seen.add(d.uuid)
    return out


def parse_node(node: dict, vendors: list[VendorInfo]) -> NodeInventory:
    """A Node object → NodeInventory (hami-hal annotation if present, else HAMi register annotations)."""
    meta = node.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise InputError("node.metadata.name", name, "is required")
    anns = meta.get("annotations") or {}
    if anns.get(HAL_INVENTORY):
        try:
            inv = NodeInventory.model_validate_json(anns[HAL_INVENTORY])
        except ValueError as exc:
            raise InputError(HAL_INVENTORY, anns[HAL_INVENTORY][:80], f"is not a NodeInventory: {exc}") from None
        return inv.model_copy(update={"node": name})
    devices = parse_node_devices(anns, vendors)
    return NodeInventory(node=name, source="real" if devices else "empty", devices=devices)


def encode_allocation(alloc: PodAllocation, common_word: str | None = None, n_containers: int | None = None) -> str:
    """HAMi allocation string for one vendor family (all slices when ``common_word`` is None)."""
    by_index = {c.index: c for c in alloc.containers}
    total = n_containers if n_containers is not None else (max(by_index, default=-1) + 1)
    parts = []
    for i in range(total):
        ctr = by_index.get(i)
        seg = ""
        for s in ctr.slices if ctr else []:
            if common_word is None or s.common_word == common_word:
                seg += f"{s.uuid},{s.common_word},{s.memory_mib},{s.compute_percent}:"
        parts.append(seg + ";")
    return "".join(parts)


def decode_allocation(value: str, key: str = "allocation") -> list[list[tuple[str, str, int, int]]]:
    """Allocation string → per container list of (uuid, type, memory MiB, cores %)."""
    if not value.endswith(";"):
        raise InputError(key, value, "must end with ';' (one segment per container)")
    out: list[list[tuple[str, str, int, int]]] = []
    for seg in value.split(";")[:-1]:
        ctr = []
        for dev in seg.split(":"):
            if not dev.strip():
                continue
            f = dev.split(",")
            if len(f) != 4:
                raise InputError(key, dev, "device entry needs uuid,type,mem,cores")
            if not f[0]:
                if f[2:] in (["0", "0"], ["", ""]):
                    continue  # legacy empty entry ",,0,0"
                raise InputError(key, dev, "device entry has no uuid")
            try:
                mem, cores = int(f[2]), int(f[3])
            except ValueError:
                raise InputError(key, dev, "memory and cores must be integers") from None
            if mem < 0 or not 0 <= cores <= 100:
                raise InputError(key, dev, "memory must be >= 0 and cores 0..100")
            ctr.append((f[0], f[1], mem, cores))
        out.append(ctr)
    return out


def allocation_from_pod(pod: dict, vendors: list[VendorInfo], devices: dict[str, Device]) -> PodAllocation | None:
    """The allocation a pod records in its ``<vendor>-allocated`` annotations, or None if it has none."""
    meta = pod.get("metadata") or {}
    anns = meta.get("annotations") or {}
    node = anns.get(VGPU_NODE) or (pod.get("spec") or {}).get("nodeName")
    spec = pod.get("spec") or {}
    names = [c.get("name", f"c{i}") for i, c in enumerate(spec.get("initContainers") or [])]
    n_init = len(names)
    names += [c.get("name", f"c{i}") for i, c in enumerate(spec.get("containers") or [])]
    containers: dict[int, ContainerAllocation] = {}
    found = False
    for vendor in vendors:
        key = vendor.annotations.allocated
        if not key or not anns.get(key):
            continue
        found = True
        for i, ctr in enumerate(decode_allocation(anns[key], key)):
            for uuid, cw, mem, cores in ctr:
                dev = devices.get(uuid)
                if dev is None:
                    raise InputError(key, uuid, f"is not a device of node {node}")
                c = containers.setdefault(
                    i, ContainerAllocation(name=names[i] if i < len(names) else f"c{i}", index=i, init=i < n_init)
                )
                part = dev.partition
                exclusive = bool(part and part.exclusive_full_compute and cores >= 100)
                c.slices.append(DeviceSlice(vendor=dev.vendor, uuid=uuid, device_index=dev.index, common_word=cw,
                                            memory_mib=mem, compute_percent=cores, exclusive=exclusive))
    if not found or not node:
        return None
    return PodAllocation(namespace=meta.get("namespace", "default"), name=meta.get("name", ""), uid=meta.get("uid"),
                         node=node, containers=[containers[i] for i in sorted(containers)])
