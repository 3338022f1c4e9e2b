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


@dataclass(slots=True)
class _Entry:
    scores: np.ndarray
    choices: list
    seen: int


class SimCluster:
    """Nodes of one simulation run, placed on by one policy."""

    def __init__(
        self, nodes: tuple[TraceNode, ...], policy: BasePolicy, rng: random.Random, tie_break: str = "first"
    ) -> None:
        self.views = [
            NodeView(n.name, n.model, n.cpu_milli, n.memory_mib, [1000] * n.gpus, cpu_total=n.cpu_milli)
            for n in nodes
        ]
        self.mem_free = np.array([n.memory_mib for n in nodes], dtype=np.int64)
        self.policy = policy
        self.rng = rng
        #: "first": equal scores go to the first node in list order (reproduces the published
        #: curves); "random": uniform among equal scores (kube-scheduler's selectHost).
        self.random_ties = tie_break == "random" or policy.random_ties
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
        """Best node (uniform random among equal scores) and its devices, or None."""
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
            i = int(ties[0])
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
