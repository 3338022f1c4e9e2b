"""Choose ``count`` distinct devices among the feasible ones, by policy, NUMA and topology."""

from __future__ import annotations

from itertools import combinations

from ..models import DevicePolicy
from .device_fit import Proposal

#: Above this many candidates, topology-aware selection of k>1 devices switches to greedy growth.
EXHAUSTIVE_LIMIT = 4096


def order(props: list[Proposal], policy: DevicePolicy) -> list[Proposal]:
    """Policy order: spread = least-used first, binpack = most-used first; ties by device index."""
    if policy is DevicePolicy.BINPACK:
        return sorted(props, key=lambda p: (-p.state.score(), p.state.device.index))
    return sorted(props, key=lambda p: (p.state.score(), p.state.device.index))


def _pair(scores: dict[tuple[str, str], int], a: Proposal, b: Proposal) -> int:
    return scores.get((a.state.device.uuid, b.state.device.uuid), 0)


def _combos(n: int, k: int) -> int:
    out = 1
    for i in range(k):
        out = out * (n - i) // (i + 1)
    return out


def topology_pick(props: list[Proposal], count: int, scores: dict[tuple[str, str], int]) -> list[Proposal]:
    """HAMi §6.7: one device = the worst-connected; k devices = the best-connected set."""
    if count == 1:
        def isolation(p: Proposal) -> int:
            return sum(_pair(scores, p, q) for q in props if q is not p)

        best = min(range(len(props)), key=lambda i: (isolation(props[i]), i))
        return [props[best]]
    if _combos(len(props), count) <= EXHAUSTIVE_LIMIT:
        best_set, best_score = None, -1
        for combo in combinations(range(len(props)), count):
            s = sum(_pair(scores, props[a], props[b]) for a, b in combinations(combo, 2))
            if s > best_score:
                best_set, best_score = combo, s
        return [props[i] for i in best_set]
    chosen = [props[0]]
    rest = props[1:]
    while len(chosen) < count:
        nxt = max(range(len(rest)), key=lambda i: (sum(_pair(scores, rest[i], c) for c in chosen), -i))
        chosen.append(rest.pop(nxt))
    return chosen


def pick(
    props: list[Proposal],
    count: int,
    policy: DevicePolicy,
    numa_bind: bool,
    scores: dict[tuple[str, str], int] | None,
) -> list[Proposal] | None:
    """The chosen proposals, or None when ``count`` distinct devices cannot be chosen."""
    ordered = order(props, policy)
    groups: list[list[Proposal]] = [ordered]
    if numa_bind:
        by_numa: dict[int | None, list[Proposal]] = {}
        for p in ordered:
            by_numa.setdefault(p.state.device.numa_node, []).append(p)
        groups = list(by_numa.values())
    for group in groups:
        if len(group) < count:
            continue
        if policy is DevicePolicy.TOPOLOGY_AWARE and scores:
            return topology_pick(group, count, scores)
        return group[:count]
    return None
