"""Multi-device rules of a family (``DeviceSetRules``): counts, allowed sets, groups and bundles.

The engine applies them after each device was judged alone: among the devices that fit, it takes
the allowed set ranked best by the request's policy order (lowest sum of positions), or refuses.
"""

from __future__ import annotations

from ..models import DeviceSetRules
from .device_fit import Proposal


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


def candidate_sets(rules: DeviceSetRules, avail: list[int], count: int, rank: dict[int, int]) -> list[list[int]]:
    """Every device set the rules allow among ``avail`` (device indexes that fit)."""
    have = set(avail)
    if count in rules.allowed_sets:
        sets = [list(s) for s in rules.allowed_sets[count] if have.issuperset(s)]
    elif rules.groups:
        sets = []
        if count <= max(len(g) for g in rules.groups):
            for g in rules.groups:
                if count <= len(g):
                    got = _take([i for i in g if i in have], count, rules.bundles, rank)
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


def pick_in_sets(ordered: list[Proposal], count: int, rules: DeviceSetRules) -> list[Proposal] | None:
    """The proposals of the best-ranked allowed set, or None."""
    by_index = {p.state.device.index: p for p in ordered}
    rank = {p.state.device.index: i for i, p in enumerate(ordered)}
    sets = candidate_sets(rules, list(by_index), count, rank)
    if not sets:
        return None
    best = min(sets, key=lambda s: (sorted(rank[i] for i in s), s))
    return [by_index[i] for i in sorted(best, key=lambda i: rank[i])]
