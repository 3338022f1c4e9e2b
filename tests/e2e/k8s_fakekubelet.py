"""The kubelet's part for nodes with no machine behind them (what kwok does, for our test nodes only).

It registers nodes (Ready condition, capacity as HAMi's mock device plugin publishes it: pods, cpu,
memory and ``<count resource>`` = split count × devices), marks pods bound to those nodes Running, and
finishes a deletion (a real kubelet confirms it with a grace-0 delete once the containers stopped).
Only nodes carrying ``LABEL`` are served, so it never acts on anything else.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

LABEL = "hami-hal.io/fake-kubelet"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_status(capacity: dict[str, str]) -> dict:
    ts = now()
    return {"status": {
        "capacity": capacity, "allocatable": capacity,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "fake kubelet",
                        "lastHeartbeatTime": ts, "lastTransitionTime": ts}],
        "nodeInfo": {"kubeletVersion": "v0.0.0-fake", "architecture": "amd64", "operatingSystem": "linux",
                     "containerRuntimeVersion": "fake://0", "kernelVersion": "", "osImage": "", "kubeProxyVersion": "",
                     "machineID": "", "systemUUID": "", "bootID": ""},
    }}


class FakeKubelet:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.stop_event = threading.Event()
        self.nodes: set[str] = set()
        self.thread = threading.Thread(target=self._run, daemon=True, name="fake-kubelet")
        self.errors: list[str] = []

    def register(self, node: dict, capacity: dict[str, str]) -> None:
        """Create the Node (with the caller's annotations) and publish its status like a kubelet."""
        node = {**node, "metadata": {**node["metadata"],
                                     "labels": {**(node["metadata"].get("labels") or {}), LABEL: "true"}}}
        name = node["metadata"]["name"]
        self.core.create_node(node)
        base = {"pods": "110", "cpu": "64", "memory": "256Gi"}
        self.core.patch_node_status(name, node_status({**base, **capacity}))
        self.nodes.add(name)

    def start(self) -> FakeKubelet:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        rv = ""
        while not self.stop_event.is_set():
            try:
                if not rv:
                    for p in self.core.list_pod_for_all_namespaces().items:
                        self._handle(p)
                    rv = self.core.list_pod_for_all_namespaces(limit=1).metadata.resource_version
                w = watch.Watch()
                for ev in w.stream(self.core.list_pod_for_all_namespaces, resource_version=rv, timeout_seconds=2):
                    if self.stop_event.is_set():
                        w.stop()
                        return
                    obj = ev["object"]
                    rv = obj.metadata.resource_version
                    if ev["type"] != "DELETED":
                        self._handle(obj)
            except ApiException as exc:
                rv = "" if exc.status == 410 else rv
                time.sleep(0.2)
            except Exception as exc:  # noqa: BLE001 - connection drops when the apiserver stops
                if self.stop_event.is_set():
                    return
                self.errors.append(str(exc)[:200])
                time.sleep(0.2)

    def _handle(self, pod) -> None:
        node = pod.spec.node_name
        if node not in self.nodes:
            return
        name, ns = pod.metadata.name, pod.metadata.namespace
        try:
            if pod.metadata.deletion_timestamp is not None:
                self.core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
            elif pod.status.phase == "Pending":
                ts = now()
                self.core.patch_namespaced_pod_status(name, ns, {"status": {
                    "phase": "Running", "startTime": ts, "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts},
                                   {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts}],
                    "containerStatuses": [{"name": c.name, "image": c.image, "imageID": "", "ready": True,
                                           "restartCount": 0, "started": True,
                                           "state": {"running": {"startedAt": ts}}} for c in pod.spec.containers],
                }})
        except ApiException as exc:
            if exc.status not in (404, 409):
                self.errors.append(f"{ns}/{name}: {exc.status} {exc.reason}")
