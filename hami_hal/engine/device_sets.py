"""Multi-device rules of a family (``DeviceSetRules``): counts, allowed sets, groups and bundles.

The engine applies them after each device was judged alone: among the devices that fit, it takes
the allowed set ranked best by the request's policy order (lowest sum of positions), or refuses.
"""

from __future__ import annotations

from itertools import combinations

from ..models import DeviceSetRules
from .device_fit import Proposal

#: Largest group whose subsets are all compared under ``least-fragmentation`` (C(16, 8) = 12,870).
SUBSET_LIMIT = 16


def count_refusal(rules: DeviceSetRules | None, count: int) -> str | None:
    """Why a request for ``count`` devices can never be placed under ``rules``, or None."""
    if rules is None:
        return None
    if rules.max_devices is not None and count > rules.max_devices:
        return f"{count} devices asked, the family allows at most {rules.max_devices} per container"
    if rules.allowed_counts and count not in rules.allowed_counts:
        return f"{count} devices asked, the family allows {', '.join(map(str, rules.allowed_counts))}"
    return None


def _take(avail: list[int], count: int, bundles: list[list[int]], rank: dict[int, int]) -> list[int] | None:
    """``count`` devices from ``avail`` in rank order, taking bundles whole; None when impossible."""
    inside = {i for b in bundles for i in b}
    units = [b for b in bundles if all(i in avail for i in b)]
    units += [[i] for i in avail if i not in inside]
    units.sort(key=lambda u: min(rank[i] for i in u))
    out: list[int] = []
    for u in units:
        if len(out) + len(u) <= count:
            out += u
        if len(out) == count:
            return out
    return None


def _closed(chosen: list[int], bundles: list[list[int]]) -> bool:
    s = set(chosen)
    return all(s.isdisjoint(b) or s.issuperset(b) for b in bundles)


def candidate_sets(rules: DeviceSetRules, avail: list[int], count: int, rank: dict[int, int],
                   every_subset: bool = False) -> list[list[int]]:
    """The device sets the rules allow among ``avail`` (device indexes that fit): per group the
    best-ranked one, or with ``every_subset`` every choice inside a group (bounded by ``SUBSET_LIMIT``)."""
    have = set(avail)
    if count in rules.allowed_sets:
        sets = [list(s) for s in rules.allowed_sets[count] if have.issuperset(s)]
    elif rules.groups:
        sets = []
        if count <= max(len(g) for g in rules.groups):
            for g in rules.groups:
                if count <= len(g):
                    inside = [i for i in g if i in have]
                    if every_subset and not rules.bundles and len(inside) <= SUBSET_LIMIT:
                        sets.extend(list(c) for c in combinations(inside, count))
                        continue
                    got = _take(inside, count, rules.bundles, rank)
                    if got:
                        sets.append(got)
        else:  # larger than any group: whole groups only
            full = sorted((g for g in rules.groups if have.issuperset(g)), key=lambda g: min(rank[i] for i in g))
            out: list[int] = []
            for g in full:
                if len(out) + len(g) <= count:
                    out += g
            if len(out) == count:
                sets.append(out)
    else:
        got = _take(avail, count, rules.bundles, rank)
        sets = [got] if got else []
    return [s for s in sets if _closed(s, rules.bundles)]


def fewest_tasks(rules: DeviceSetRules, group: list[int], free: frozenset[int]) -> int:
    """Fewest allowed requests that exactly cover the group's ``free`` devices (``len(free)`` + 1 when none
    can): sizes from ``allowed_counts`` (any when empty), sets from ``allowed_sets`` where listed."""
    sizes = [c for c in (rules.allowed_counts or range(1, len(group) + 1)) if c <= len(group)]
    memo: dict[frozenset[int], int] = {}

    def cover(left: frozenset[int]) -> int:
        if not left:
            return 0
        if left in memo:
            return memo[left]
        first = min(left)
        best = len(free) + 1
        for size in sizes:
            if size in rules.allowed_sets:
                options = [frozenset(s) for s in rules.allowed_sets[size] if first in s and left.issuperset(s)]
            else:
                rest = sorted(left - {first})
                options = [frozenset((first, *c)) for c in combinations(rest, size - 1)]
            for opt in options:
                best = min(best, 1 + cover(left - opt))
        memo[left] = best
        return best

    return cover(free)


def fragmentation_after(rules: DeviceSetRules, avail: set[int], chosen: list[int]) -> int:
    """Σ over groups of :func:`fewest_tasks` for the group's devices left free after ``chosen``."""
    left = avail - set(chosen)
    return sum(fewest_tasks(rules, g, frozenset(i for i in g if i in left)) for g in rules.groups)


def pick_in_sets(ordered: list[Proposal], count: int, rules: DeviceSetRules) -> list[Proposal] | None:
    """The proposals of the best allowed set (by ``rules.prefer``), or None."""
    by_index = {p.state.device.index: p for p in ordered}
    rank = {p.state.device.index: i for i, p in enumerate(ordered)}
    sets = candidate_sets(rules, list(by_index), count, rank, every_subset=rules.prefer != "policy")
    if not sets:
        return None
    if rules.prefer == "least-fragmentation" and rules.groups:
        avail = set(by_index)
        best = min(sets, key=lambda s: (fragmentation_after(rules, avail, s), sorted(rank[i] for i in s), s))
    else:
        best = min(sets, key=lambda s: (sorted(rank[i] for i in s), s))
    return [by_index[i] for i in sorted(best, key=lambda i: rank[i])]
