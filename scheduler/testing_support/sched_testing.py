"""Test and benchmark helpers (not shipped): node/pod builders and a wired stack over the fake API server.

The scheduler package never imports a vendor plugin; its tests take the vendor's identity from the one
place it is defined, the NVIDIA plugin's ``vendor_info()``, instead of keeping a copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hami_plugins_nvidia.vendor import vendor_info
from hami_scheduler.capability import CapabilityGate
from hami_scheduler.extender import Extender
from hami_scheduler.kube import Kube, Watcher, api_client
from hami_scheduler.server import ExtenderServer
from hami_scheduler.state import ClusterState
from sched_fakeapi import FakeApiServer

#: The vendor as the cluster knows it: resource names and annotation keys (hami-compat.md §2-§5).
NVIDIA = vendor_info()

#: The project brief's reference pod (hami-compat.md §1).
SEED_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "gpu-pod", "namespace": "default"},
    "spec": {"containers": [{"name": "main", "image": "cuda",
                             "resources": {"limits": {"nvidia.com/gpu": 2, "nvidia.com/gpumem": 10240,
                                                      "nvidia.com/gpucores": 30}}}]},
}


def gpu_node(name: str, gpus: int = 4, mem: int = 40960, count: int = 10, model: str = "NVIDIA-A100-PCIE-40GB",
             extra: dict | None = None) -> dict:
    devs = [{"id": f"GPU-{name}-{i}", "index": i, "count": count, "devmem": mem, "devcore": 100, "type": model,
             "numa": i * 2 // max(gpus, 1), "mode": "hami-core", "health": True} for i in range(gpus)]
    anns = {"hami.io/node-nvidia-register": json.dumps(devs), **(extra or {})}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "annotations": anns}}


def gpu_pod(name: str, gpus: int = 1, mem: int | None = 4096, cores: int | None = 25, ns: str = "default",
            annotations: dict | None = None) -> dict:
    limits: dict = {"nvidia.com/gpu": gpus}
    if mem is not None:
        limits["nvidia.com/gpumem"] = mem
    if cores is not None:
        limits["nvidia.com/gpucores"] = cores
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "annotations": dict(annotations or {})},
            "spec": {"containers": [{"name": "main", "image": "cuda", "resources": {"limits": limits}}]}}


@dataclass
class Stack:
    api: FakeApiServer
    kube: Kube
    cluster: ClusterState
    watcher: Watcher
    extender: Extender
    server: ExtenderServer

    def stop(self) -> None:
        self.watcher.stop.set()
        self.server.stop()
        self.api.stop()


def start_stack(api: FakeApiServer | None = None, policy: str = "binpack", matrix=None, watch: bool = True) -> Stack:
    """Fake API server + real ``kubernetes`` client + ClusterState + extender HTTP server."""
    api = api or FakeApiServer().start()
    kube = Kube(api_client(api.url))
    cluster = ClusterState([NVIDIA])
    ext = Extender(cluster, kube, CapabilityGate(matrix), policy=policy)  # before the sync, as server.py
    watcher = Watcher(kube, cluster)
    if watch:
        watcher.start()
    else:
        from hami_scheduler.kube import sync

        sync(kube, cluster)
        watcher.synced.set()
    server = ExtenderServer(ext, ready=watcher.synced.is_set).start()
    return Stack(api, kube, cluster, watcher, ext, server)


@contextmanager
def synced_stack(*nodes: dict, **kwargs) -> Iterator[Stack]:
    """A stack over a fresh fake API server holding ``nodes``, synced once with no watcher thread (the scheduler
    tests' usual fixture), stopped on the way out."""
    api = FakeApiServer().start()
    for node in nodes:
        api.add_node(node)
    stack = start_stack(api, watch=False, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()
