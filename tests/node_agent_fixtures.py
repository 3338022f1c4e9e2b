"""Helpers of the node agent tests (tests/node): a fake API server with pod events and injectable
500 answers, and an agent over the NVIDIA plugin's simulated node. Imported by tests/node/conftest.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import sched_fakeapi as fakeapi

from hami_hal.manager import Hal
from hami_hal.node.agent import AgentConfig, NodeAgent
from hami_hal.node.kubeapi import KubeNodeApi

NODE = "node1"


class EventfulApi(fakeapi.FakeApiServer):
    """The scheduler's fake API server plus pod events (POST) and injectable 500 answers."""

    def __init__(self) -> None:
        self.k8s_events: list[dict] = []
        #: (method, path regex) -> remaining count of 500 answers
        self.fail: dict[tuple[str, str], int] = {}
        super().__init__()

    def _handler(self):
        base = super()._handler()
        server = self

        def failing(method: str, path: str) -> bool:
            for (m, rx), n in list(server.fail.items()):
                if m == method and n > 0 and re.search(rx, path):
                    server.fail[(m, rx)] = n - 1
                    return True
            return False

        class Handler(base):
            def do_GET(self):  # noqa: N802
                if failing("GET", self.path):
                    return self._status(500, "InternalError", "injected failure")
                return super().do_GET()

            def do_PATCH(self):  # noqa: N802
                if failing("PATCH", self.path):
                    self._body()
                    return self._status(500, "InternalError", "injected failure")
                return super().do_PATCH()

            def do_POST(self):  # noqa: N802
                if re.fullmatch(r"/api/v1/namespaces/[^/]+/events", self.path.split("?")[0]):
                    body = self._body()
                    server.k8s_events.append(body)
                    return self._send(201, body)
                return super().do_POST()

        return Handler


def make_agent(hal: Hal, api, short_tmp: Path, vendor_configs: dict[str, dict] | None = None, **cfg) -> NodeAgent:
    """An agent over a simulated node; ``vendor_configs`` as ``hami node`` hands each plugin its settings."""
    inv = hal.discover("sim", node_name=NODE, sim_node=cfg.pop("sim_node", None), vendor_configs=vendor_configs)
    conf = AgentConfig(node_name=NODE, plugin_dir=short_tmp / "dp", state_root=short_tmp / "state",
                       kubelet_poll=0.05, health_interval=3600, register_interval=3600, cleanup_interval=3600, **cfg)
    return NodeAgent(hal, KubeNodeApi(host=api.url), conf, inv)


def node_annotations(api) -> dict:
    return json.loads(json.dumps(api.nodes[NODE]["metadata"]["annotations"]))


def write_region(path: Path, used: list[int], limits_mib: list[int], sm: int, busy_s: float = 0.0,
                 last_launch_ns: int = 0, pid: int | None = None) -> Path:
    """A region file as the CUDA interposer writes it (layout from csrc/hami_region.h via cffi)."""
    import os

    from hami_plugins_nvidia.interposer import region as rg

    r = rg.ffi.new("struct hami_region *")
    r.magic, r.version, r.size, r.container_id = rg.CONST["HAMI_REGION_MAGIC"], rg.CONST["HAMI_REGION_VERSION"], \
        rg.REGION_SIZE, 1234
    r.header_sum = rg.header_sum(r.magic, r.version, r.size, r.container_id)
    r.device_count, r.proc_hwm = len(used), 1
    for i, lim in enumerate(limits_mib):
        r.dev[i].limit_bytes = lim << 20
        r.dev[i].sm_limit = sm
        r.dev[i].busy_ns = int(busy_s * 1e9)
        r.dev[i].last_launch_ns = last_launch_ns
    r.procs[0].pid, r.procs[0].state = pid or os.getpid(), 1
    for i, u in enumerate(used):
        r.procs[0].used[i] = u
    path.write_bytes(bytes(rg.ffi.buffer(r)))
    return path


def bound_pod(api, name: str, to_allocate: str, bind_time: int = 1_787_306_400, gpus: int = 1) -> dict:
    """A pod the extender has bound to NODE (bind-phase allocating), written straight into the fake API."""
    limits = {"nvidia.com/gpu": gpus, "nvidia.com/gpumem": 1024, "nvidia.com/gpucores": 10}
    pod = {"metadata": {"name": name, "namespace": "default", "uid": f"0000-{name}",
                        "annotations": {"hami.io/vgpu-node": NODE, "hami.io/bind-phase": "allocating",
                                        "hami.io/bind-time": str(bind_time),
                                        "hami.io/vgpu-devices-to-allocate": to_allocate,
                                        "hami.io/vgpu-devices-allocated": to_allocate}},
           "spec": {"nodeName": NODE, "containers": [{"name": "main", "resources": {"limits": limits}}]},
           "status": {"phase": "Pending"}}
    return api.add_pod(pod)


def pod_annotations(api, name: str) -> dict:
    return dict(api.pods[("default", name)]["metadata"]["annotations"])
