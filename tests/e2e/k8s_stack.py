"""One test's scheduling stack on the real control plane: HAMi-annotated nodes, extender processes
(``hami-scheduler serve``, killable), kube-scheduler configured with them, and the checks that read the
truth back from the API (replay of every bound pod into fresh engine states).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from k8s_controlplane import ControlPlane, Proc, extender_stanza
from k8s_fakekubelet import FakeKubelet
from kubernetes import client
from kubernetes.client.rest import ApiException
from sched_testing import NVIDIA

from hami_hal.engine import NodeState
from hami_hal.errors import AllocationError, HalError
from hami_hal.hami_compat import (
    NODE_LOCK,
    RegisteredDevice,
    allocation_from_pod,
    encode_register_json,
    parse_node,
)
from hami_hal.testing.ports import TAKEN, PortTaken, retry_taken, wait_log_port

RESOURCES = NVIDIA.resources[0].names()


def new_namespace(cp: ControlPlane, test_name: str) -> str:
    ns = "e2e-" + re.sub(r"[^a-z0-9-]", "-", test_name.lower())[:40].strip("-") + f"-{int(time.time()) % 100000}"
    client.CoreV1Api(cp.api_client()).create_namespace({"metadata": {"name": ns, "labels": {"hami-hal-e2e": "true"}}})
    return ns


def hami_node(name: str, gpus: int = 4, mem: int = 40960, count: int = 10,
              model: str = "NVIDIA-NVIDIA A100-PCIE-40GB") -> tuple[dict, dict]:
    """A Node as HAMi's NVIDIA device plugin registers it: the register annotation written by the core's HAMi
    codec (``hami_hal.hami_compat``, JSON as HAMi >= v2.8) + the capacity the kubelet publishes."""
    devs = [RegisteredDevice(id=f"GPU-{name}-{i}", index=i, count=count, devmem=mem, devcore=100, type=model,
                             health=True) for i in range(gpus)]
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {NVIDIA.annotations.node_register: encode_register_json(devs)}}}
    capacity = {"nvidia.com/gpu": str(gpus * count), "nvidia.com/gpumem": str(gpus * mem),
                "nvidia.com/gpucores": str(gpus * 100), "nvidia.com/gpumem-percentage": str(gpus * 100)}
    return node, capacity


def gpu_pod(name: str, gpus: int = 1, mem: int | None = 4096, cores: int | None = 25,
            scheduler: str | None = "hami-scheduler") -> dict:
    limits = {"nvidia.com/gpu": str(gpus)}
    if mem is not None:
        limits["nvidia.com/gpumem"] = str(mem)
    if cores is not None:
        limits["nvidia.com/gpucores"] = str(cores)
    spec: dict = {"containers": [{"name": "main", "image": "cuda:fake", "resources": {"limits": limits}}],
                  "terminationGracePeriodSeconds": 0}
    if scheduler:
        spec["schedulerName"] = scheduler
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


class Stack:
    def __init__(self, cp: ControlPlane, kubelet: FakeKubelet, work: Path, ns: str) -> None:
        self.cp = cp
        self.kubelet = kubelet
        self.work = work
        self.ns = ns
        self.api = cp.api_client()
        self.core = client.CoreV1Api(self.api)
        self.nodes: list[str] = []
        self.procs: list[Proc] = []
        self.cleanups: list = []  # callables run first at teardown
        self.vendors = work / "vendors.json"
        self.vendors.write_text(json.dumps([NVIDIA.model_dump(mode="json")]))

    # -- nodes -------------------------------------------------------------------------------

    def add_nodes(self, n: int, **kw) -> list[str]:
        for i in range(n):
            name = f"{self.ns}-n{i}"[:63]
            node, capacity = hami_node(name, **kw)
            self.kubelet.register(node, capacity)
            self.nodes.append(name)
        return self.nodes

    # -- processes ---------------------------------------------------------------------------

    def start_extender(self, name: str = "extender", port: int | None = None, extra: list[str] = (),
                       installed: bool = False) -> tuple[Proc, int]:
        """``port``: a given one (a restart where kube-scheduler expects it); none: the server binds port 0 and its
        banner says which port it got (no pick-close-bind race), except with ``--leader-elect``, whose URL names the
        port before the bind: a free port then, and another one if it was taken meanwhile (bounded). ``installed``:
        the installed plugins' vendors and admission (the chart's way), not ``--vendors`` data."""
        extra = [*([] if installed else ["--vendors", str(self.vendors)]), *extra]
        if port is None and "--leader-elect" in extra:
            return retry_taken(lambda p: self._start_extender(name, p, extra))
        return self._start_extender(name, port, extra)

    def _start_extender(self, name: str, port: int | None, extra: list[str]) -> tuple[Proc, int]:
        proc = self.cp.spawn(f"{self.ns}-{name}", [
            sys.executable, "-m", "hami_scheduler.cli", "serve", "--bind", f"127.0.0.1:{port or 0}",
            "--kubeconfig", str(self.cp.kubeconfig), *extra,
        ])
        self.procs.append(proc)
        port = port or wait_log_port(proc.log, proc.alive)
        self.wait_http(f"http://127.0.0.1:{port}/readyz", proc)
        return proc, port

    def wait_http(self, url: str, proc: Proc, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not proc.alive():
                why = f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}"
                raise PortTaken(why) if TAKEN.search(proc.tail(3)) else RuntimeError(why)
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{url} not ready in {timeout}s:\n{proc.tail()}")

    def start_scheduler(self, ext_ports: int | list[int], name: str = "kube-scheduler",
                        lease: str | None = None, scheduler_name: str = "hami-scheduler",
                        resources: list[str] = RESOURCES) -> Proc:
        ports = [ext_ports] if isinstance(ext_ports, int) else ext_ports
        stanzas = [extender_stanza(f"http://127.0.0.1:{p}", resources) for p in ports]
        proc = self.cp.start_scheduler(f"{self.ns}-{name}", stanzas, scheduler_name=scheduler_name,
                                       lease=(self.ns, lease) if lease else None)
        self.procs.append(proc)
        return proc

    # -- pods --------------------------------------------------------------------------------

    def create(self, pod: dict) -> None:
        self.core.create_namespaced_pod(self.ns, pod)

    def pods(self) -> list[dict]:
        resp = self.core.list_namespaced_pod(self.ns, _preload_content=False)
        return json.loads(resp.data)["items"]

    def settled(self) -> dict[str, int] | None:
        """Counts once every pod is Running or reported unschedulable; None while any is in flight."""
        out = {"running": 0, "unschedulable": 0}
        for p in self.pods():
            st = p.get("status") or {}
            if st.get("phase") == "Running":
                out["running"] += 1
                continue
            conds = {c["type"]: c for c in st.get("conditions") or []}
            sched = conds.get("PodScheduled")
            if sched and sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
                out["unschedulable"] += 1
                continue
            return None
        return out

    def describe(self) -> str:
        """Pods by state, and the last lines of this stack's processes (for a timeout message)."""
        states: dict[str, list[str]] = {}
        for p in self.pods():
            st = p.get("status") or {}
            sched = {c["type"]: c for c in st.get("conditions") or []}.get("PodScheduled") or {}
            key = f"{st.get('phase')}/{sched.get('reason', '-')}/{'bound' if p['spec'].get('nodeName') else 'unbound'}"
            states.setdefault(key, []).append(p["metadata"]["name"])
        pods = "; ".join(f"{k}: {len(v)} ({', '.join(v[:4])})" for k, v in sorted(states.items()))
        logs = "\n".join(f"--- {p.name} ({'alive' if p.alive() else 'exited'})\n{p.tail(8)}" for p in self.procs)
        return f"pods {pods}\n{logs}"

    def delete_all_pods(self) -> None:
        self.core.delete_collection_namespaced_pod(self.ns, grace_period_seconds=0)

    def metric(self, port: int, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"metric {name} not exported")

    def metric_sum(self, port: int, name: str, **labels: str) -> float:
        """Sum of a labelled series over the samples whose labels include ``labels``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        want = [f'{k}="{v}"' for k, v in labels.items()]
        for line in text.splitlines():
            if line.startswith(name + "{") and all(w in line for w in want):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def lease_holder(self, name: str) -> str:
        try:
            lease = client.CoordinationV1Api(self.api).read_namespaced_lease(name, self.ns)
        except ApiException:
            return ""
        return lease.spec.holder_identity or ""

    def post(self, port: int, verb: str, body: dict) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/{verb}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def events(self, pod: str) -> list[dict]:
        resp = self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={pod}",
                                               _preload_content=False)
        return json.loads(resp.data)["items"]

    # -- the truth, from the API -------------------------------------------------------------

    def replay(self) -> dict:
        """Commit every bound pod's allocation annotation into fresh engine states of its node.

        Returns counts; ``overcommits`` lists pods the engine refused (a slice handed out twice, or more
        memory/cores/slots than a device has), ``mismatched`` pods whose allocation names another node
        than the one they were bound to.
        """
        raw_nodes = json.loads(self.core.list_node(_preload_content=False).data)["items"]
        states, devices = {}, {}
        for n in raw_nodes:
            name = n["metadata"]["name"]
            if name not in self.nodes:
                continue
            inv = parse_node(n, [NVIDIA])
            states[name] = NodeState.from_inventory(inv)
            devices[name] = {d.uuid: d for d in inv.devices}
        out = {"bound": 0, "overcommits": [], "mismatched": [], "unallocated": []}
        for p in self.pods():
            node = (p.get("spec") or {}).get("nodeName")
            if not node or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            out["bound"] += 1
            key = p["metadata"]["name"]
            alloc = allocation_from_pod(p, [NVIDIA], devices.get(node, {}))
            if alloc is None:
                out["unallocated"].append(key)
                continue
            if alloc.node != node:
                out["mismatched"].append(key)
                continue
            try:
                states[node].commit(alloc)
            except (AllocationError, HalError) as exc:
                out["overcommits"].append(f"{key}: {exc}")
        return out

    def live_locks(self) -> dict[str, str]:
        """Node locks whose holder pod still exists (HAMi treats a lock of a vanished pod as free)."""
        out = {}
        for node, held in self.node_locks().items():
            parts = held.split(",")
            if len(parts) == 3:
                try:
                    self.core.read_namespaced_pod(parts[2], parts[1])
                except ApiException as exc:
                    if exc.status == 404:
                        continue
            out[node] = held
        return out

    def node_locks(self) -> dict[str, str]:
        out = {}
        for name in self.nodes:
            anns = self.core.read_node(name).metadata.annotations or {}
            if NODE_LOCK in anns:
                out[name] = anns[NODE_LOCK]
        return out

    # -- teardown ----------------------------------------------------------------------------

    def teardown(self) -> None:
        for fn in self.cleanups:
            try:
                fn()
            except Exception:  # noqa: BLE001 - teardown continues
                pass
        try:
            self.delete_all_pods()
        except ApiException:
            pass
        for p in reversed(self.procs):
            p.stop()
        for name in self.nodes:
            try:
                self.core.delete_node(name)
            except ApiException:
                pass
            self.kubelet.nodes.discard(name)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)
