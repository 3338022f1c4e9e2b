"""Node register annotations: HAMi's device inventory, JSON (v2.8 and later) or legacy CSV.

Formats (hami-compat.md §4.2, §4.3):

- JSON: an array of ``{id, index, count, devmem, devcore, type, numa, mode, health, ...}``; every key is
  omitempty, so an absent ``index``/``numa`` is 0 and an absent ``health`` is false.
- CSV: ``<id>,<count>,<devmem>,<devcore>,<type>,<numa>,<health>[,<index>,<mode>]:`` per device.

A bad annotation is rejected whole with one line naming the field and the value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import InputError
from ..models import (
    Device,
    NodeInventory,
    PartitionKind,
    PartitionModel,
    Provenance,
    ResourceFamily,
    VendorInfo,
)
from ..models.inventory import INVENTORY_FORMAT
from ..models.skew import read_document
from .checks import int_field, str_field, value_text
from .keys import HAL_INVENTORY, families_by_key
from .limits import (
    MAX_DEVCORE,
    MAX_INDEX,
    MAX_INVENTORY_DEVICES,
    MAX_MEMORY_MIB,
    MAX_REGISTER_DEVICES,
    MAX_SPLIT_COUNT,
    MAX_TEMPLATES,
    MAX_UNITS,
    MAX_VALUE_CHARS,
)

#: HAMi's default device mode when an annotation names none.
DEFAULT_MODE = "hami-core"


@dataclass(frozen=True, slots=True)
class RegisteredDevice:
    """One device of a register annotation, as HAMi writes it (memory MiB, cores in percent)."""

    id: str
    count: int
    devmem: int
    devcore: int
    type: str
    numa: int = 0
    health: bool = False
    index: int = 0
    mode: str = DEFAULT_MODE
    custominfo: dict = field(default_factory=dict)


def _health(where: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InputError(where, value, "must be true or false")


def _device(where: str, item: object) -> RegisteredDevice:
    if not isinstance(item, dict):
        raise InputError(where, item, "must be an object")
    numa = item.get("numa", 0)
    custom = item.get("custominfo") or {}
    if not isinstance(custom, dict) or len(json.dumps(custom)) > 4096:
        raise InputError(f"{where}.custominfo", str(custom)[:40], "must be an object under 4096 characters")
    return RegisteredDevice(
        id=str_field(f"{where}.id", item.get("id"), forbid=",:;[]{}\" "),
        count=int_field(f"{where}.count", item.get("count", 1), 1, MAX_SPLIT_COUNT),
        devmem=int_field(f"{where}.devmem", item.get("devmem"), 1, MAX_MEMORY_MIB),
        devcore=int_field(f"{where}.devcore", item.get("devcore", 100), 1, MAX_DEVCORE),
        type=str_field(f"{where}.type", item.get("type"), forbid=",:;"),
        # Vendor libraries report an unknown NUMA node as -1; keep it as "no NUMA node".
        numa=int_field(f"{where}.numa", 0 if numa in (None, "") else numa, -1, MAX_INDEX),
        health=_health(f"{where}.health", item.get("health", False)),
        index=int_field(f"{where}.index", item.get("index", 0) or 0, 0, MAX_INDEX),
        mode=str_field(f"{where}.mode", item.get("mode") or DEFAULT_MODE, forbid=",:;"),
        custominfo=custom,
    )


_CSV_FIELDS = ("id", "count", "devmem", "devcore", "type", "numa", "health", "index", "mode")


def decode_register(value: object, key: str = "register annotation") -> list[RegisteredDevice]:
    """A register annotation (JSON array or CSV) → devices; raises InputError naming the bad field."""
    text = value_text(key, value).strip()
    if text.startswith("{"):
        raise InputError(key, text[:80], "is neither a JSON array nor HAMi CSV (a JSON object was given)")
    if text.startswith("["):
        try:
            items = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InputError(key, text[:80], f"is not valid JSON ({getattr(exc, 'msg', 'too deep')})") from None
        if not isinstance(items, list):
            raise InputError(key, text[:80], "must be a JSON array")
    else:
        if ":" not in text:
            raise InputError(key, text[:80], "is neither a JSON array nor HAMi CSV (needs ':' after each device)")
        items = []
        for chunk in text.split(":"):
            if not chunk.strip():
                continue
            f = chunk.split(",")
            if len(f) not in (7, 9):
                raise InputError(key, chunk[:80], f"CSV device needs 7 or 9 fields, has {len(f)}")
            items.append(dict(zip(_CSV_FIELDS, f, strict=False)))
            if len(items) > MAX_REGISTER_DEVICES:
                break
    if len(items) > MAX_REGISTER_DEVICES:
        raise InputError(key, f"{len(items)} devices", f"lists more than {MAX_REGISTER_DEVICES} devices")
    out = [_device(f"{key}[{i}]", it) for i, it in enumerate(items)]
    seen: set[str] = set()
    for d in out:
        if d.id in seen:
            raise InputError(key, d.id, "is listed twice")
        seen.add(d.id)
    return out


def encode_register_json(devices: list[RegisteredDevice]) -> str:
    """JSON form as HAMi v2.8+ writes it: omitempty, so zero index/numa and false health are absent."""
    out = []
    for d in devices:
        item: dict = {"id": d.id}
        if d.index:
            item["index"] = d.index
        item.update(count=d.count, devmem=d.devmem, devcore=d.devcore, type=d.type)
        if d.numa:
            item["numa"] = d.numa
        if d.mode:
            item["mode"] = d.mode
        if d.health:
            item["health"] = True
        if d.custominfo:
            item["custominfo"] = d.custominfo
        out.append(item)
    return json.dumps(out, separators=(",", ":"))


def encode_register_csv(devices: list[RegisteredDevice]) -> str:
    """CSV form with all nine fields, as the v2.10 encoder writes it."""
    return "".join(
        f"{d.id},{d.count},{d.devmem},{d.devcore},{d.type},{d.numa},{str(d.health).lower()},{d.index},{d.mode}:"
        for d in devices
    )


def model_from_type(hami_type: str, common_word: str) -> str:
    """The product name inside a HAMi ``type``: a ``<CommonWord>-`` prefix the plugin added is dropped.

    ``ACME-Acme X100`` (family ``ACME``) → ``Acme X100``, the name discovery and the capability matrix
    use; a type without the prefix is the model as it is.
    """
    prefix = f"{common_word}-"
    if hami_type.lower().startswith(prefix.lower()) and len(hami_type) > len(prefix):
        return hami_type[len(prefix):]
    return hami_type


def to_device(reg: RegisteredDevice, vendor: VendorInfo, family: ResourceFamily, *, only_family: bool = True) -> Device:
    """A registered device as the engine sees it: the family's ``register_partition`` (or HAMi's shares
    model) with the advertised totals. ``only_family``: the register key is this family's alone, so the
    device serves only it (``Device.family``)."""
    shape = family.register_partition or PartitionModel(kind=PartitionKind.SHARES, memory_mib=reg.devmem)
    partition = shape.model_copy(update={"memory_mib": reg.devmem, "compute_percent": reg.devcore,
                                         "max_slots": reg.count})
    return Device(
        vendor=vendor.name, index=reg.index, uuid=reg.id, model=model_from_type(reg.type, family.common_word),
        family=family.common_word if only_family else None,
        hami_type=reg.type, memory_mib=reg.devmem, numa_node=reg.numa if reg.numa >= 0 else None,
        healthy=reg.health, mode=reg.mode, partition=partition,
        attributes={"custominfo": reg.custominfo} if reg.custominfo else {},
        provenance=Provenance(source="real", device_model=reg.type),
    )


def from_device(device: Device) -> RegisteredDevice:
    """What a node agent publishes for ``device``: HAMi's register entry (the inverse of :func:`to_device`).

    ``count``/``devmem``/``devcore`` come from the partition model (slots, allocatable MiB, compute %).
    """
    part = device.partition
    return RegisteredDevice(
        id=device.uuid, count=part.max_slots if part else 1,
        devmem=part.memory_mib if part else device.memory_mib,
        devcore=part.compute_percent if part else 100, type=device.hami_type,
        numa=device.numa_node if device.numa_node is not None else 0, health=device.healthy,
        index=device.index, mode=device.mode or DEFAULT_MODE,
        custominfo=dict(device.attributes.get("custominfo") or {}),
    )


def parse_node_devices(annotations: dict[str, str], vendors: list[VendorInfo]) -> list[Device]:
    """Devices a node advertises through the families' register annotations; all or nothing."""
    out: list[Device] = []
    for key, fams in families_by_key(vendors, "node_register").items():
        value = annotations.get(key)
        if not value:
            continue
        vendor, family = fams[0]
        alone = len(fams) == 1
        out.extend(to_device(reg, vendor, family, only_family=alone) for reg in decode_register(value, key))
    seen: set[str] = set()
    for d in out:
        if d.uuid in seen:
            raise InputError("node devices", d.uuid, "is listed twice")
        seen.add(d.uuid)
    return out


def _check_partition(where: str, part: PartitionModel) -> None:
    """The numbers of a partition model within the bounds the register path holds them to."""
    int_field(f"{where}.memory_mib", part.memory_mib, 0, MAX_MEMORY_MIB)
    int_field(f"{where}.compute_percent", part.compute_percent, 0, MAX_DEVCORE)
    int_field(f"{where}.max_slots", part.max_slots, 1, MAX_SPLIT_COUNT)
    int_field(f"{where}.memory_granularity_mib", part.memory_granularity_mib, 1, MAX_MEMORY_MIB)
    if part.compute_units is not None:
        int_field(f"{where}.compute_units", part.compute_units, 0, MAX_UNITS)
    if part.template_max_count is not None:
        int_field(f"{where}.template_max_count", part.template_max_count, 1, MAX_SPLIT_COUNT)
    int_field(f"{where}.whole_count_multiple", part.whole_count_multiple, 1, MAX_SPLIT_COUNT)
    if part.node_budget is not None:
        int_field(f"{where}.node_budget.limit", part.node_budget.limit, 0, MAX_UNITS)
    if len(part.templates) > MAX_TEMPLATES:
        raise InputError(f"{where}.templates", f"{len(part.templates)} templates", f"lists more than {MAX_TEMPLATES}")
    for j, t in enumerate(part.templates):
        tw = f"{where}.templates[{j}]"
        int_field(f"{tw}.memory_mib", t.memory_mib, 1, MAX_MEMORY_MIB)
        int_field(f"{tw}.node_cost", t.node_cost, 0, MAX_UNITS)
        if t.holds_up_to_mib is not None:
            int_field(f"{tw}.holds_up_to_mib", t.holds_up_to_mib, 1, MAX_MEMORY_MIB)
        for name, value in (("compute_units", t.compute_units), ("max_instances", t.max_instances)):
            if value is not None:
                int_field(f"{tw}.{name}", value, 0, MAX_UNITS)
        if len(t.placements) > MAX_SPLIT_COUNT:
            raise InputError(f"{tw}.placements", f"{len(t.placements)} placements", f"lists more than {MAX_SPLIT_COUNT}")
        for k, pl in enumerate(t.placements):
            int_field(f"{tw}.placements[{k}].start", pl.start, 0, MAX_UNITS)
            int_field(f"{tw}.placements[{k}].size", pl.size, 1, MAX_UNITS)


def check_inventory(inv: NodeInventory, key: str = HAL_INVENTORY) -> None:
    """Hold a node's hami-hal inventory to the register path's bounds.

    Why: the annotation is written by the node's own agent, so a compromised node could otherwise
    put a memory of 10**30 MiB (every later filter then failed with an overflow, on every node) or
    2,000 devices (the scheduler's index, as wide as the widest node, grew for every node) into it, or
    a uuid holding the allocation string's separators. Raises InputError naming the field.
    """
    if len(inv.devices) > MAX_INVENTORY_DEVICES:
        raise InputError(f"{key}.devices", f"{len(inv.devices)} devices", f"lists more than {MAX_INVENTORY_DEVICES}")
    seen: set[str] = set()
    for i, d in enumerate(inv.devices):
        where = f"{key}.devices[{i}]"
        str_field(f"{where}.uuid", d.uuid, forbid=",:;[]{}\" ")
        str_field(f"{where}.vendor", d.vendor, forbid=",:;")
        str_field(f"{where}.hami_type", d.hami_type, required=False, forbid=",:;")
        str_field(f"{where}.model", d.model, required=False)
        str_field(f"{where}.mode", d.mode, required=False, forbid=",:;")
        int_field(f"{where}.index", d.index, 0, MAX_INDEX)
        int_field(f"{where}.memory_mib", d.memory_mib, 0, MAX_MEMORY_MIB)
        if d.numa_node is not None:
            int_field(f"{where}.numa_node", d.numa_node, -1, MAX_INDEX)
        if d.compute_units is not None:
            int_field(f"{where}.compute_units", d.compute_units, 0, MAX_UNITS)
        if d.partition is not None:
            _check_partition(f"{where}.partition", d.partition)
        if d.uuid in seen:
            raise InputError(f"{where}.uuid", d.uuid, "is listed twice")
        seen.add(d.uuid)


def node_inputs(node: dict, vendors: list[VendorInfo]) -> tuple | None:
    """The values :func:`parse_node` reads from a Node: its name and the inventory annotation, or else the
    families' register annotations (None for an object too malformed to say; parse_node refuses it). Why: the
    same inputs with the same vendors parse to the same inventory, so a reader may keep the last parse for as
    long as these are unchanged (node events mostly change a lock, a handshake or a label)."""
    meta = node.get("metadata") if isinstance(node, dict) else None
    anns = (meta.get("annotations") or {}) if isinstance(meta, dict) else None
    if not isinstance(anns, dict):
        return None
    if anns.get(HAL_INVENTORY):
        return (meta.get("name"), HAL_INVENTORY, anns[HAL_INVENTORY])
    return (meta.get("name"), *((k, anns.get(k)) for k in families_by_key(vendors, "node_register")))


def parse_node(node: dict, vendors: list[VendorInfo]) -> NodeInventory:
    """A Node object → NodeInventory (the hami-hal annotation if present, else HAMi register annotations)."""
    meta = node.get("metadata") or {}
    name = meta.get("name")
    if not name or not isinstance(name, str):
        raise InputError("node.metadata.name", name, "is required")
    anns = meta.get("annotations") or {}
    if anns.get(HAL_INVENTORY):
        # written by the node's agent, which may be a version ahead of or behind this reader (docs/install.md)
        inv = read_document(NodeInventory, anns[HAL_INVENTORY], where=HAL_INVENTORY, subject=f"node {name}",
                            current=INVENTORY_FORMAT, max_chars=MAX_VALUE_CHARS).doc
        check_inventory(inv)
        return inv.model_copy(update={"node": name})
    devices = parse_node_devices(anns, vendors)
    return NodeInventory(node=name, source="real" if devices else "empty", devices=devices)
