"""What a node policy sees and returns.

A policy reads a :class:`NodeView` (free CPU/memory plus the free share of every device, in milli
of one device) and a :class:`PodShape`, and returns a score plus the device indexes it would use,
or ``None`` when the node cannot hold the pod. The simulator builds views from its ledger; the
extender builds them from the engine's ``NodeState`` usages. The engine stays the authority on fit:
the chosen indexes are committed through it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

#: Normalisation of the baselines (simulator "max spec"): 128 cores, 8 GPUs.
MAX_CPU_MILLI = 128_000
MAX_GPU_MILLI = 8_000
FULL = 1000


@dataclass(slots=True)
class NodeView:
    """Free resources of one node, the only input a policy scores on."""

    name: str
    model: str
    cpu_free: int
    mem_free: int
    #: Free milli per device, by device index (1000 = idle device).
    gpu_free: list[int]
    cpu_total: int = 0
    #: GPU request shapes already placed here (GpuClustering's "affinity").
    classes: dict[tuple, int] = field(default_factory=dict)

    @property
    def gpu_free_total(self) -> int:
        return sum(self.gpu_free)

    def key(self) -> tuple:
        """Everything a cacheable score depends on (memory is filtered separately)."""
        return (self.model, self.cpu_free, tuple(self.gpu_free))


@dataclass(frozen=True, slots=True)
class PodShape:
    """A pod as policies see it: CPU, memory, GPU count and per-GPU milli, allowed models."""

    cpu: int
    mem: int
    num_gpu: int
    milli: int
    types: tuple[str, ...] = ()

    @property
    def gpu_total(self) -> int:
        return self.num_gpu * self.milli

    @property
    def cls(self) -> tuple:
        """GpuClustering's class: sharing pods form one class, whole-GPU pods one per GPU count."""
        return ("share",) if self.milli < FULL else ("whole", self.num_gpu)

    def key(self) -> tuple:
        """Score-cache key: every field a score reads except memory (a mask in the simulator)."""
        return (self.cpu, self.num_gpu, self.milli, self.types)


def type_ok(node: NodeView, pod: PodShape) -> bool:
    return not pod.types or node.model in pod.types


def fits(node: NodeView, pod: PodShape) -> bool:
    """Necessary and sufficient node-level fit for trace-shaped pods (the common fit rules)."""
    if pod.cpu > node.cpu_free or pod.mem > node.mem_free:
        return False
    if pod.num_gpu == 0:
        return True
    if not type_ok(node, pod):
        return False
    need = pod.milli
    return sum(1 for f in node.gpu_free if f >= need) >= pod.num_gpu


def whole_gpus(node: NodeView, pod: PodShape) -> tuple[int, ...]:
    """Lowest-indexed fully free devices (the common rule for whole-device pods)."""
    idx = [i for i, f in enumerate(node.gpu_free) if f >= FULL][: pod.num_gpu]
    return tuple(idx)


def best_fit_gpu(node: NodeView, pod: PodShape) -> tuple[int, ...]:
    """The fitting device with the least free share, lowest index on ties."""
    if pod.num_gpu == 0:
        return ()
    if pod.milli >= FULL or pod.num_gpu > 1:
        return whole_gpus(node, pod)
    best = min(
        (i for i, f in enumerate(node.gpu_free) if f >= pod.milli),
        key=lambda i: (node.gpu_free[i], i),
    )
    return (best,)


class Policy(Protocol):
    """A node policy. Higher score wins; ties are broken uniformly at random by the caller."""

    name: str
    #: Whether ``score`` depends only on ``node.key()`` and ``pod.key()`` (so it can be memoised).
    cacheable: bool

    def score(self, node: NodeView, pod: PodShape) -> tuple[float, tuple[int, ...]] | None: ...

    def devices(
        self, node: NodeView, pod: PodShape, chosen: tuple[int, ...], rng: random.Random
    ) -> tuple[int, ...]:
        """Final device choice on the winning node (a random policy re-draws here)."""
        ...


class BasePolicy:
    """Shared defaults: cacheable, best-fit devices."""

    name = "base"
    cacheable = True
    #: The score reads the pod's memory (otherwise memory is only a filter).
    memory_aware = False
    #: Ties are always broken at random (the Random baseline), whatever the run's tie-break rule.
    random_ties = False

    def prepare(
        self,
        workload: list[tuple[tuple, float]],
        memory: dict[tuple, float] | None = None,
        capacity: dict[str, int] | None = None,
        cpu_capacity: int | None = None,
    ) -> None:
        """Receive the target workload (FGD's M), mean memory per class, GPUs per model and the
        cluster's CPU (milli, summed over nodes; None when unknown)."""

    def node_key(self, node: NodeView) -> tuple:
        return node.key()

    def pod_key(self, pod: PodShape) -> tuple:
        return (*pod.key(), pod.mem) if self.memory_aware else pod.key()

    def devices(
        self, node: NodeView, pod: PodShape, chosen: tuple[int, ...], rng: random.Random
    ) -> tuple[int, ...]:
        return chosen
