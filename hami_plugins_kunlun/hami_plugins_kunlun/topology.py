"""Whole-card selection on an 8-card P800 node (docs/vendors.md, Kunlunxin; HAMi ``developers/kunlunxin-topology.md``).

Cards 0-3 and 4-7 are two fully connected XPU-link groups (HAMi ``GroupConnection``), one per NUMA
node; card i and i+4 are linked across (``InterGroupConnection``). HAMi's written rules:

1. only 1, 2, 4 or 8 cards per request;
2. 1, 2 and 4 cards must not cross a group (NUMA);
3. minimise fragmentation: choose the group whose MTF ("minimised tasks to fill": the fewest
   allowed-size requests that fill the group's free cards) grows least.

Ties (equal MTF change) go to the lowest card indexes (the policy order of idle cards), as the core
engine's ``prefer="least-fragmentation"`` does; the reference does not fix a tie-break. The engine applies
these rules from the family's ``DeviceSetRules``; this module states them for tests and the docs.
"""

from __future__ import annotations

from collections.abc import Iterable

from hami_hal.models import Device, Link, LinkKind, Topology

CARDS_PER_NODE = 8
GROUPS: tuple[tuple[int, ...], ...] = ((0, 1, 2, 3), (4, 5, 6, 7))
ALLOWED_COUNTS: tuple[int, ...] = (1, 2, 4, 8)
#: HAMi ``InterGroupConnection``: the links between the two groups.
CROSS_PAIRS: tuple[tuple[int, int], ...] = ((0, 4), (1, 5), (2, 6), (3, 7))


def mtf(free_in_group: int) -> int:
    """Fewest requests of 4, 2 and 1 cards that fill ``free_in_group`` free cards of one group."""
    return free_in_group // 4 + (free_in_group % 4) // 2 + free_in_group % 2


def node_mtf(free: Iterable[int]) -> int:
    free = set(free)
    return sum(mtf(len(free.intersection(g))) for g in GROUPS)


def mtf_delta_score(delta: int) -> int:
    """HAMi node score bonus for an MTF change (code ``calcscore``: −1→3000 … +2→0, else 1000)."""
    return {-1: 3000, 0: 2000, 1: 1000, 2: 0}.get(delta, 1000)


def refusal(count: int) -> str | None:
    """Why a whole-card count is never allowed, or None."""
    if count not in ALLOWED_COUNTS:
        return f"Kunlunxin whole cards come in 1, 2, 4 or 8 per request, not {count}"
    return None


def choose_whole(free: Iterable[int], count: int) -> list[int] | None:
    """Card indexes for a whole-card request of ``count`` given the free card indexes, or None."""
    free = set(free)
    if refusal(count) is not None:
        return None
    if count == CARDS_PER_NODE:
        return sorted(free) if len(free) == CARDS_PER_NODE and free == set(range(CARDS_PER_NODE)) else None
    best: tuple[int, int] | None = None
    chosen: list[int] | None = None
    for gi, group in enumerate(GROUPS):
        avail = sorted(free.intersection(group))
        if len(avail) < count:
            continue
        delta = mtf(len(avail) - count) - mtf(len(avail))
        key = (delta, gi)
        if best is None or key < best:
            best, chosen = key, avail[:count]
    return chosen


def topology(devices: list[Device]) -> Topology:
    """XPU links: full mesh inside each group and the four cross pairs (``InterGroupConnection``); every other
    pair goes over PCIe between the two sockets."""
    by_index = {d.index: d for d in devices}
    links: list[Link] = []
    for group in GROUPS:
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                if a in by_index and b in by_index:
                    links.append(Link(a=by_index[a].uuid, b=by_index[b].uuid, kind=LinkKind.NVLINK, count=1))
    for a in GROUPS[0]:
        for b in GROUPS[1]:
            if a in by_index and b in by_index:
                kind = LinkKind.NVLINK if (a, b) in CROSS_PAIRS else LinkKind.CROSS_CPU
                links.append(Link(a=by_index[a].uuid, b=by_index[b].uuid, kind=kind, count=1))
    return Topology(links=links, numa={d.uuid: d.numa_node for d in devices})
