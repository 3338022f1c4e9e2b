"""MetaXLink zones (docs/vendors.md, MetaX): GPUs joined by MetaXLink form a zone (HAMi ``linkZone``).

HAMi prefers MetaXLink over a PCIe switch; for sGPU, two devices in the same non-zero link zone score
``DirectLinkScore = 10`` per pair, counted only for exclusive allocations (vcore 100). Zones are the
connected components of the ``MX`` cells of ``mx-smi topo -m``; a GPU with no MetaXLink has zone 0.
"""

from __future__ import annotations

from hami_hal.models import Device, Link, LinkTier, Topology

#: ``mx-smi topo -m`` code → (link kind, tier, pair score for the topology-aware policy). MetaXLink is
#: preferred over any PCIe path (HAMi); the PCIe scores follow HAMi's PCIe-level scores (50 … 10).
LINKS: dict[str, tuple[str, LinkTier, int]] = {
    "MX": ("metaxlink", LinkTier.FABRIC, 100), "PIX": ("pcie-switch", LinkTier.BOARD, 50),
    "PXB": ("pcie-switches", LinkTier.SWITCHES, 40), "PHB": ("pcie-host-bridge", LinkTier.HOST, 30),
    "NODE": ("pcie-numa-node", LinkTier.HOST, 20), "SYS": ("pcie-sys", LinkTier.SOCKETS, 10),
}
DIRECT_LINK_SCORE = 10


def link_zones(pairs: dict[tuple[int, int], str], indexes: list[int]) -> dict[int, int]:
    """GPU index → zone number (1, 2, ... in order of the lowest member; 0 = no MetaXLink)."""
    parent = {i: i for i in indexes}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (a, b), code in pairs.items():
        if code == "MX" and a in parent and b in parent:
            parent[root(a)] = root(b)
    members: dict[int, list[int]] = {}
    for i in indexes:
        members.setdefault(root(i), []).append(i)
    zones: dict[int, int] = {}
    n = 0
    for group in sorted(members.values(), key=min):
        if len(group) == 1:
            zones[group[0]] = 0
            continue
        n += 1
        for i in group:
            zones[i] = n
    return zones


def topology(devices: list[Device], pairs: dict[tuple[int, int], str]) -> Topology:
    by_index = {d.index: d for d in devices}
    links = [Link(a=by_index[a].uuid, b=by_index[b].uuid, kind=LINKS[code][0], tier=LINKS[code][1],
                  score=LINKS[code][2]) for (a, b), code in sorted(pairs.items()) if a in by_index and b in by_index]
    return Topology(links=links, numa={d.uuid: d.numa_node for d in devices})


def pair_score(zone_a: int, zone_b: int) -> int:
    """HAMi sGPU ``score.go``: 10 for two devices in the same non-zero zone."""
    return DIRECT_LINK_SCORE if zone_a and zone_a == zone_b else 0
