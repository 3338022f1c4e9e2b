"""Orderings of levels used by merge (worst wins) and diff (better or worse)."""

from __future__ import annotations

from hami_hal.models import Level

#: Worst first: when nodes disagree, the merged cell takes the lowest rank.
MERGE_RANK = {Level.UNSUPPORTED: 0, Level.PARTIAL: 1, Level.UNVERIFIED: 2, Level.SUPPORTED: 3,
              Level.NOT_APPLICABLE: 4}
#: How good a level is for a user; not-applicable is outside the scale (None).
QUALITY = {Level.UNSUPPORTED: 0, Level.UNVERIFIED: 1, Level.PARTIAL: 2, Level.SUPPORTED: 3}


def worst(levels: list[Level]) -> Level:
    return min(levels, key=MERGE_RANK.__getitem__)


def direction(before: Level, after: Level) -> str:
    """``better``, ``worse`` or ``changed`` (to or from not-applicable)."""
    if before in QUALITY and after in QUALITY:
        return "better" if QUALITY[after] > QUALITY[before] else "worse"
    return "changed"
