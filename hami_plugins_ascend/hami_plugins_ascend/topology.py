"""HCCS groups and 910C die pairs: where they come from and what links they imply.

HAMi (ascend-device-plugin ``getDeviceNetworkID``): on an 8-card 910 server, cards 0-3 share HCCS
group (NetworkID) 0 and cards 4-7 group 1; a 910C superPod is one HCCS domain (NetworkID 0), and its
two dies per card (module) are joined by SIO and must be taken together for multi-die pods. 310P cards
have no HCCS (PCIe only). Computed from the chip family and index, identically on real and simulated
nodes.
"""

from __future__ import annotations

from hami_hal.models import Device, Link, LinkTier, Topology

#: Cards per HCCS group on 8-card 910A/910B servers.
HCCS_GROUP_SIZE = 4
#: Pair scores for the topology-aware policy: HCCS links per lane like HAMi's fabric scoring (100 per link);
#: PCIe through one CPU 20, across sockets 10 (HAMi's SameCPU / CrossCPU).
FABRIC_SCORE, HOST_SCORE, SOCKETS_SCORE = 100, 20, 10


def network_id(chip_name: str, index: int, super_pod: bool) -> int | None:
    """HAMi's NetworkID of a chip, None when the chip has no HCCS (310P)."""
    if super_pod:
        return 0
    if chip_name.startswith("910"):
        return index // HCCS_GROUP_SIZE
    return None


def die_pair(super_pod: bool, npu_id: int) -> int | None:
    """The module (card) a 910C die belongs to; dies of one card form a pair."""
    return npu_id if super_pod else None


def topology(devices: list[Device]) -> Topology:
    """Links between every pair: SIO+HCCS in a 910C pair (2), HCCS in a group (1), else PCIe by NUMA."""
    links: list[Link] = []
    for i, a in enumerate(devices):
        for b in devices[i + 1:]:
            ga, gb = a.attributes.get("hccs_group"), b.attributes.get("hccs_group")
            pa, pb = a.attributes.get("die_pair"), b.attributes.get("die_pair")
            if pa is not None and pa == pb:
                links.append(Link(a=a.uuid, b=b.uuid, kind="sio+hccs", tier=LinkTier.FABRIC, count=2,
                                  score=2 * FABRIC_SCORE))
            elif ga is not None and ga == gb:
                links.append(Link(a=a.uuid, b=b.uuid, kind="hccs", tier=LinkTier.FABRIC, count=1, score=FABRIC_SCORE))
            else:
                same = a.numa_node is not None and a.numa_node == b.numa_node
                links.append(Link(a=a.uuid, b=b.uuid, kind="pcie", tier=LinkTier.HOST if same else LinkTier.SOCKETS,
                                  score=HOST_SCORE if same else SOCKETS_SCORE))
    return Topology(links=links, numa={d.uuid: d.numa_node for d in devices})
