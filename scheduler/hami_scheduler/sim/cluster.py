"""The simulated cluster: node ledgers plus an incremental score cache.

Scoring every node for every pod is the paper's method (percentageOfNodesToScore 100). To keep it
fast, scores are cached per pod shape and only the nodes changed since that shape was last scored
are re-scored; identical node states share one memoised score. Memory, which no policy scores,
is applied as a vectorised mask.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ..policies.base import BasePolicy, NodeView, PodShape
from .trace import TraceNode

NEG = -np.inf

#: How equal top scores are split (see :func:`tie_rank`).
TIE_BREAKS = ("node-order", "first", "random")
DEFAULT_TIE_BREAK = "node-order"


def tie_rank(n: int, tie_break: str, rng: random.Random) -> np.ndarray:
    """Rank of every node among equal top scores (lowest rank wins).

    ``node-order`` (default) follows the FGD paper's simulator: before creating the nodes it renames
    each with a ``NNNN-`` prefix drawn from a permutation of its seeded RNG, so the nodes' name order
    is a fresh random order per seed, and equal-best nodes are resolved in that order: the
    kube-scheduler fork it builds against (mental2008/kubernetes v1.20.5-minor) replaces stock
    selectHost's reservoir sampling with "the smallest name among the best scores, for
    reproducibility" (docs/scheduler.md §3). So ties go to the same nodes for the whole run, but to
    other nodes for every seed. It matters most for pods whose score is equal on
    every node (GpuClustering and GpuPacking give CPU-only pods 0 everywhere; FGD gives most of them
    ΔF = 0): they fill one node after another in that order. ``first`` keeps the node list's own
    order (in the openb list that sends CPU-only pods to the P100 nodes listed first: 0.9-1.9 points
    under the published medians on ``cpu200``); ``random`` draws uniformly per pod (kube-scheduler's
    stock selectHost: 3-7 points under, as every tie scatters load).
    """
    if tie_break == "node-order":
        perm = list(range(n))
        rng.shuffle(perm)
        return np.array(perm, dtype=np.int64)
    return np.arange(n, dtype=np.int64)


@dataclass(slots=True)
class _Entry:
    scores: np.ndarray
    choices: list
    seen: int


class SimCluster:
    """Nodes of one simulation run, placed on by one policy."""

    def __init__(
        self, nodes: tuple[TraceNode, ...], policy: BasePolicy, rng: random.Random, tie_break: str = DEFAULT_TIE_BREAK
    ) -> None:
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break: {tie_break!r} is not one of {', '.join(TIE_BREAKS)}")
        self.views = [
            NodeView(n.name, n.model, n.cpu_milli, n.memory_mib, [1000] * n.gpus, cpu_total=n.cpu_milli)
            for n in nodes
        ]
        self.mem_free = np.array([n.memory_mib for n in nodes], dtype=np.int64)
        self.policy = policy
        self.rng = rng
        self.random_ties = tie_break == "random" or policy.random_ties
        self.rank = tie_rank(len(nodes), tie_break, rng)
        self.log: list[int] = []
        self._cache: dict[tuple, _Entry] = {}
        self._memo: dict[tuple, tuple | None] = {}
        #: Called with (node index, pod, devices) after every placement (engine cross-check hook).
        self.on_place = None

    def _eval(self, i: int, pk: tuple, shape: PodShape, entry: _Entry) -> None:
        view = self.views[i]
        mk = (self.policy.node_key(view), pk)
        try:
            res = self._memo[mk]
        except KeyError:
            res = self.policy.score(view, shape)
            self._memo[mk] = res
        if res is None:
            entry.scores[i] = NEG
            entry.choices[i] = None
        else:
            entry.scores[i] = res[0]
            entry.choices[i] = res[1]

    def _entry(self, pod: PodShape) -> _Entry:
        pk = self.policy.pod_key(pod)
        shape = pod if self.policy.memory_aware else PodShape(pod.cpu, 0, pod.num_gpu, pod.milli, pod.types)
        entry = self._cache.get(pk)
        n = len(self.views)
        if entry is None or len(self.log) - entry.seen >= n:
            entry = entry or _Entry(np.full(n, NEG), [None] * n, 0)
            for i in range(n):
                self._eval(i, pk, shape, entry)
            self._cache[pk] = entry
        else:
            for i in set(self.log[entry.seen :]):
                self._eval(i, pk, shape, entry)
        entry.seen = len(self.log)
        return entry

    def choose(self, pod: PodShape) -> tuple[int, tuple[int, ...]] | None:
        """Best node (equal scores split by the run's tie rule) and its devices, or None."""
        entry = self._entry(pod)
        scores = entry.scores
        if pod.mem:
            scores = np.where(self.mem_free >= pod.mem, scores, NEG)
        top = scores.max()
        if top == NEG:
            return None
        ties = np.flatnonzero(scores == top)
        if len(ties) > 1 and self.random_ties:
            i = int(ties[self.rng.randrange(len(ties))])
        else:
            i = int(ties[np.argmin(self.rank[ties])])
        view = self.views[i]
        return i, self.policy.devices(view, pod, entry.choices[i], self.rng)

    def place(self, i: int, pod: PodShape, gpus: tuple[int, ...]) -> None:
        view = self.views[i]
        if self.on_place is not None:
            self.on_place(i, pod, gpus)
        view.cpu_free -= pod.cpu
        view.mem_free -= pod.mem
        for g in gpus:
            view.gpu_free[g] -= pod.milli
            if view.gpu_free[g] < 0:
                raise AssertionError(f"{view.name} GPU {g} over-committed")
        if pod.num_gpu:
            view.classes[pod.cls] = view.classes.get(pod.cls, 0) + 1
        self.mem_free[i] -= pod.mem
        self.log.append(i)

    def schedule(self, pod: PodShape) -> int | None:
        pick = self.choose(pod)
        if pick is None:
            return None
        self.place(pick[0], pod, pick[1])
        return pick[0]
