"""HAMi's Kunlunxin rules re-written from the reference text alone (docs/vendors.md, Kunlunxin), as brute force.

This is the *oracle* of the differential table: it shares no code with the plugin or the engine.
Whole cards: only 1, 2, 4, 8; 1/2/4 inside one group of four (0-3 / 4-7); among valid sets, the least
MTF growth (MTF by exhaustive search), ties to the lowest indexes (the policy order of idle cards).
vXPU: align memory up to 24576 / 49152 / 98304 (unset or > 49152: 98304); a card takes only slices of
its current size, at most 98304 / size of them; a card held whole takes nothing; cards are taken
least-used first (slices/4 + 2 × memory fraction, ties by index). The node has 32 driver handles
(8 cards + 4 per 1/4-split card + 2 per 1/2-split card); when the least-used set would overdraw them,
cards already cut to the size (costing nothing) are taken first, then the rest least-used first; still
over → refused. (The reference fixes neither tie-break; these are the project's, stated here.)
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

CARD = 98304
GROUP_A, GROUP_B = frozenset(range(4)), frozenset(range(4, 8))


def _task_ok(cards: frozenset[int]) -> bool:
    n = len(cards)
    if n == 8:
        return True
    return n in (1, 2, 4) and (cards <= GROUP_A or cards <= GROUP_B)


@cache
def mtf_bruteforce(free: frozenset[int]) -> int:
    """Fewest allowed tasks whose cards exactly cover ``free``."""
    if not free:
        return 0
    first = min(free)
    best = 99
    rest = sorted(free - {first})
    for k in range(0, len(rest) + 1):
        for others in combinations(rest, k):
            task = frozenset((first, *others))
            if _task_ok(task):
                best = min(best, 1 + mtf_bruteforce(free - task))
    return best


def whole(free: set[int], count: int) -> list[int] | None:
    if count not in (1, 2, 4, 8):
        return None
    before = mtf_bruteforce(frozenset(free))
    options = []
    for combo in combinations(sorted(free), count):
        chosen = frozenset(combo)
        if not _task_ok(chosen):
            continue
        delta = mtf_bruteforce(frozenset(free) - chosen) - before
        options.append((delta, combo))
    return list(min(options)[1]) if options else None


def refusal(family: str, cards: dict[int, tuple[str, int, int]], count: int, memory: int | None) -> str:
    """Why a request the rules refuse is refused: ``count`` (not 1/2/4/8 whole cards), ``handles`` (the
    32-handle budget; it would fit without it) or ``capacity`` (too few suitable cards)."""
    if family == "whole":
        return "count" if count not in (1, 2, 4, 8) else "capacity"
    return "handles" if vxpu(cards, count, memory, None) is not None else "capacity"


def align(memory: int | None) -> int:
    if memory is None or memory <= 0 or memory > 49152:
        return CARD
    return 24576 if memory <= 24576 else 49152


def vxpu(cards: dict[int, tuple[str, int, int]], count: int, memory: int | None,
         handle_limit: int | None = 32) -> tuple[list[int], int] | None:
    """``cards``: index -> ("free", 0, 0) | ("whole", 0, 0) | ("split", size, used). (chosen, size) or None."""
    size = align(memory)
    per_card = CARD // size

    def extra(s: int) -> int:
        return 0 if s >= CARD else CARD // s

    def handles(extra_cards: list[int]) -> int:
        split = {i: s for i, (kind, s, _) in cards.items() if kind == "split"}
        split.update({i: size for i in extra_cards})
        return len(cards) + sum(extra(s) for s in split.values())

    def used(i: int) -> float:
        kind, s, n = cards[i]
        return 0.0 if kind != "split" else n / 4 + 2 * n * s / CARD

    fits = [i for i in sorted(cards, key=lambda i: (used(i), i))
            if cards[i][0] == "free" or (cards[i][0] == "split" and cards[i][1] == size and cards[i][2] < per_card)]
    if len(fits) < count:
        return None
    chosen = fits[:count]
    if handle_limit is not None and handles(chosen) > handle_limit:
        hosting = [i for i in fits if cards[i][0] == "split"]
        chosen = hosting[:count] + [i for i in fits if cards[i][0] == "free"][: max(0, count - len(hosting))]
        if handles(chosen) > handle_limit:
            return None
    return sorted(chosen), size
