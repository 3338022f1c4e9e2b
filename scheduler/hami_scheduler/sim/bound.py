"""An offline upper bound on the GPU any placement of the same pods could allocate.

Not a heuristic: every number returned is proven to be at least the optimum of the offline problem
"choose which of the arrived pods to place, and where, to maximise the GPU milli allocated", where a
placement respects each node's CPU, memory, GPU count, per-GPU milli (1000) and model (``gpu_spec``).

**The relaxation.** Nodes are grouped into *atoms* A (a partition: :func:`atoms_by_spec`, nodes every pod's model set treats alike). Pods
are grouped into classes c (same CPU, memory, GPU count k_c, per-GPU milli s_c, allowed models), U_c
pods each, g_c = k_c·s_c GPU milli each. Take any feasible placement and let f_cA be the number of
class-c pods it puts on atom A, z_Ap the number of GPUs of A whose shares form the multiset p (a
*pattern*: sizes summing to ≤ 1000; a k-GPU pod puts one share s on each of k GPUs). With G_A the GPUs
of atom A, the placement satisfies:

1. Pods: Σ_A f_cA ≤ U_c, and f_cA = 0 where no node of A can hold one pod of c (model, GPU count, CPU,
   memory).
2. Patterns: Σ_p z_Ap = G_A (every GPU has exactly one pattern, maybe empty).
3. Shares: for every size s, Σ_{c: s_c = s} k_c f_cA ≤ Σ_p a_sp z_Ap (a_sp = copies of s in p): each share
   sits on one GPU. Two shares > 500 thus never share a GPU, a GPU holding 810 takes ≤ 190 more, …
4. Per atom: CPU Σ_c cpu_c f_cA ≤ Σ_{n∈A} CPU_n (same for memory); GPU count: for k ≥ 2,
   Σ_{c: k_c ≥ k} g_c f_cA ≤ Σ_{n∈A, G_n ≥ k} 1000·G_n; stranding: for a ratio r > 0 and
   H_r = {c : cpu_c ≥ r·g_c}, the pods of H_r on one node use GPU ≤ min(1000·G_n, CPU_n / r), so
   Σ_{c∈H_r} g_c f_cA ≤ Σ_{n∈A} min(1000·G_n, CPU_n / r) (same for memory).

The placement allocates Σ g_c f_cA. For any multipliers λ ≥ 0 (rows 4, right-hand sides b) and π ≥ 0
(rows 3), adding λ·(slack of rows 4) ≥ 0 and π·(slack of rows 3) ≥ 0 and then using rows 1 and 2:

    Σ g_c f_cA ≤ λ·b + Σ_c U_c·max(0, max_A (g_c − λ·R_cA − k_c·π_{A,s_c})) + Σ_A G_A·K_A(π)

(R_cA: column (c, A) of rows 4; K_A(π) = max over patterns p of Σ_s π_As·a_sp ≥ 0, an unbounded knapsack
of capacity 1000 over the share sizes, solved exactly by dynamic programming). So **every** λ, π ≥ 0
gives a valid bound (Lagrangian duality); :func:`lagrangian_bound` evaluates it. Good multipliers come
from the LP that rows 1-4 form (a Gilmore-Gomory pattern LP), solved by :class:`_Tableau` with column
generation (the knapsack prices new patterns); only its duals are used, so floating-point error or an
early stop in the LP can loosen the bound but never make it wrong. The reported value is the formula,
rounded up by a relative 1e-9, and never above total demand or capacity.

**Size.** The trace's lists give ≤ 402 classes, 21 share sizes and ≤ 7 atoms: solved exactly, in well under
a second to a few seconds. An operator's larger list is first coarsened (:func:`coarsen`): merged pods take
the least CPU, memory and share and the largest GPU of their group, and models are ignored past MAX_ATOMS,
which only enlarges the set of feasible placements, so the bound stays valid (looser); a list that still
does not fit keeps the trivial bound min(demand, capacity).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .trace import TraceNode, TracePod

#: CPU (and memory) per GPU-milli ratios the stranding rows use: quantiles of the pods' own ratios.
RATIO_QUANTILES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
#: GPU milli of one whole GPU (the knapsack's capacity).
GPU_MILLI = 1000
#: Relative amount the reported bound is rounded up by (covers floating-point error in the formula).
ROUND_UP = 1e-9
#: Column-generation rounds and simplex pivots before the LP stops (the bound stays valid, only looser).
MAX_ROUNDS = 200
MAX_PIVOTS = 10_000
#: LP size limits; a larger pod or node list is coarsened (:func:`coarsen`) until it fits.
MAX_CLASSES = 500
MAX_SIZES = 48
MAX_ATOMS = 8
#: Share grid (milli) and CPU/memory bucket factors tried, finest first, when coarsening.
SHARE_GRID = 25
BUCKET_FACTORS = (1.1, 1.5, 2.0, 4.0, None)  # None: one bucket


@dataclass(frozen=True)
class Atom:
    """A group of nodes the LP sees only in aggregate."""

    models: frozenset[str]
    nodes: tuple[TraceNode, ...]

    @property
    def gpus(self) -> int:
        return sum(n.gpus for n in self.nodes)


@dataclass(frozen=True)
class PodClass:
    """Pods the LP treats alike. Exact for the trace; a coarsened class (:func:`coarsen`) takes its pods'
    least CPU, memory and share and their largest GPU, so every row stays valid and only loosens."""

    cpu: int
    mem: int
    num: int  # GPUs per pod
    share: int  # milli per GPU (≤ each member's)
    g: int  # GPU milli per pod counted in the objective (≥ each member's)
    spec: tuple[str, ...]  # allowed models (empty: any)

    @property
    def g_low(self) -> int:
        """GPU milli every member uses at least (the rows' coefficient)."""
        return self.num * self.share


@dataclass
class Relaxation:
    """Rows 1-4 of the module docstring for one pod list.

    Columns are the allowed (class, atom) pairs ``cols``; ``rows`` × columns ≤ ``rhs`` are rows 4.
    """

    classes: list[PodClass]
    u: np.ndarray  # pods per class
    atoms: list[Atom]
    cols: list[tuple[int, int]]  # (class, atom)
    rows: np.ndarray  # rows 4: (rows, cols)
    rhs: np.ndarray
    #: exact pod key (:func:`pod_classes`) → index into ``classes``
    members: dict[tuple, int] = field(default_factory=dict)

    @property
    def g(self) -> np.ndarray:
        return np.array([c.g for c in self.classes], dtype=float)

    @property
    def sizes(self) -> list[int]:
        """Distinct share sizes (the pattern rows)."""
        return sorted({c.share for c in self.classes})


def pod_classes(pods: Iterable[TracePod]) -> Counter:
    """GPU pods grouped by (cpu, memory, GPU count, milli per GPU, allowed models); CPU-only pods add nothing."""
    return Counter((p.cpu_milli, p.memory_mib, p.num_gpu, p.gpu_milli, tuple(sorted(set(p.gpu_spec))))
                   for p in pods if p.num_gpu and 0 < p.gpu_milli <= GPU_MILLI)


def _bucket(value: int, factor: float | None) -> int:
    if factor is None or value <= 0:
        return 0
    return int(np.floor(np.log(value) / np.log(factor)))


def coarsen(counter: Counter, n_models: int) -> tuple[list[PodClass], list[int], dict[tuple, int]]:
    """Classes (≤ MAX_CLASSES, ≤ MAX_SIZES share sizes), their pod counts and the exact key → class map.

    Exact when the list is small (the trace is); otherwise, in this order until it fits: models ignored
    when they would split the nodes into more than MAX_ATOMS atoms; shares floored to a 25-milli grid; CPU
    and memory merged in geometric buckets, coarser each step. Merged pods take the least CPU, memory
    and share and the largest GPU of their group: a relaxation of the same problem.
    """
    keys = sorted(counter)
    drop_spec = n_models > MAX_ATOMS
    grid = SHARE_GRID if len({k[3] for k in keys}) > MAX_SIZES else 1
    for factor in (0.0, *BUCKET_FACTORS):
        for no_spec in (drop_spec, True) if factor is None else (drop_spec,):
            groups: dict[tuple, list[tuple]] = {}
            for key in keys:
                cpu, mem, num, milli, spec = key
                cb = cpu if factor == 0.0 else _bucket(cpu, factor)
                mb = mem if factor == 0.0 else _bucket(mem, factor)
                groups.setdefault((cb, mb, num, milli // grid, () if no_spec else spec), []).append(key)
            if len(groups) <= MAX_CLASSES:
                classes, counts, members = [], [], {}
                for gkey, group in sorted(groups.items()):
                    members.update({key: len(classes) for key in group})
                    classes.append(PodClass(min(k[0] for k in group), min(k[1] for k in group), gkey[2],
                                            min(k[3] for k in group), gkey[2] * max(k[3] for k in group), gkey[4]))
                    counts.append(sum(counter[k] for k in group))
                return classes, counts, members
    return [], [], {}


def atoms_by_spec(nodes: tuple[TraceNode, ...], specs: Iterable[tuple[str, ...]]) -> list[Atom]:
    """Nodes grouped by which pod model sets admit them: within an atom every pod sees the same nodes' models."""
    specs = [frozenset(t) for t in set(specs) if t]
    groups: dict[tuple[bool, ...], list[TraceNode]] = {}
    for n in nodes:
        if n.gpus > 0:
            groups.setdefault(tuple(n.model in t for t in specs), []).append(n)
    return [Atom(frozenset(n.model for n in ns), tuple(ns)) for _key, ns in sorted(groups.items())]


def atoms_by_shape(nodes: tuple[TraceNode, ...], specs: Iterable[tuple[str, ...]] = ()) -> list[Atom]:
    """One atom per node shape (model, GPUs, CPU, memory): finer rows 4, a larger LP."""
    groups: dict[tuple, list[TraceNode]] = {}
    for n in nodes:
        if n.gpus > 0:
            groups.setdefault((n.model, n.gpus, n.cpu_milli, n.memory_mib), []).append(n)
    return [Atom(frozenset({key[0]}), tuple(ns)) for key, ns in sorted(groups.items())]


def _quantile_levels(ratios: np.ndarray, weights: np.ndarray) -> list[float]:
    order = np.argsort(ratios)
    cum = np.cumsum(weights[order]) / weights.sum()
    return sorted({float(ratios[order][min(int(np.searchsorted(cum, q)), len(order) - 1)])
                   for q in RATIO_QUANTILES} - {0.0})


def build(nodes: tuple[TraceNode, ...], counter: Counter, atoms=atoms_by_spec) -> Relaxation:
    """The relaxation's data (module docstring) for nodes and a Counter of pod classes (:func:`pod_classes`).

    An empty relaxation (no columns) means the lists are too large to coarsen: the caller keeps the
    trivial bound (demand, capacity).
    """
    classes, counts, members = coarsen(counter, len({n.model for n in nodes if n.gpus > 0}))
    u = np.array(counts, dtype=float)
    groups = atoms(nodes, [c.spec for c in classes]) if classes else []
    node_arrays = []
    for a in groups:
        node_arrays.append(np.array([(n.gpus, n.cpu_milli, n.memory_mib) for n in a.nodes], dtype=float))

    def fits(c: PodClass, ai: int) -> bool:
        arr = node_arrays[ai]
        return (not c.spec or groups[ai].models <= set(c.spec)) and bool(np.any(
            (arr[:, 0] >= c.num) & (arr[:, 1] >= c.cpu) & (arr[:, 2] >= c.mem)))

    cols = [(ci, ai) for ci, c in enumerate(classes) for ai in range(len(groups)) if fits(c, ai)]
    col_class = np.array([c for c, _a in cols], dtype=int)
    col_atom = np.array([a for _c, a in cols], dtype=int)
    g_low = np.array([c.g_low for c in classes], dtype=float)
    gl = g_low[col_class] if cols else np.zeros(0)
    k = np.array([c.num for c in classes], dtype=int)
    rows: list[np.ndarray] = []
    rhs: list[float] = []

    def add(mask: np.ndarray, coef: np.ndarray, bound: float) -> None:
        if mask.any():
            rows.append(np.where(mask, coef, 0.0))
            rhs.append(float(bound))

    for which in (1, 2):  # CPU, then memory (columns of node_arrays)
        need = np.array([c.cpu if which == 1 else c.mem for c in classes], dtype=float)
        levels = _quantile_levels(need / g_low, u) if cols else []
        for ai, arr in enumerate(node_arrays):
            here = col_atom == ai
            gpu, cap = GPU_MILLI * arr[:, 0], arr[:, which]
            add(here, need[col_class], cap.sum())
            for r in levels:
                add(here & (need[col_class] >= r * gl), gl, np.minimum(gpu, cap / r).sum())
    for ai, arr in enumerate(node_arrays):
        here = col_atom == ai
        for num in sorted(set(k.tolist()) - {1}):
            add(here & (k[col_class] >= num), gl, GPU_MILLI * arr[arr[:, 0] >= num, 0].sum())
    mat = np.array(rows) if rows else np.zeros((0, len(cols)))
    return Relaxation(classes, u, groups, cols, mat, np.array(rhs, dtype=float), members)


def knapsack(values: dict[int, float], capacity: int = GPU_MILLI) -> tuple[float, dict[int, int]]:
    """Max Σ values[s]·a_s over integers a ≥ 0 with Σ s·a_s ≤ capacity, and one best a (exact DP)."""
    items = [(s, v) for s, v in values.items() if v > 0 and 0 < s <= capacity]
    if not items:
        return 0.0, {}
    step = int(np.gcd.reduce([s for s, _v in items] + [capacity]))
    cap = capacity // step
    best = [0.0] * (cap + 1)
    pick = [0] * (cap + 1)
    for w in range(1, cap + 1):
        best[w], pick[w] = best[w - 1], 0
        for s, v in items:
            size = s // step
            if size <= w and best[w - size] + v > best[w]:
                best[w], pick[w] = best[w - size] + v, s
    counts: Counter = Counter()
    w = cap
    while w > 0:
        if pick[w]:
            counts[pick[w]] += 1
            w -= pick[w] // step
        else:
            w -= 1
    return best[cap], dict(counts)


def lagrangian_bound(rel: Relaxation, lam: np.ndarray, pi: np.ndarray) -> float:
    """The module docstring's formula for λ ≥ 0 (one per row 4) and π ≥ 0 (atoms × sizes): ≥ the optimum."""
    lam = np.maximum(np.asarray(lam, dtype=float), 0.0)
    pi = np.maximum(np.asarray(pi, dtype=float), 0.0)
    sizes = rel.sizes
    size_index = {s: i for i, s in enumerate(sizes)}
    penalty = lam @ rel.rows if len(rel.rhs) else np.zeros(len(rel.cols))
    profit = np.zeros(len(rel.classes))  # per class: max(0, max over its atoms of the reduced profit)
    for j, (ci, ai) in enumerate(rel.cols):
        c = rel.classes[ci]
        d = c.g - penalty[j] - c.num * pi[ai, size_index[c.share]]
        profit[ci] = max(profit[ci], d)
    total = float(lam @ rel.rhs) + float(rel.u @ profit)
    for ai, a in enumerate(rel.atoms):
        total += a.gpus * knapsack({s: float(pi[ai, i]) for i, s in enumerate(sizes)})[0]
    return total * (1 + ROUND_UP)


class _Tableau:
    """Dense simplex tableau for ``max c·x s.t. A x ≤ b, x ≥ 0`` (b ≥ 0) that accepts new columns.

    Layout: slack columns first, so ``t[:m, :m]`` is the basis inverse and ``t[m, :m]`` the duals; a new
    column a then enters as ``(B⁻¹a, y·a − c)``. Dantzig's rule; b is perturbed by tiny distinct
    amounts against degenerate cycling (harmless: only the duals are used, through the Lagrangian bound).
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
        m = len(b)
        self.m = m
        self.t = np.zeros((m + 1, m + a.shape[1]))
        self.t[:m, :m] = np.eye(m)
        self.t[:m, m:] = a
        self.t[m, m:] = -c
        self.rhs = np.zeros(m + 1)
        self.rhs[:m] = b + 1e-7 * (1.0 + np.arange(m) / max(m, 1))
        self.pivots = 0
        self.basis = list(range(m))  # column basic in each row

    def add_columns(self, a: np.ndarray, c: np.ndarray) -> None:
        m = self.m
        new = np.empty((m + 1, a.shape[1]))
        new[:m] = self.t[:m, :m] @ a
        new[m] = self.t[m, :m] @ a - c
        self.t = np.hstack([self.t, new])

    def solve(self, max_pivots: int = MAX_PIVOTS) -> None:
        t, rhs, m = self.t, self.rhs, self.m
        while self.pivots < max_pivots:
            col = int(np.argmin(t[m]))
            if t[m, col] >= -1e-9:
                return
            column = t[:m, col]
            ok = column > 1e-9
            if not ok.any():
                return  # unbounded cannot happen here (every variable is capped through rows 1 and 2)
            ratios = np.full(m, np.inf)
            ratios[ok] = rhs[:m][ok] / column[ok]
            near = np.flatnonzero(ratios <= ratios.min() * (1 + 1e-12) + 1e-15)
            row = int(near[np.argmax(column[near])])
            pivot_row = t[row] / t[row, col]
            factor = t[:, col].copy()
            factor[row] = 0.0
            rhs_row = rhs[row] / t[row, col]
            t -= np.outer(factor, pivot_row)
            rhs -= factor * rhs_row
            t[row] = pivot_row
            rhs[row] = rhs_row
            self.basis[row] = col
            self.pivots += 1

    @property
    def duals(self) -> np.ndarray:
        return np.maximum(self.t[self.m, :self.m], 0.0)

    def primal(self, n: int) -> np.ndarray:
        """Values of the first ``n`` structural columns at the current basis."""
        x = np.zeros(n)
        for row, col in enumerate(self.basis):
            if self.m <= col < self.m + n:
                x[col - self.m] = self.rhs[row]
        return x


def solve_lp(rel: Relaxation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """λ, π and the LP's primal (pods of each column's class on its atom, ``rel.cols`` order) of the
    pattern LP, by column generation. The primal only guides diagnostics (``bound_gap.py``)."""
    sizes, g = rel.sizes, rel.g
    n_cls, n_cols, n_at, n_sz = len(rel.classes), len(rel.cols), len(rel.atoms), len(sizes)
    n4 = len(rel.rhs)
    size_index = {s: i for i, s in enumerate(sizes)}
    scale4 = np.where(rel.rhs > 0, 1.0 / np.maximum(rel.rhs, 1e-300), 1.0)  # rows 4 scaled to rhs 1
    # Row blocks: classes | rows 4 | shares (atom, size) | atoms. Objective in GPUs (milli / 1000).
    m = n_cls + n4 + n_at * n_sz + n_at
    a = np.zeros((m, n_cols))
    for j, (ci, ai) in enumerate(rel.cols):
        a[ci, j] = 1.0
        a[n_cls + n4 + ai * n_sz + size_index[rel.classes[ci].share], j] = rel.classes[ci].num
    if n4:
        a[n_cls:n_cls + n4] = rel.rows * scale4[:, None]
    b = np.concatenate([rel.u, rel.rhs * scale4, np.zeros(n_at * n_sz),
                        np.array([at.gpus for at in rel.atoms], dtype=float)])
    c = np.array([g[ci] for ci, _ai in rel.cols]) / GPU_MILLI
    tab = _Tableau(a, b, c)

    def pattern_column(ai: int, pattern: dict[int, int]) -> np.ndarray:
        col = np.zeros(m)
        for size, count in pattern.items():
            col[n_cls + n4 + ai * n_sz + size_index[size]] = -count
        col[n_cls + n4 + n_at * n_sz + ai] = 1.0
        return col

    seen: set[tuple] = set()
    start = []
    for ai in range(n_at):
        for size in sizes:
            key = (ai, ((size, GPU_MILLI // size),))
            seen.add(key)
            start.append(pattern_column(ai, {size: GPU_MILLI // size}))
    tab.add_columns(np.array(start).T, np.zeros(len(start)))
    for _round in range(MAX_ROUNDS):
        tab.solve()
        y = tab.duals
        pi = y[n_cls + n4:n_cls + n4 + n_at * n_sz].reshape(n_at, n_sz)
        mu = y[n_cls + n4 + n_at * n_sz:]
        new = []
        for ai in range(n_at):
            value, pattern = knapsack({s: float(pi[ai, i]) for i, s in enumerate(sizes)})
            key = (ai, tuple(sorted(pattern.items())))
            if value > mu[ai] + 1e-9 and key not in seen:
                seen.add(key)
                new.append(pattern_column(ai, pattern))
        if not new or tab.pivots >= MAX_PIVOTS:
            break
        tab.add_columns(np.array(new).T, np.zeros(len(new)))
    y = tab.duals
    lam = y[n_cls:n_cls + n4] * scale4 * GPU_MILLI
    pi = y[n_cls + n4:n_cls + n4 + n_at * n_sz].reshape(n_at, n_sz) * GPU_MILLI
    return lam, pi, np.maximum(tab.primal(n_cols), 0.0)


@lru_cache(maxsize=64)
def _bound_for(nodes: tuple[TraceNode, ...], classes: frozenset) -> float:
    counter = Counter(dict(classes))
    demand = float(sum(n * key[2] * key[3] for key, n in counter.items()))
    capacity = float(GPU_MILLI * sum(n.gpus for n in nodes))
    rel = build(nodes, counter)
    if not rel.classes:  # too large to coarsen into the LP's limits: the trivial bound
        return min(demand, capacity)
    if not rel.cols:  # no pod fits any node
        return 0.0
    lam, pi, _x = solve_lp(rel)
    return min(lagrangian_bound(rel, lam, pi), demand, capacity)


def gpu_upper_bound(nodes: tuple[TraceNode, ...], pods: Iterable[TracePod]) -> float:
    """GPU milli no placement of ``pods`` on ``nodes`` can exceed (see the module docstring); cached per pod list."""
    counter = pod_classes(pods)
    if not counter or not nodes:
        return 0.0
    return _bound_for(tuple(nodes), frozenset(counter.items()))
