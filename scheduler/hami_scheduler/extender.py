"""Extender verbs (kube-scheduler extender v1): filter, prioritize, bind.

Wire format: kubernetes-contracts.md §1. Keys are Go field names; Go matches them case-insensitively,
so both ``NodeNames`` and ``nodenames`` are accepted. Filter behaves like HAMi's (hami-compat.md §6.2):
with ``NodeNames`` (nodeCacheCapable) it returns the one chosen node and writes the allocation
annotations; with full ``Nodes`` it is a dry run. Bind takes HAMi's node lock with the node's
resourceVersion (optimistic concurrency), re-checks the allocation against the pods the API holds
for that node, then creates the Binding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hami_hal.errors import HalError, InputError
from hami_hal.models import NodePolicy, PodAllocation, PodRequest
from hami_hal.requests import parse_pod
from hami_hal.requests.parser import Admit

from . import annotations as ann
from .capability import CapabilityGate
from .live_workload import WorkloadFeed
from .policies import NodeView, PodShape, make_policy
from .state import ClusterState

#: ``(allocation, node devices, pod object) -> extra pod annotations`` (a plugin's PatchAnnotations).
PodAnnotator = Callable[[PodAllocation, list, dict], dict[str, str]]

MAX_PRIORITY = 10


def ci(obj: dict, key: str, default=None):
    """Case-insensitive key lookup, as Go's encoding/json does."""
    if not isinstance(obj, dict):
        return default
    if key in obj:
        return obj[key]
    low = key.lower()
    for k, v in obj.items():
        if k.lower() == low:
            return v
    return default


def node_view(name: str, state) -> NodeView:
    """A policy view of an engine node: free share per device = min(free compute %, free memory %)."""
    free = []
    for st in state.devices.values():
        part = st.part
        c = (part.compute_percent - st.used_compute_percent) * 1000 // max(part.compute_percent, 1)
        m = (part.memory_mib - st.used_memory_mib) * 1000 // max(part.memory_mib, 1)
        slots_left = part.max_slots - st.used_slots
        free.append(0 if slots_left <= 0 or st.exclusive else max(0, min(c, m)))
    model = next((st.device.model for st in state.devices.values()), "")
    return NodeView(name, model, 1 << 40, 1 << 40, free)


def pod_shape(req: PodRequest, state) -> PodShape:
    """The pod as a policy sees it: total device count and the largest per-device share (milli)."""
    num = 0
    milli = 0
    for c in req.containers:
        if c.init:
            continue
        for r in c.requests:
            num += r.count
            mem_total = max((st.part.memory_mib for st in state.devices.values()), default=1) or 1
            share = 1000 if r.whole_device else max(r.compute_percent * 10, r.memory_for(mem_total) * 1000 // mem_total)
            milli = max(milli, min(share, 1000))
    return PodShape(0, 0, num, milli)


@dataclass
class FilterOutcome:
    node_names: list[str]
    failed: dict[str, str]
    error: str = ""
    allocation: PodAllocation | None = None


class Extender:
    """The decision side of the extender; the HTTP layer (server.py) only moves JSON."""

    def __init__(self, cluster: ClusterState, kube=None, gate: CapabilityGate | None = None,
                 policy: str = "binpack", lock_timeout_s: float = 300.0, workload_refresh_s: float = 10.0,
                 pod_annotator: PodAnnotator | None = None, admit: Admit | None = None) -> None:
        self.cluster = cluster
        #: Vendor pod annotations at Filter (HAMi PatchAnnotations), e.g. ``Hal().pod_annotations``.
        self.pod_annotator = pod_annotator
        #: Vendor admission of each request (HAMi MutateAdmission), e.g. ``Hal().admit_request``.
        self.admit = admit
        self.kube = kube
        self.gate = gate or CapabilityGate(None)
        self.policy_name = policy
        self.lock_timeout_s = lock_timeout_s
        self._filter_lock = threading.Lock()
        self._rows_cache: tuple | None = None
        self._feed: WorkloadFeed | None = None
        if policy not in ("binpack", "spread"):
            self._policy = make_policy(policy)
            self._policy.prepare([], None)
            # Fragmentation policies score against the running mix (FGD's target workload).
            self._feed = WorkloadFeed(self._policy, refresh_s=workload_refresh_s)
        else:
            self._policy = None

    # -- filter ------------------------------------------------------------------------------

    def parse(self, pod: dict) -> PodRequest:
        if not isinstance(pod, dict):
            raise InputError("Pod", pod, "must be an object")
        return parse_pod(pod, self.cluster.vendors, self.admit)

    def _choose(self, req: PodRequest, names: list[str]) -> tuple[str | None, PodAllocation | None, dict[str, str]]:
        """Prefilter all nodes (vectorised), rank the candidates, let the engine decide best-first.

        FailedNodes gets a reason for every node that cannot take the pod; nodes that could but rank
        below the chosen one are left out of both lists, as HAMi does.
        """
        index = self.cluster.index
        failed: dict[str, str] = {}
        rows_a, unknown = self._rows(names)
        for n in unknown:
            failed[n] = "node unregistered"
        if not len(rows_a):
            return None, None, failed
        cand, reasons = index.prefilter(req, rows_a)
        for r, why in reasons.items():
            failed[index.names[r]] = why
        cands = rows_a[cand]
        explicit = ann.NODE_POLICY in req.annotations
        if self._policy is not None and not explicit:
            scored = []
            for r in cands:
                name = index.names[r]
                state = self.cluster.nodes[name].state
                res = self._policy.score(node_view(name, state), pod_shape(req, state))
                scored.append((res[0] if res else float("-inf"), name))
            order = [n for _, n in sorted(scored, key=lambda t: -t[0])]
        else:
            sc = index.score[cands]
            sign = -1.0 if req.node_policy is NodePolicy.BINPACK else 1.0
            order = (index.names[r] for r in cands[np.argsort(sign * sc, kind="stable")])
        for name in order:
            fit = self.cluster.nodes[name].state.fit_pod(req, veto=self.gate)
            if not fit.ok:
                failed[name] = fit.reason or "NodeUnfitPod"
                continue
            alloc = fit.allocation
            if self._policy is not None and not explicit:
                alloc = self._policy_devices(req, name) or alloc
            return name, alloc, failed
        return None, None, failed

    def _rows(self, names: list) -> tuple[np.ndarray, list[str]]:
        """Index rows of the named nodes, and the unknown names. The last answer is reused while
        kube-scheduler keeps sending the same node list and no node came or went."""
        index = self.cluster.index
        cached = self._rows_cache
        if cached is not None and cached[0] == index.generation and cached[1] == names:
            return cached[2], cached[3]
        rows, unknown = [], []
        for n in names:
            r = index.pos.get(n) if isinstance(n, str) else None
            if r is None or n not in self.cluster.nodes:
                unknown.append(str(n))
            else:
                rows.append(r)
        arr = np.fromiter(rows, dtype=np.int64, count=len(rows))
        self._rows_cache = (index.generation, list(names), arr, unknown)
        return arr, unknown

    def filter(self, args: dict) -> FilterOutcome:
        pod = ci(args, "Pod")
        names = ci(args, "NodeNames")
        nodes_obj = ci(args, "Nodes")
        dry_run = names is None
        if names is None:
            items = (nodes_obj or {}).get("items") or []
            names = [(n.get("metadata") or {}).get("name") for n in items]
        if not isinstance(names, list):
            return FilterOutcome([], {}, "NodeNames: must be a list of node names")
        try:
            req = self.parse(pod)
        except HalError as exc:
            return FilterOutcome([], {}, str(exc))
        if not req.has_devices:
            return FilterOutcome(list(names), {})
        with self._filter_lock, self.cluster.lock:
            if self._feed is not None:
                self._feed.refresh(self.cluster)
            key = f"{req.namespace}/{req.name}"
            if not dry_run:
                self.cluster.remove_pod(key)  # drop a stale reservation of this pod
            best, alloc, failed = self._choose(req, names)
            if alloc is None:
                return FilterOutcome([], failed)
            if dry_run:
                return FilterOutcome([best], failed, allocation=alloc)
            self.cluster.reserve(alloc)
        if self.kube is not None:
            try:
                self.kube.patch_pod_annotations(req.namespace, req.name, self.filter_annotations(pod, alloc))
            except Exception as exc:  # the API refused: give the slice back
                self.cluster.remove_pod(alloc.key)
                return FilterOutcome([], failed, f"writing allocation annotations failed: {exc}")
        return FilterOutcome([best], failed, allocation=alloc)

    def _policy_devices(self, req: PodRequest, node: str) -> PodAllocation | None:
        """Let a fragmentation policy pick the device of a single-device pod; the engine validates it."""
        apps = [c for c in req.containers if c.requests]
        if len(apps) != 1 or len(apps[0].requests) != 1 or apps[0].requests[0].count != 1:
            return None
        state = self.cluster.nodes[node].state
        res = self._policy.score(node_view(node, state), pod_shape(req, state))
        if not res or not res[1]:
            return None
        want = res[1][0]

        def only(dev, usage, r, sl):
            if dev.index != want:
                from hami_hal.models import FitFailure, FitReason

                return FitFailure(uuid=dev.uuid, reason=FitReason.CARD_UUID_MISMATCH, detail="policy chose another device")
            return self.gate(dev, usage, r, sl)

        fit = state.fit_pod(req, veto=only)
        return fit.allocation if fit.ok else None

    def filter_annotations(self, pod: dict, alloc: PodAllocation) -> dict[str, str]:
        """What Filter writes: node and time, every family's allocation (hami_compat), the vendors' extras."""
        spec = pod.get("spec") or {}
        n = len(spec.get("initContainers") or []) + len(spec.get("containers") or [])
        out = {ann.VGPU_NODE: alloc.node, ann.VGPU_TIME: str(int(time.time()))}
        out.update(ann.allocation_annotations(alloc, self.cluster.vendors, n))
        if self.pod_annotator is not None:
            entry = self.cluster.nodes.get(alloc.node)
            devices = entry.inventory.devices if entry is not None else []
            for key, value in self.pod_annotator(alloc, devices, pod).items():
                out.setdefault(key, value)  # a plugin never overrides the HAMi keys above
        return out

    # -- prioritize --------------------------------------------------------------------------

    def prioritize(self, args: dict) -> list[dict]:
        """0-10 per node from the same ranking as filter; nodes the prefilter rules out score 0."""
        names = ci(args, "NodeNames")
        if names is None:
            names = [(n.get("metadata") or {}).get("name") for n in (ci(args, "Nodes") or {}).get("items") or []]
        if not isinstance(names, list):
            return []
        try:
            req = self.parse(ci(args, "Pod"))
        except HalError:
            return [{"Host": n, "Score": 0} for n in names]
        scores = {n: 0 for n in names}
        if not req.has_devices:
            return [{"Host": n, "Score": 0} for n in names]
        with self.cluster.lock:
            if self._feed is not None:
                self._feed.refresh(self.cluster)
            index = self.cluster.index
            rows, _ = self._rows(names)
            if len(rows):
                cand, _ = index.prefilter(req, rows)
                cands = rows[cand]
                if self._policy is not None and ann.NODE_POLICY not in req.annotations:
                    raw = []
                    for r in cands:
                        name = index.names[r]
                        state = self.cluster.nodes[name].state
                        res = self._policy.score(node_view(name, state), pod_shape(req, state))
                        raw.append(res[0] if res else float("-inf"))
                    vals = np.array(raw, dtype=float)
                else:
                    sign = 1.0 if req.node_policy is NodePolicy.BINPACK else -1.0
                    vals = sign * index.score[cands]
                ok = np.isfinite(vals)
                if ok.any():
                    hi, lo = vals[ok].max(), vals[ok].min()
                    for r, v in zip(cands[ok], vals[ok], strict=True):
                        scaled = MAX_PRIORITY if hi == lo else 1 + (MAX_PRIORITY - 1) * (v - lo) / (hi - lo)
                        scores[index.names[r]] = int(round(scaled))
        return [{"Host": n, "Score": scores.get(n, 0)} for n in names]

    # -- bind --------------------------------------------------------------------------------

    def bind(self, args: dict) -> str:
        """Returns the error text ('' on success)."""
        name, ns, uid, node = (ci(args, k) for k in ("PodName", "PodNamespace", "PodUID", "Node"))
        for field_name, v in (("PodName", name), ("PodNamespace", ns), ("Node", node)):
            if not isinstance(v, str) or not v:
                return f"{field_name}: {v!r} is required"
        if self.kube is None:
            return "bind: no Kubernetes API configured"
        key = f"{ns}/{name}"
        try:
            self.kube.lock_node(node, ns, name, self.lock_timeout_s)
        except HalError as exc:
            return str(exc)
        try:
            pod = self.kube.get_pod(ns, name)
            alloc = self.verify_on_api(pod, node)
            if alloc is not None:
                self.kube.patch_pod_annotations(ns, name, {ann.BIND_PHASE: "allocating", ann.BIND_TIME: str(int(time.time()))})
            self.kube.create_binding(ns, name, uid, node)
        except Exception as exc:  # refused or API error: fail this bind; kube-scheduler retries the pod
            self._undo(ns, name, node)
            return f"bind {key} to {node}: {exc}"
        self.kube.unlock_node(node, ns, name)
        return ""

    def _undo(self, ns: str, name: str, node: str) -> None:
        """A failed bind gives its reservation back, in the cache and on the API."""
        self.cluster.remove_pod(f"{ns}/{name}")
        clear: dict[str, str | None] = {ann.VGPU_NODE: None, ann.BIND_PHASE: None}
        for k in ann.allocation_keys(self.cluster.vendors):
            clear[k] = None
        try:
            self.kube.patch_pod_annotations(ns, name, clear)
        except Exception:
            pass  # the pod may be gone
        self.kube.unlock_node(node, ns, name)

    def verify_on_api(self, pod: dict, node: str) -> PodAllocation | None:
        """Under the node lock: replay every pod bound (or binding) to ``node``, then this one.

        Binds on a node are serialised by the lock, so this is what makes two schedulers (or a
        scheduler with a stale cache) unable to hand out one slice twice: the second bind sees the
        first pod bound and fails with the over-commit reason.
        """
        entry = self.cluster.nodes.get(node)
        if entry is None:
            raise InputError("Node", node, "is not registered")
        from hami_hal.engine import NodeState

        fresh = NodeState.from_inventory(entry.inventory, cordoned=entry.state.cordoned)
        devices = {d.uuid: d for d in entry.inventory.devices}
        meta = pod.get("metadata") or {}
        me = f"{meta.get('namespace', 'default')}/{meta.get('name')}"
        for other in self.kube.pods_on_node(node):
            om = other.get("metadata") or {}
            okey = f"{om.get('namespace', 'default')}/{om.get('name')}"
            if okey == me or (other.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            bound = (other.get("spec") or {}).get("nodeName") == node
            binding = (om.get("annotations") or {}).get(ann.BIND_PHASE) in ("allocating", "success")
            if not (bound or binding):
                continue  # an unbound reservation (maybe another scheduler's) is not yet a claim
            oalloc = ann.allocation_from_pod(other, self.cluster.vendors, devices)
            if oalloc is not None and oalloc.node == node:
                fresh.commit(oalloc)
        mine = ann.allocation_from_pod(pod, self.cluster.vendors, devices)
        if mine is None:
            return None
        if mine.node != node:
            raise InputError(ann.VGPU_NODE, mine.node, f"was filtered for another node than {node}")
        fresh.commit(mine)  # raises AllocationError on any over-commit
        return mine
