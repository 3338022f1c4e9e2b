"""Test and benchmark helpers: an NVIDIA-shaped VendorInfo as data, node/pod builders, a wired stack.

The scheduler never imports a vendor plugin; tests describe the vendor the way the cluster does
(resource names and annotation keys, hami-compat.md §2-§5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hami_hal.models import AnnotationKeys, ResourceFamily, SelectorAnnotations, VendorInfo

from .capability import CapabilityGate
from .extender import Extender
from .fakeapi import FakeApiServer
from .kube import Kube, Watcher, api_client
from .server import ExtenderServer
from .state import ClusterState

NVIDIA = VendorInfo(
    name="nvidia",
    display_name="NVIDIA",
    resources=[ResourceFamily(common_word="NVIDIA", count="nvidia.com/gpu", memory="nvidia.com/gpumem",
                              memory_percent="nvidia.com/gpumem-percentage", cores="nvidia.com/gpucores",
                              priority="nvidia.com/priority")],
    selectors=SelectorAnnotations(use_type="nvidia.com/use-gputype", nouse_type="nvidia.com/nouse-gputype",
                                  use_uuid="nvidia.com/use-gpuuuid", nouse_uuid="nvidia.com/nouse-gpuuuid",
                                  mode="nvidia.com/vgpu-mode", numa_bind="nvidia.com/numa-bind"),
    annotations=AnnotationKeys(node_register="hami.io/node-nvidia-register", node_handshake="hami.io/node-handshake",
                               to_allocate="hami.io/vgpu-devices-to-allocate",
                               allocated="hami.io/vgpu-devices-allocated"),
    domains=["nvidia.com/"],
)

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
    watcher = Watcher(kube, cluster)
    if watch:
        watcher.start()
    else:
        from .kube import sync

        sync(kube, cluster)
        watcher.synced.set()
    ext = Extender(cluster, kube, CapabilityGate(matrix), policy=policy)
    server = ExtenderServer(ext, ready=watcher.synced.is_set).start()
    return Stack(api, kube, cluster, watcher, ext, server)
