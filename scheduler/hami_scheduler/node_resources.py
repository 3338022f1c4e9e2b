"""Node CPU and memory as the policies need them: allocatable minus the requests of the pods on it.

The simulator's policies score free CPU and memory next to free GPU (FGD's CPU-only classes, the
CPU-stranding term, memory-aware packing). The extender's device views carry neither, so this ledger
adds them from the API: ``status.allocatable`` of each Node, and the effective requests of every
pod placed on it (``spec.nodeName``) or reserved for it by this scheduler's filter. A pod's effective
request follows kube-scheduler: ``max(Σ app containers, max init container) + overhead``, where a
container's request defaults to its limit.

Quantities are bounded (at most 64 characters, a value within 2^62) before any arithmetic. A node
without a readable allocatable has no entry: its views stay unbounded, as before this ledger.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from hami_hal.errors import InputError

MAX_TEXT = 64
MAX_VALUE = Decimal(2**62)
MIB = Decimal(2**20)


def quantity(value: object, field: str) -> Decimal:
    """A Kubernetes quantity (``500m``, ``2``, ``1Gi``, ``5e3``) as a bounded, non-negative Decimal."""
    from kubernetes.utils import parse_quantity

    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(field, value, "is not a Kubernetes quantity")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise InputError(field, text[:MAX_TEXT] + "...", f"is longer than {MAX_TEXT} characters")
    try:
        amount = Decimal(parse_quantity(text))
    except (ValueError, TypeError, InvalidOperation, ArithmeticError):
        raise InputError(field, text, "is not a Kubernetes quantity") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_VALUE:
        raise InputError(field, text, "is outside 0..2^62")
    return amount


def cpu_milli(value: object, field: str) -> int:
    """CPU in milli-cores, rounded up as the API server does."""
    return math.ceil(quantity(value, field) * 1000)


def memory_mib(value: object, field: str) -> int:
    """Memory in MiB, rounded up."""
    return math.ceil(quantity(value, field) / MIB)


def _container(c: object, where: str) -> tuple[int, int]:
    res = c.get("resources") if isinstance(c, dict) else None
    if not isinstance(res, dict):
        return 0, 0
    req = res.get("requests") if isinstance(res.get("requests"), dict) else {}
    lim = res.get("limits") if isinstance(res.get("limits"), dict) else {}
    cpu = req.get("cpu", lim.get("cpu"))
    mem = req.get("memory", lim.get("memory"))
    return (cpu_milli(cpu, f"{where}.cpu") if cpu is not None else 0,
            memory_mib(mem, f"{where}.memory") if mem is not None else 0)


def pod_requests(pod: dict) -> tuple[int, int]:
    """(CPU milli, memory MiB) the scheduler reserves for ``pod`` (kube-scheduler's effective request)."""
    spec = pod.get("spec") if isinstance(pod, dict) else None
    if not isinstance(spec, dict):
        return 0, 0
    cpu = mem = 0
    for i, c in enumerate(spec.get("containers") or []):
        a, b = _container(c, f"spec.containers[{i}].resources")
        cpu, mem = cpu + a, mem + b
    for i, c in enumerate(spec.get("initContainers") or []):
        a, b = _container(c, f"spec.initContainers[{i}].resources")
        cpu, mem = max(cpu, a), max(mem, b)
    over = spec.get("overhead")
    if isinstance(over, dict):
        if over.get("cpu") is not None:
            cpu += cpu_milli(over["cpu"], "spec.overhead.cpu")
        if over.get("memory") is not None:
            mem += memory_mib(over["memory"], "spec.overhead.memory")
    return cpu, mem


def node_allocatable(node: dict) -> tuple[int, int] | None:
    """(CPU milli, memory MiB) of ``status.allocatable``; None when the node reports none."""
    alloc = (node.get("status") or {}).get("allocatable") if isinstance(node, dict) else None
    if not isinstance(alloc, dict) or alloc.get("cpu") is None or alloc.get("memory") is None:
        return None
    return (cpu_milli(alloc["cpu"], "status.allocatable.cpu"),
            memory_mib(alloc["memory"], "status.allocatable.memory"))


class NodeResources:
    """Allocatable and requested CPU/memory per node; the caller holds the cluster lock."""

    def __init__(self) -> None:
        self.allocatable: dict[str, tuple[int, int]] = {}
        #: pod key -> (node, cpu milli, memory MiB)
        self.pods: dict[str, tuple[str, int, int]] = {}
        self.used: dict[str, list[int]] = {}

    def set_node(self, name: str, node: dict) -> None:
        """Record a node's allocatable (raises InputError naming the field; the entry is then dropped)."""
        self.allocatable.pop(name, None)
        alloc = node_allocatable(node)
        if alloc is not None:
            self.allocatable[name] = alloc

    def drop_node(self, name: str) -> None:
        self.allocatable.pop(name, None)

    def set_pod(self, key: str, pod: dict, node: str | None) -> None:
        """Count ``pod`` on ``node`` (None, or a finished pod: not counted anywhere)."""
        self.drop_pod(key)
        if node:
            cpu, mem = pod_requests(pod)
            self.add(key, node, cpu, mem)

    def add(self, key: str, node: str, cpu: int, mem: int) -> None:
        self.drop_pod(key)
        self.pods[key] = (node, cpu, mem)
        used = self.used.setdefault(node, [0, 0])
        used[0] += cpu
        used[1] += mem

    def drop_pod(self, key: str) -> None:
        old = self.pods.pop(key, None)
        if old is not None:
            used = self.used[old[0]]
            used[0] -= old[1]
            used[1] -= old[2]

    def free(self, name: str) -> tuple[int, int, int] | None:
        """(free CPU milli, allocatable CPU milli, free memory MiB), or None when unknown."""
        alloc = self.allocatable.get(name)
        if alloc is None:
            return None
        used = self.used.get(name, (0, 0))
        return alloc[0] - used[0], alloc[0], alloc[1] - used[1]

    def short_of(self, name: str, cpu: int, mem: int) -> str:
        """``Insufficient cpu``/``Insufficient memory`` (kube-scheduler's words) or '' when it fits or is unknown."""
        free = self.free(name)
        if free is None:
            return ""
        if cpu > free[0]:
            return "Insufficient cpu"
        if mem > free[2]:
            return "Insufficient memory"
        return ""

    def cpu_of(self, key: str) -> int:
        entry = self.pods.get(key)
        return entry[1] if entry else 0
