"""The paired alone statistic (issue 18, inferalone): a library arm's throughput against native's when the host
drifts, from many short windows taken in turn on one core.

The windows run in blocks, each block the arms forward then backward (native, lib, lib, native: ABBA; with more
arms A B C C B A). A block's ratio for an arm is the sum of its rates in the block over the sum of native's: a
drift linear over the block's span hits both sums alike and cancels exactly, and a step (the H200 host switched
between two speeds, record 3 and record 13) spoils only the block it falls in. The statistic is the median of the
block ratios, with a percentile bootstrap interval of that median (deterministic seed: the same windows always give
the same interval) and the ratios' min-max. Three 4 s rounds of native then library on that host read 85.3, 91.6
and 102.8 % of native (record 13): the plain ratio of medians measured the drift, not the library.

Standard library only: bench/launch_cost.py writes the windows and these figures, bench/issue18_judge.py reads
the windows again through the same functions.
"""

from __future__ import annotations

import random
import statistics

NATIVE = "native"
#: Bootstrap resamples of the block ratios, and the interval's two-sided coverage.
BOOT_RESAMPLES = 2000
BOOT_COVERAGE = 0.95
BOOT_SEED = 18


def block_order(arms: list[str], half: int) -> list[str]:
    """The arms' order in a block's first (half 0) or second (half 1) half: forward, then backward."""
    return list(arms) if half == 0 else list(reversed(arms))


def block_ratios(windows: list[dict], arm: str, native: str = NATIVE) -> list[float]:
    """Per block (the windows' `block` field), the arm's rates summed over native's summed, for every block with
    at least one window of each, in block order. A window without a rate (a failed one) leaves its block out:
    half a block no longer cancels a drift."""
    blocks: dict[int, dict[str, list[float | None]]] = {}
    for w in windows:
        blocks.setdefault(int(w["block"]), {}).setdefault(w["arm"], []).append(w.get("rate"))
    out = []
    for k in sorted(blocks):
        a, n = blocks[k].get(arm, []), blocks[k].get(native, [])
        if not a or not n or any(not x for x in a + n) or len(a) != len(n):
            continue
        out.append(sum(a) / sum(n))
    return out


def bootstrap_median(values: list[float], resamples: int = BOOT_RESAMPLES, coverage: float = BOOT_COVERAGE,
                     seed: int = BOOT_SEED) -> tuple[float, float]:
    """A percentile bootstrap interval of the median of values (resampled with replacement)."""
    rng = random.Random(seed)
    n = len(values)
    meds = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(resamples))
    tail = (1 - coverage) / 2
    return meds[int(tail * (resamples - 1))], meds[int((1 - tail) * (resamples - 1) + 0.5)]


def paired_stat(ratios: list[float]) -> dict:
    """The median of the block ratios (as % of native), its bootstrap interval, the min-max, the count."""
    if not ratios:
        return {"n": 0}
    lo, hi = bootstrap_median(ratios) if len(ratios) > 1 else (ratios[0], ratios[0])
    pct = lambda x: round(100 * x, 2)  # noqa: E731 - a local rounding
    return {"n": len(ratios), "median_pct": pct(statistics.median(ratios)), "interval_pct": [pct(lo), pct(hi)],
            "coverage": BOOT_COVERAGE, "min_max_pct": [pct(min(ratios)), pct(max(ratios))],
            "blocks_pct": [pct(r) for r in ratios]}


def summarise(windows: list[dict], arms: list[str], native: str = NATIVE) -> dict:
    """Every arm but native: paired_stat of its block ratios."""
    return {a: paired_stat(block_ratios(windows, a, native)) for a in arms if a != native}
