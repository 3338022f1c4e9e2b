"""Each tenant's charge against the fake GPU time it used, from bench/turns.py records (pairover, pairring).

Usage: pair_ratios.py RECORD.json [...]: per row (case, pair, arm@build), each tenant's charged / fake GPU time and
the pair's charged sum over its useful GPU time, median (min-max) over the rounds, then the medians of each tenant's
charged and GPU % of its wall and of the pair's launches, as a Markdown table. Rows without a charge (native) are
left out."""

from __future__ import annotations

import json
import statistics
import sys


def span(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def table(record: dict) -> list[str]:
    lines = ["| case | pair | arm@build | A charged / GPU | B charged / GPU | pair charged / useful | A charged % | "
             "A GPU % | B charged % | B GPU % | launches |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in record["rows"]:
        runs = row["runs"]
        if "charged" not in runs[0]["tenants"][0]:
            continue
        ratio = [[x["tenants"][i]["charged"] / x["tenants"][i]["share"] for x in runs] for i in (0, 1)]
        pair = [(x["tenants"][0]["charged"] + x["tenants"][1]["charged"]) / x["useful"] for x in runs]

        def med(key: str, i: int, runs: list[dict] = runs) -> float:
            return statistics.median(x["tenants"][i][key] for x in runs)

        lines.append(f"| {row['case']} | {row['limits']} | {row['arm']} | {span(ratio[0])} | {span(ratio[1])} | "
                     f"{span(pair)} | {med('charged', 0):.1f} | {med('share', 0):.1f} | {med('charged', 1):.1f} | "
                     f"{med('share', 1):.1f} | {statistics.median(x['launches'] for x in runs):.0f} |")
    return lines


def main() -> int:
    for path in sys.argv[1:]:
        with open(path) as f:
            print("\n".join([path, *table(json.load(f))]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
