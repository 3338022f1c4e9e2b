"""Whole-card selection on an 8-card P800 node (docs/vendors.md, Kunlunxin; HAMi ``developers/kunlunxin-topology.md``).

Cards 0-3 and 4-7 are two fully connected XPU-link groups (HAMi ``GroupConnection``), one per NUMA
node; card i and i+4 are linked across (``InterGroupConnection``). HAMi's written rules:

1. only 1, 2, 4 or 8 cards per request;
2. 1, 2 and 4 cards must not cross a group (NUMA);
3. minimise fragmentation: choose the group whose MTF ("minimised tasks to fill": the fewest
   allowed-size requests that fill the group's free cards) grows least.

Ties (equal MTF change) go to the lowest card indexes (the policy order of idle cards); the reference does
not fix a tie-break. The engine applies all of it from the whole-card family's ``DeviceSetRules``
(``vendor.py``: allowed counts, these groups, ``prefer="least-fragmentation"``); this module holds the
groups and the link layout.
"""

from __future__ import annotations

from hami_hal.models import Device, Link, LinkTier, Topology

CARDS_PER_NODE = 8
GROUPS: tuple[tuple[int, ...], ...] = ((0, 1, 2, 3), (4, 5, 6, 7))
ALLOWED_COUNTS: tuple[int, ...] = (1, 2, 4, 8)
#: HAMi ``InterGroupConnection``: the links between the two groups.
CROSS_PAIRS: tuple[tuple[int, int], ...] = ((0, 4), (1, 5), (2, 6), (3, 7))
#: Pair scores for the topology-aware policy: an XPU link like a fabric link, the rest across sockets
#: (HAMi's link-class scores: fabric 100 per link, cross-CPU 10).
XPU_LINK_SCORE = 100
CROSS_SOCKET_SCORE = 10


def _xpu_link(a: Device, b: Device) -> Link:
    return Link(a=a.uuid, b=b.uuid, kind="xpu-link", tier=LinkTier.FABRIC, count=1, score=XPU_LINK_SCORE)


def topology(devices: list[Device]) -> Topology:
    """XPU links: full mesh inside each group and the four cross pairs (``InterGroupConnection``); every other
    pair goes over PCIe between the two sockets."""
    by_index = {d.index: d for d in devices}
    links: list[Link] = []
    for group in GROUPS:
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                if a in by_index and b in by_index:
                    links.append(_xpu_link(by_index[a], by_index[b]))
    for a in GROUPS[0]:
        for b in GROUPS[1]:
            if a in by_index and b in by_index:
                links.append(_xpu_link(by_index[a], by_index[b]) if (a, b) in CROSS_PAIRS else Link(
                    a=by_index[a].uuid, b=by_index[b].uuid, kind="pcie-sys", tier=LinkTier.SOCKETS,
                    score=CROSS_SOCKET_SCORE))
    return Topology(links=links, numa={d.uuid: d.numa_node for d in devices})
