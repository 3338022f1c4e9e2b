"""Mirror a simulation into the hami-hal allocation engine, placement by placement.

Each openb node becomes an engine ``NodeState`` whose GPUs are ``shares`` devices (compute 100 %,
memory = the model's MiB); each placement is committed through ``NodeState.allocate`` pinned to the
devices the policy chose. If the engine refuses what the simulator's ledger accepted, the run stops:
the fast ledger is only a cache of the engine's decision, never a second rule set.
"""

from __future__ import annotations

from hami_hal.engine import NodeState
from hami_hal.models import (
    ContainerRequest,
    Device,
    PartitionKind,
    PartitionModel,
    PodRequest,
    Provenance,
    ResourceRequest,
)

from ..policies.base import FULL, PodShape
from .trace import GPU_MEMORY_MIB, TraceNode

VENDOR = "openb"
PROVENANCE = Provenance(source="simulated", profile="openb-gpu-v2023")


def trace_devices(node: TraceNode) -> list[Device]:
    mem = GPU_MEMORY_MIB.get(node.model, 16384)
    part = PartitionModel(kind=PartitionKind.SHARES, memory_mib=mem, compute_percent=100, max_slots=100)
    return [
        Device(vendor=VENDOR, index=i, uuid=f"{node.name}-gpu{i}", model=node.model, hami_type=node.model,
               memory_mib=mem, partition=part, provenance=PROVENANCE)
        for i in range(node.gpus)
    ]


def trace_request(name: str, pod: PodShape, uuids: list[str]) -> PodRequest:
    pct = pod.milli // 10
    req = ResourceRequest(vendor=VENDOR, common_word="OPENB", count=pod.num_gpu, compute_percent=min(pct, 100),
                          memory_percent=min(pct, 100), whole_device=pod.milli >= FULL,
                          type_include=list(pod.types), uuid_include=uuids)
    return PodRequest(name=name, containers=[ContainerRequest(name="main", index=0, requests=[req])])


class EngineMirror:
    def __init__(self, nodes: tuple[TraceNode, ...]) -> None:
        self.nodes = nodes
        self.states = [NodeState(n.name, trace_devices(n)) for n in nodes]
        self.count = 0

    def attach(self, cluster) -> None:
        cluster.on_place = self.place

    def place(self, i: int, pod: PodShape, gpus: tuple[int, ...]) -> None:
        if not pod.num_gpu:
            return
        node = self.nodes[i]
        self.count += 1
        uuids = [f"{node.name}-gpu{g}" for g in gpus]
        self.states[i].allocate(trace_request(f"p{self.count}", pod, uuids))
