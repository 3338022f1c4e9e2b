"""GPU-to-GPU links from NVML: NVLink counts first, otherwise the PCIe topology level.

NVLink: links whose remote end is the peer GPU count directly; on NVSwitch systems (remote end is a
switch) a pair is linked with min(switch links of each GPU) links when NVML reports NVLink P2P between
them (HAMi's rule, hami-compat.md §6.7). A pair whose two directions disagree is ``unknown`` (score 0),
as HAMi does for asymmetric data. PCIe levels map from NVML_TOPOLOGY_*.
HAMi's pair scores (hami-compat.md §6.7) are set here on each :class:`hami_hal.models.Link`: the core
knows no link kind, only the tier and score a plugin gives.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from itertools import combinations

from hami_hal.models import Device, Link, LinkTier, Topology

from .nvml_port import (
    TOPOLOGY_HOSTBRIDGE,
    TOPOLOGY_INTERNAL,
    TOPOLOGY_MULTIPLE,
    TOPOLOGY_NODE,
    TOPOLOGY_SINGLE,
    TOPOLOGY_SYSTEM,
    NvLinkEnd,
    NvmlFailure,
    NvmlPort,
)

log = logging.getLogger(__name__)


class LinkKind(StrEnum):
    """NVIDIA link kinds, best first: NVLink, then NVML's PCIe topology levels."""

    NVLINK = "nvlink"
    SAME_BOARD = "same-board"
    SINGLE_SWITCH = "single-switch"
    MULTI_SWITCH = "multi-switch"
    HOST_BRIDGE = "host-bridge"
    SAME_CPU = "same-cpu"
    CROSS_CPU = "cross-cpu"
    UNKNOWN = "unknown"


#: HAMi pair score per PCIe level (hami-compat.md §6.7); NVLink scores 100 per link.
PAIR_SCORE = {
    LinkKind.CROSS_CPU: 10,
    LinkKind.SAME_CPU: 20,
    LinkKind.HOST_BRIDGE: 30,
    LinkKind.MULTI_SWITCH: 40,
    LinkKind.SINGLE_SWITCH: 50,
    LinkKind.SAME_BOARD: 60,
    LinkKind.UNKNOWN: 0,
}
TIER = {
    LinkKind.NVLINK: LinkTier.FABRIC,
    LinkKind.SAME_BOARD: LinkTier.BOARD,
    LinkKind.SINGLE_SWITCH: LinkTier.BOARD,
    LinkKind.MULTI_SWITCH: LinkTier.SWITCHES,
    LinkKind.HOST_BRIDGE: LinkTier.HOST,
    LinkKind.SAME_CPU: LinkTier.HOST,
    LinkKind.CROSS_CPU: LinkTier.SOCKETS,
    LinkKind.UNKNOWN: LinkTier.UNKNOWN,
}


def make_link(a: str, b: str, kind: LinkKind | str, count: int = 1) -> Link:
    """A core Link with HAMi's score and the tier for this kind."""
    kind = LinkKind(kind)
    score = 100 * max(count, 1) if kind is LinkKind.NVLINK else PAIR_SCORE[kind]
    return Link(a=a, b=b, kind=kind.value, tier=TIER[kind], count=count, score=score)


LEVEL_KIND = {
    TOPOLOGY_INTERNAL: LinkKind.SAME_BOARD,
    TOPOLOGY_SINGLE: LinkKind.SINGLE_SWITCH,
    TOPOLOGY_MULTIPLE: LinkKind.MULTI_SWITCH,
    TOPOLOGY_HOSTBRIDGE: LinkKind.HOST_BRIDGE,
    TOPOLOGY_NODE: LinkKind.SAME_CPU,
    TOPOLOGY_SYSTEM: LinkKind.CROSS_CPU,
}


def _bus(bus_id: str) -> str:
    """Normalise a PCI bus id (NVML uses 8- or 4-digit domains, mixed case)."""
    dom, _, rest = bus_id.strip().lower().partition(":")
    return f"{int(dom, 16):08x}:{rest}" if rest else bus_id.lower()


def _links(port: NvmlPort, index: int) -> list[NvLinkEnd]:
    try:
        return port.nvlinks(index)
    except NvmlFailure:
        return []


def nvlink_count(port: NvmlPort, a: Device, b: Device, ends: dict[int, list[NvLinkEnd]]) -> int | None:
    """NVLinks between two GPUs; None when the two directions disagree."""
    bus_a, bus_b = _bus(str(a.attributes.get("pci_bus_id", ""))), _bus(str(b.attributes.get("pci_bus_id", "")))
    ab = sum(1 for e in ends[a.index] if e.remote_type != "switch" and _bus(e.remote_bus_id) == bus_b)
    ba = sum(1 for e in ends[b.index] if e.remote_type != "switch" and _bus(e.remote_bus_id) == bus_a)
    if ab != ba:
        return None
    if ab:
        return ab
    sw_a = sum(1 for e in ends[a.index] if e.remote_type == "switch")
    sw_b = sum(1 for e in ends[b.index] if e.remote_type == "switch")
    if sw_a and sw_b:
        try:
            if port.p2p_nvlink(a.index, b.index):
                return min(sw_a, sw_b)
        except NvmlFailure:
            return min(sw_a, sw_b)
    return 0


def link_between(port: NvmlPort, a: Device, b: Device, ends: dict[int, list[NvLinkEnd]]) -> Link:
    count = nvlink_count(port, a, b, ends)
    if count is None:
        log.warning("AsymmetricGPUP2PLink between %s and %s", a.uuid, b.uuid)
        return make_link(a.uuid, b.uuid, LinkKind.UNKNOWN, count=0)
    if count:
        return make_link(a.uuid, b.uuid, LinkKind.NVLINK, count=count)
    try:
        level = port.common_ancestor(a.index, b.index)
    except NvmlFailure:
        return make_link(a.uuid, b.uuid, LinkKind.UNKNOWN)
    return make_link(a.uuid, b.uuid, LEVEL_KIND.get(level, LinkKind.UNKNOWN))


def topology(port: NvmlPort, devices: list[Device]) -> Topology:
    """Every pair of readable GPUs, plus each GPU's NUMA node (None = unknown)."""
    readable = [d for d in devices if d.attributes.get("pci_bus_id")]
    ends = {d.index: _links(port, d.index) for d in readable}
    links = [link_between(port, a, b, ends) for a, b in combinations(readable, 2)]
    return Topology(links=links, numa={d.uuid: d.numa_node for d in devices})


def nvlink_summary(port: NvmlPort, device: Device) -> dict:
    """Per-GPU NVLink facts for the inventory: active links, to GPUs and to switches."""
    ends = _links(port, device.index)
    return {
        "active": len(ends),
        "to_switch": sum(1 for e in ends if e.remote_type == "switch"),
        "to_gpu": sum(1 for e in ends if e.remote_type == "gpu"),
    }
