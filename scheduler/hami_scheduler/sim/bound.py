"""An offline upper bound on the GPU any placement of the same pods could allocate.

Not a heuristic: every number returned is proven to be at least the optimum of the offline problem
"choose which of the arrived pods to place, and where, to maximise the GPU milli allocated", where a
placement respects each node's CPU, memory, GPU count, per-GPU milli and model (``gpu_spec``).

**The relaxation.** Let x_i ∈ {0, 1} say pod i is placed, g_i = num_gpu·gpu_milli its GPU demand,
c_i its CPU, m_i its memory. Every feasible placement satisfies these linear inequalities (proofs
inline), so the LP ``max Σ g_i x_i s.t. A x ≤ b, 0 ≤ x ≤ 1`` has an optimum ≥ the true optimum:

1. GPU: Σ g_i x_i ≤ Σ_n 1000·G_n (each GPU holds at most 1000 milli).
2. Models: for each allowed-model set T of some pod, Σ_{i: spec_i ⊆ T} g_i x_i ≤ Σ_{n: model_n ∈ T} 1000·G_n
   (those pods can only sit on GPUs of a model in T).
3. GPU count: for each k, Σ_{i: num_gpu_i ≥ k} g_i x_i ≤ Σ_{n: G_n ≥ k} 1000·G_n (a pod asking k GPUs
   needs a node with at least k).
4. CPU stranding: for a ratio r > 0, let H_r = {i : c_i ≥ r·g_i}. On one node n, the pods of H_r
   placed there use GPU ≤ 1000·G_n and CPU ≥ r·(their GPU), and CPU ≤ C_n, so their GPU is at most
   min(1000·G_n, C_n / r). Summing over nodes: Σ_{i ∈ H_r} g_i x_i ≤ Σ_n min(1000·G_n, C_n / r).
5. Memory stranding: the same with m_i and M_n.

**Solving it.** Every row's coefficient for pod i is either g_i or 0, so column i is g_i·s_i with a
0/1 signature s_i. Pods with one signature merge into one variable y_s ∈ [0, W_s] (their GPU milli, W_s
the total): ``max Σ y_s s.t. Σ_s y_s·s_s ≤ b, 0 ≤ y ≤ W``, a few hundred variables at most, solved by a
dense simplex (:func:`_simplex`, Bland's rule). The number reported is not the simplex's primal value
but the dual bound it certifies: for any λ ≥ 0, ``λ·b + Σ_s W_s·max(0, 1 − λ·s_s)`` is ≥ the LP optimum
(weak duality: for feasible y, Σ y_s = Σ y_s (1 − λ·s_s) + λ·Σ y_s s_s ≤ Σ W_s max(0, 1 − λ·s_s) + λ·b).
So floating-point error in the simplex can only loosen the bound, never make it wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from .trace import TraceNode, TracePod

#: CPU (and memory) per GPU-milli ratios the stranding rows use: quantiles of the pods' own ratios.
RATIO_QUANTILES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def _rows(nodes: tuple[TraceNode, ...], classes: list[tuple], counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Constraint matrix A (rows × classes) and right-hand sides b, as in the module docstring."""
    g = np.array([num * milli for (_c, _m, num, milli, _t) in classes], dtype=float)
    cpu = np.array([c for (c, _m, _n, _g, _t) in classes], dtype=float)
    mem = np.array([m for (_c, m, _n, _g, _t) in classes], dtype=float)
    gpus = np.array([n.gpus for n in nodes], dtype=float) * 1000
    ncpu = np.array([n.cpu_milli for n in nodes], dtype=float)
    nmem = np.array([n.memory_mib for n in nodes], dtype=float)
    rows: list[np.ndarray] = [g.copy()]
    rhs: list[float] = [gpus.sum()]
    for spec in sorted({t for (*_x, t) in classes if t}):
        allowed = set(spec)
        rows.append(np.where([bool(t) and set(t) <= allowed for (*_x, t) in classes], g, 0.0))
        rhs.append(sum(1000 * n.gpus for n in nodes if n.model in allowed))
    for k in sorted({num for (_c, _m, num, _g, _t) in classes if num > 1}):
        rows.append(np.where([num >= k for (_c, _m, num, _g, _t) in classes], g, 0.0))
        rhs.append(sum(1000 * n.gpus for n in nodes if n.gpus >= k))
    gpu_pod = g > 0
    for need, cap in ((cpu, ncpu), (mem, nmem)):
        if not gpu_pod.any():
            break
        ratios = need[gpu_pod] / g[gpu_pod]
        weights = counts[gpu_pod]
        order = np.argsort(ratios)
        cum = np.cumsum(weights[order]) / weights.sum()
        for q in RATIO_QUANTILES:
            r = float(ratios[order][min(np.searchsorted(cum, q), len(order) - 1)])
            if r <= 0:
                continue
            rows.append(np.where(gpu_pod & (need >= r * g), g, 0.0))
            rhs.append(float(np.minimum(gpus, cap / r).sum()))
    return np.array(rows), np.array(rhs, dtype=float)


def dual_value(lam: np.ndarray, sig: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    """λ·b + Σ_s W_s·max(0, 1 − λ·s_s): an upper bound on the LP for every λ ≥ 0 (weak duality)."""
    lam = np.maximum(lam, 0.0)
    return float(lam @ b + (w * np.maximum(0.0, 1.0 - lam @ sig)).sum())


def _simplex(m: np.ndarray, b: np.ndarray, w: np.ndarray, max_pivots: int = 20_000) -> np.ndarray:
    """Duals λ of ``max Σ y s.t. m·y ≤ b, 0 ≤ y ≤ w`` (b, w ≥ 0), by a tableau simplex with Bland's rule."""
    rows, cols = m.shape
    full = np.vstack([m, np.eye(cols)])  # the upper bounds y ≤ w as rows
    rhs = np.concatenate([b, w])
    n_rows = rows + cols
    tab = np.zeros((n_rows + 1, cols + n_rows + 1))
    tab[:n_rows, :cols] = full
    tab[:n_rows, cols:cols + n_rows] = np.eye(n_rows)
    tab[:n_rows, -1] = rhs
    tab[-1, :cols] = -1.0
    eps = 1e-9
    for _ in range(max_pivots):
        neg = np.flatnonzero(tab[-1, :-1] < -eps)
        if not len(neg):
            break
        col = int(neg[0])
        column = tab[:n_rows, col]
        ok = column > eps
        if not ok.any():  # unbounded cannot happen (y ≤ w); stop with what we have
            break
        ratios = np.full(n_rows, np.inf)
        ratios[ok] = tab[:n_rows, -1][ok] / column[ok]
        row = int(np.flatnonzero(ratios <= ratios.min() + eps)[0])
        tab[row] /= tab[row, col]
        for r in range(n_rows + 1):
            if r != row and tab[r, col] != 0.0:
                tab[r] -= tab[r, col] * tab[row]
    return np.maximum(tab[-1, cols:cols + rows], 0.0)


def gpu_upper_bound(nodes: tuple[TraceNode, ...], pods: Iterable[TracePod]) -> float:
    """GPU milli no placement of ``pods`` on ``nodes`` can exceed (see the module docstring)."""
    counter = Counter((p.cpu_milli, p.memory_mib, p.num_gpu, p.gpu_milli, tuple(sorted(set(p.gpu_spec))))
                      for p in pods if p.num_gpu)
    if not counter or not nodes:
        return 0.0
    classes = list(counter)
    u = np.array([counter[c] for c in classes], dtype=float)
    g = np.array([num * milli for (_c, _m, num, milli, _t) in classes], dtype=float)
    a, b = _rows(nodes, classes, u)
    signatures: dict[tuple, float] = {}
    for k in range(len(classes)):
        key = tuple(a[:, k] > 0)
        signatures[key] = signatures.get(key, 0.0) + u[k] * g[k]
    sig = np.array(list(signatures), dtype=float).T  # rows × signatures
    w = np.array(list(signatures.values()))
    lam = _simplex(sig, b, w)
    return min(dual_value(lam, sig, b, w), float(w.sum()))
