"""Run many simulations in parallel and write the curves CSV, the summary table and the plot."""

from __future__ import annotations

import csv
import json
import os
import platform
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hami_hal.errors import InputError

from .cluster import DEFAULT_TIE_BREAK
from .run import MAX_BIN, FileSource, RunResult, Source, TraceSource, simulate_one

#: Published medians (scheduling-benchmark.md §9.3): unallocated % at arrival 100 / 130.
PUBLISHED_UNALLOCATED = {
    "default": {"random": (13.75, 12.62), "dotprod": (9.44, 9.20), "clustering": (8.42, 8.21),
                "packing": (8.19, 7.94), "bestfit": (7.09, 6.89), "fgd": (4.77, 4.60)},
    "cpu050": {"random": (11.02, 8.84), "dotprod": (6.94, 6.71), "clustering": (6.52, 6.21),
               "packing": (6.47, 6.21), "bestfit": (6.42, 6.18), "fgd": (5.00, 4.80)},
    "cpu200": {"random": (17.00, 16.30), "dotprod": (12.24, 12.00), "clustering": (10.25, 9.98),
               "packing": (9.87, 9.62), "bestfit": (7.85, 7.58), "fgd": (5.18, 4.92)},
    "gpushare40": {"random": (15.04, 13.97), "dotprod": (10.66, 10.42), "clustering": (10.18, 9.94),
                   "packing": (10.19, 9.93), "bestfit": (8.53, 8.27), "fgd": (6.05, 5.86)},
    "gpushare80": {"random": (19.35, 18.75), "dotprod": (15.89, 15.53), "clustering": (15.45, 15.08),
                   "packing": (15.28, 14.94), "bestfit": (13.27, 12.94), "fgd": (10.91, 10.69)},
    "gpuspec10": {"random": (13.69, 12.49), "dotprod": (9.75, 9.56), "clustering": (8.06, 7.81),
                  "packing": (7.77, 7.56), "bestfit": (6.88, 6.67), "fgd": (5.30, 5.06)},
    "gpuspec25": {"random": (14.59, 13.12), "dotprod": (14.55, 10.34), "clustering": (13.59, 8.00),
                  "packing": (13.22, 6.97), "bestfit": (14.30, 6.78), "fgd": (6.08, 5.19)},
    "multigpu20": {"random": (13.16, 11.34), "dotprod": (8.19, 7.98), "clustering": (6.62, 6.41),
                   "packing": (6.49, 6.25), "bestfit": (6.27, 6.10), "fgd": (4.47, 4.35)},
    "multigpu40": {"random": (14.77, 9.98), "dotprod": (5.91, 5.78), "clustering": (4.53, 4.37),
                   "packing": (4.44, 4.25), "bestfit": (4.91, 4.78), "fgd": (3.10, 3.00)},
}


def _task(args: tuple) -> RunResult:
    source, policy, seed, limit, tie_break, engine_check = args
    return simulate_one(source, None, policy, seed, limit=limit, tie_break=tie_break, engine_check=engine_check)


def run_all(
    trace_dir: str,
    variants: list[str],
    policies: list[str],
    seeds: list[int],
    workers: int | None = None,
    limit: int | None = None,
    tie_break: str = DEFAULT_TIE_BREAK,
    progress: bool = True,
    engine_check: bool = True,
) -> list[RunResult]:
    """Every (variant, policy, seed) run of the paper's variants in ``trace_dir``."""
    return run_sources([TraceSource(trace_dir, v) for v in variants], policies, seeds, workers=workers,
                       limit=limit, tie_break=tie_break, progress=progress, engine_check=engine_check)


def run_sources(
    sources: list[Source],
    policies: list[str],
    seeds: list[int],
    workers: int | None = None,
    limit: int | None = None,
    tie_break: str = DEFAULT_TIE_BREAK,
    progress: bool = True,
    engine_check: bool = True,
) -> list[RunResult]:
    """Every (source, policy, seed) run, spread over ``workers`` processes (default: all cores)."""
    for src in sources:
        src.load()  # a bad file fails here, once, with its list of problems, before any worker starts
    tasks = [(src, p, s, limit, tie_break, engine_check) for src in sources for p in policies for s in seeds]
    workers = workers or os.cpu_count() or 1
    results: list[RunResult] = []
    with Progress(
        TextColumn("simulate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not progress
    ) as bar:
        job = bar.add_task("runs", total=len(tasks))
        if workers == 1:
            for t in tasks:
                results.append(_task(t))
                bar.advance(job)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futs = [pool.submit(_task, t) for t in tasks]
                for fut in as_completed(futs):
                    results.append(fut.result())
                    bar.advance(job)
    results.sort(key=lambda r: (r.variant, r.policy, r.seed))
    return results


def summarise(results: list[RunResult], *, full_trace: bool = True) -> list[dict]:
    """Median (and sd) over seeds of the allocation ratio at arrival 100 % and 130 %.

    The paper's figures replay the whole trace; beside a partial run (``--limit``) they would compare
    unlike things, so ``full_trace=False`` leaves them out (None).
    """
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.variant, r.policy), []).append(r)
    rows = []
    for (variant, policy), rs in sorted(groups.items()):
        at100 = [r.curve[100] for r in rs]
        at130 = [r.curve[MAX_BIN] for r in rs]
        pub = PUBLISHED_UNALLOCATED.get(variant, {}).get(policy) if full_trace else None
        rows.append(
            {
                "variant": variant,
                "policy": policy,
                "seeds": len(rs),
                "alloc_100_median": round(statistics.median(at100), 3),
                "alloc_100_sd": round(statistics.pstdev(at100), 3),
                "alloc_130_median": round(statistics.median(at130), 3),
                "published_alloc_100": round(100 - pub[0], 2) if pub else None,
                "published_alloc_130": round(100 - pub[1], 2) if pub else None,
                "failed_pods_median": statistics.median(r.failed for r in rs),
                "bound_100_median": _median_or_none(r.bound_100 for r in rs),
                "bound_130_median": _median_or_none(r.bound_130 for r in rs),
            }
        )
    return rows


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _median_or_none(values) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals), 3) if vals else None


PARTIAL_NOTE = ("Partial run: only the first {limit} arriving pods (--limit); the paper's full-trace figures "
                "are not comparable and are not shown.")


def write_outputs(results: list[RunResult], out: Path, meta: dict) -> dict[str, Path]:
    """``<out>.csv`` (curves), ``<out>.json`` + ``<out>.md`` (summary), ``<out>.png`` (plot)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out.with_suffix(".csv"), "json": out.with_suffix(".json"), "md": out.with_suffix(".md")}
    with paths["csv"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["variant", "policy", "seed", "arrived_pct", "alloc_pct"])
        for r in results:
            for b, v in enumerate(r.curve):
                w.writerow([r.variant, r.policy, r.seed, b, f"{v:.4f}"])
    partial = meta.get("limit") is not None
    rows = summarise(results, full_trace=not partial)
    meta = {
        **meta,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "provenance": meta.get("provenance")
        or "simulated: openb GPU trace v2023 node/pod lists (FGD method); no hardware involved",
    }
    paths["json"].write_text(json.dumps({"meta": meta, "summary": rows}, indent=2))
    lines = [
        f"# Trace simulation: GPU allocation ratio ({meta['date']})",
        "",
        f"Command: `{meta.get('command', '')}`  ",
        f"Machine: {meta['machine']}  ",
        f"Provenance: {meta['provenance']}",
        "",
        *([PARTIAL_NOTE.format(limit=meta["limit"]), ""] if partial else []),
    ]
    published = any(r["published_alloc_100"] is not None for r in rows)
    head = ("| variant | policy | seeds | alloc % @100 (median) | sd | alloc % @130 | failed pods "
            "| offline bound @100 | offline bound @130 |")
    rule = "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    if published:
        head += " published @100 | published @130 |"
        rule += "---:|---:|"
    lines += [head, rule]
    for r in rows:
        line = (f"| {r['variant']} | {r['policy']} | {r['seeds']} | {r['alloc_100_median']:.2f} "
                f"| {r['alloc_100_sd']:.2f} | {r['alloc_130_median']:.2f} | {r['failed_pods_median']} "
                f"| {_pct(r['bound_100_median'])} | {_pct(r['bound_130_median'])} |")
        if published:
            line += f" {r['published_alloc_100'] or '–'} | {r['published_alloc_130'] or '–'} |"
        lines.append(line)
    lines += ["", "Offline bound: no placement of the pods arrived by then, chosen with hindsight, could allocate more "
              "(a pattern LP: shares packed per GPU, models, GPU count, CPU/memory stranding; "
              "`hami_scheduler/sim/bound.py` proves it)."]
    paths["md"].write_text("\n".join(lines) + "\n")
    png = plot(results, out.with_suffix(".png"))
    if png:
        paths["png"] = png
    return paths


@dataclass(frozen=True)
class Curve:
    """One run's allocation curve as stored in ``<out>.csv`` (what :func:`plot` needs)."""

    variant: str
    policy: str
    seed: int
    curve: list[float]


def read_curves(path: Path) -> list[Curve]:
    """Curves back from a ``simulate --out`` CSV, so a plot can be drawn without re-running."""
    acc: dict[tuple[str, str, int], dict[int, float]] = {}
    try:
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                key = (row["variant"], row["policy"], int(row["seed"]))
                acc.setdefault(key, {})[int(row["arrived_pct"])] = float(row["alloc_pct"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputError("csv", str(path), f"is not a simulate curve file ({exc})") from None
    curves = []
    for (variant, policy, seed), points in sorted(acc.items()):
        if sorted(points) != list(range(MAX_BIN + 1)):
            raise InputError("csv", str(path), f"{variant}/{policy}/{seed} lacks arrival bins 0..{MAX_BIN}")
        curves.append(Curve(variant, policy, seed, [points[b] for b in range(MAX_BIN + 1)]))
    if not curves:
        raise InputError("csv", str(path), "holds no curves")
    return curves


def plot(results: Sequence[RunResult | Curve], path: Path) -> Path | None:
    """Unallocated GPU % vs arrived %, median over seeds, one panel per variant.

    Returns None when matplotlib (the ``plot`` extra) is missing; callers say so.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    variants = sorted({r.variant for r in results})
    cols = min(3, len(variants))
    rows = (len(variants) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, variant in zip(axes.flat, variants, strict=False):
        for policy in sorted({r.policy for r in results if r.variant == variant}):
            rs = [r for r in results if r.variant == variant and r.policy == policy]
            med = [100 - statistics.median(r.curve[b] for r in rs) for b in range(MAX_BIN + 1)]
            ax.plot(range(MAX_BIN + 1), med, label=policy)
        ax.set_title(variant)
        ax.set_xlim(75, 130)
        ax.set_ylim(0, 25)
        ax.set_xlabel("Arrived workloads (% of cluster GPU capacity)")
        ax.set_ylabel("Unallocated GPU (%)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(variants):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def simulate_files(
    pods: str | Path,
    nodes: str | Path,
    policies: Sequence[str] = ("fgd", "frag-pack"),
    seeds: Sequence[int] = (42,),
    limit: int | None = None,
    workers: int | None = 1,
    tie_break: str = DEFAULT_TIE_BREAK,
    engine_check: bool = True,
) -> list[dict]:
    """Python API of ``hami-scheduler simulate --pods FILE --nodes FILE``: summary rows (see :func:`summarise`).

    The files use the openb CSV format (:mod:`.listfile`); a bad file raises ``ListFileError`` listing
    every bad field. Published columns are None: they exist only for the paper's own variants.
    """
    from ..policies import POLICIES

    for p in policies:
        if p not in POLICIES:
            raise InputError("policies", p, f"is not one of {', '.join(POLICIES)}")
    source = FileSource(str(nodes), str(pods))
    results = run_sources([source], list(policies), list(seeds), workers=workers, limit=limit,
                          tie_break=tie_break, progress=False, engine_check=engine_check)
    return summarise(results)
