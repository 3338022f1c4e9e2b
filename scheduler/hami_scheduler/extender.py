"""Extender verbs (kube-scheduler extender v1): filter, prioritize, bind.

Wire format: kubernetes-contracts.md §1. Keys are Go field names; Go matches them case-insensitively,
so both ``NodeNames`` and ``nodenames`` are accepted. Filter behaves like HAMi's (hami-compat.md §6.2):
with ``NodeNames`` (nodeCacheCapable) it returns the one chosen node and writes the allocation
annotations; with full ``Nodes`` it is a dry run. Bind takes HAMi's node lock with the node's
resourceVersion (optimistic concurrency), re-checks the allocation against the pods the API holds
for that node, then creates the Binding.

Trust: the pod a verb acts on is always read from the API server (by namespace/name, its UID
checked against the request's), never taken from the request body, so a forged body cannot rewrite
another pod's allocation. Bind refuses a pod that requests devices but carries no allocation for the
node, and a pod Filter refuses for what it is (:class:`PodRefused`), whatever allocation it carries. A pod refused for
what it is goes to FailedAndUnresolvableNodes; ``Error`` is left for what asking again may fix (docs/scheduler.md
lists them). Every bind failure gives the reservation back (cache and annotations) and the node lock is
released in ``finally`` with retries; a lock left behind expires as HAMi's does (kube.py).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hami_hal.engine import NodeState, check_replay
from hami_hal.errors import AllocationError, HalError, InputError
from hami_hal.models import NodePolicy, PodAllocation, PodRequest
from hami_hal.requests import parse_pod_detailed
from hami_hal.requests.parser import Admit, admit_parsed

from . import annotations as ann
from .capability import CapabilityGate
from .kube import describe
from .live_workload import SeedMix, WorkloadFeed
from .node_resources import pod_requests
from .policies import NodeView, PodShape, make_policy
from .refusals import Memo, one_line, pod_key
from .state import ClusterState, is_claim
from .webhook_counts import unwritten_count

#: ``(allocation, node devices, pod object) -> extra pod annotations`` (a plugin's PatchAnnotations).
PodAnnotator = Callable[[PodAllocation, list, dict], dict[str, str]]

MAX_PRIORITY = 10
log = logging.getLogger("hami_scheduler.extender")


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


#: RFC 1123 subdomain, as Kubernetes names pods, namespaces and nodes.
NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", re.ASCII)
#: Most node names one request may list (kube-scheduler sends at most the cluster's nodes).
MAX_NODE_NAMES = 100_000


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def node_names(args: dict) -> tuple[list | None, str]:
    """(the node names of an ExtenderArgs, error). ``NodeNames`` wins; else ``Nodes.items[].metadata.name``."""
    names = ci(args, "NodeNames")
    if names is None:
        nodes_obj = ci(args, "Nodes")
        if nodes_obj is None:
            return [], ""
        items = ci(nodes_obj, "items") if isinstance(nodes_obj, dict) else None
        if not isinstance(items, list):
            return None, f"Nodes: {short(nodes_obj)} must be a NodeList object with items"
        names = []
        for i, n in enumerate(items):
            name = ci(ci(n, "metadata"), "name")
            if not isinstance(name, str):
                return None, f"Nodes.items[{i}]: {short(n)} must be a Node object with metadata.name"
            names.append(name)
    if not isinstance(names, list):
        return None, "NodeNames: must be a list of node names"
    if len(names) > MAX_NODE_NAMES:
        return None, f"NodeNames: {len(names)} names, at most {MAX_NODE_NAMES}"
    # One C-level pass for the common case (every name a short string); the loop only to name the bad one.
    if set(map(type, names)) <= {str} and max(map(len, names), default=0) <= 253:
        return names, ""
    for i, n in enumerate(names):
        if not isinstance(n, str) or len(n) > 253:
            return None, f"NodeNames[{i}]: {short(n)} must be a node name"
    return names, ""


def node_view(name: str, state, free: tuple[int, int, int] | None = None) -> NodeView:
    """A policy view of an engine node: free share per device = min(free compute %, free memory %).

    ``free`` is (free CPU milli, allocatable CPU milli, free memory MiB) from the node's API objects
    (:class:`~.node_resources.NodeResources`); without it CPU and memory are unbounded."""
    gpus = []
    for st in state.devices.values():
        part = st.part
        c = (part.compute_percent - st.used_compute_percent) * 1000 // max(part.compute_percent, 1)
        m = (part.memory_mib - st.used_memory_mib) * 1000 // max(part.memory_mib, 1)
        slots_left = part.max_slots - st.used_slots
        gpus.append(0 if slots_left <= 0 or st.exclusive else max(0, min(c, m)))
    model = next((st.device.model for st in state.devices.values()), "")
    if free is not None:
        return NodeView(name, model, free[0], free[2], gpus, cpu_total=free[1])
    return NodeView(name, model, 1 << 40, 1 << 40, gpus)


def pod_shape(req: PodRequest, state, cpu: int = 0, mem: int = 0, types: tuple[str, ...] = ()) -> PodShape:
    """The pod as a policy sees it: total device count and the largest per-device share (milli),
    plus its CPU (milli) and memory (MiB) requests and the device models it may use."""
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
    return PodShape(cpu, mem, num, milli, types)


#: Longest reason a pod refusal gives each node at Filter (kube-scheduler repeats it in FailedScheduling);
#: the full text goes to this extender's log, once per pod and text.
MAX_REFUSAL_REASON = 160
#: Longest full text logged (a plugin's admission line is its own; the log stays one bounded line per refusal).
MAX_LOGGED_REFUSAL = 1000
#: Longest repr of a refused value in the short reason (the field and the reason must fit beside it).
MAX_REFUSED_VALUE = 48


class PodRefused(HalError):
    """The pod alone is refused: the parser refuses a value of it (a count, a share, an annotation, a combination of
    resources), the vendors' admission refuses a request, or the admission would change a count the pod carries (it
    skipped the webhook: the kubelet asks for the pod's count; :func:`.webhook_counts.unwritten_count` says why). No
    node can take it and preempting pods cannot help: Filter answers every node in FailedAndUnresolvableNodes, which
    kube-scheduler does not retry with backoff as it does an extender ``Error``, and Bind refuses it.
    ``str()`` is the short line each node gets; ``detail`` is the full text, for the log."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.detail = one_line(detail or reason, MAX_LOGGED_REFUSAL)
        super().__init__(one_line(reason, MAX_REFUSAL_REASON))

    @classmethod
    def of(cls, exc: InputError) -> PodRefused:
        """The parser's refusal, its value cut so that the field, the value and the reason fit in one short line."""
        text = str(exc)
        if len(text) > MAX_REFUSAL_REASON:
            value = repr(exc.value)
            if len(value) > MAX_REFUSED_VALUE:
                value = value[: MAX_REFUSED_VALUE - 3] + "..."
            text = f"{exc.field}: {value} {exc.reason}"
        return cls(text, str(exc))


@dataclass
class FilterOutcome:
    node_names: list[str]
    failed: dict[str, str]
    error: str = ""
    allocation: PodAllocation | None = None
    #: nodes no change in the cluster can make fit (kube-scheduler's FailedAndUnresolvableNodes)
    unresolvable: dict[str, str] = field(default_factory=dict)

    def refused(self) -> dict[str, str]:
        """Every node's reason, unresolvable ones winning (kube-scheduler's rule for the two maps)."""
        return {**self.failed, **self.unresolvable}


class Extender:
    """The decision side of the extender; the HTTP layer (server.py) only moves JSON."""

    def __init__(self, cluster: ClusterState, kube=None, gate: CapabilityGate | None = None,
                 policy: str = "binpack", lock_timeout_s: float = 300.0, workload_refresh_s: float = 10.0,
                 pod_annotator: PodAnnotator | None = None, admit: Admit | None = None,
                 workload_seed: SeedMix | None = None, workload_takeover: int = 100) -> None:
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
        #: one in-process mutex per node: this scheduler's own binds to a node queue here (bounded wait)
        #: instead of failing on the node lock one of them holds; other schedulers still meet the API lock
        self._bind_locks: dict[str, threading.Lock] = {}
        self._bind_locks_guard = threading.Lock()
        self.bind_wait_s = 10.0
        self._rows_cache: tuple | None = None
        self._refusals_logged: Memo[bool] = Memo()
        # the cache holds an unbound pod's allocation to the request this parse reads (ClusterState.claim_refusal)
        cluster.request_of, cluster.veto = self.parse, self.gate
        self._feed: WorkloadFeed | None = None
        if policy not in ("binpack", "spread"):
            self._policy = make_policy(policy)
            self._policy.prepare([], None)
            # Fragmentation policies score against the running mix (FGD's target workload).
            self._feed = WorkloadFeed(self._policy, refresh_s=workload_refresh_s, seed=workload_seed,
                                      takeover=workload_takeover)
        else:
            self._policy = None

    # -- filter ------------------------------------------------------------------------------

    def parse(self, pod: dict) -> PodRequest:
        """The pod's requests as the vendors' admission leaves them; raises :class:`PodRefused` when the parser
        refuses the pod, the admission refuses a request, or the admission would change a count (what the webhook
        writes into the pod is placed, never what only the scheduler knows). The one place that decides a refusal
        depends on the pod alone: Filter and Bind both ask it."""
        if not isinstance(pod, dict):
            raise InputError("Pod", short(pod), "must be an object")
        vendors = self.cluster.vendors  # one list for the parse and the reason (the watch may replace it meanwhile)
        try:
            parsed = parse_pod_detailed(pod, vendors)
        except InputError as exc:  # a value of the pod itself: no node, now or later, makes it parse
            raise PodRefused.of(exc) from None
        if self.admit is None:
            return parsed.request
        try:
            admitted = admit_parsed(parsed, self.admit)
        except InputError as exc:  # the plugin's line names the field and the value (parser._admitted)
            raise PodRefused.of(exc) from None
        except HalError as exc:
            raise PodRefused(str(exc)) from None
        skipped = unwritten_count(parsed, admitted, vendors)
        if skipped:
            raise PodRefused(*skipped)
        for (pos, j), (_, _, after) in zip(parsed.fields, admitted, strict=True):
            parsed.request.containers[pos].requests[j] = after
        return parsed.request

    def resources(self, pod: dict) -> tuple[int, int]:
        """The pod's CPU (milli) and memory (MiB) requests; a quantity the pod gets wrong is a :class:`PodRefused`."""
        try:
            return pod_requests(pod)
        except InputError as exc:
            raise PodRefused.of(exc) from None

    def _log_refusal(self, pod: dict, exc: PodRefused) -> None:
        """The full text of a pod refusal, logged once per pod and text (kube-scheduler asks again after each
        backoff; the memo is bounded, so a pod evicted from it is logged again)."""
        meta = pod.get("metadata") or {}
        who = f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"
        if self._refusals_logged.put((who, meta.get("uid"), exc.detail), True):
            log.warning("filter %s: refused on every node (preemption cannot help): %s", who, exc.detail)

    def api_pod(self, body_pod: object) -> dict:
        """The pod the request names, as the API server holds it (the body's copy is not trusted).

        Without an API client (unit tests of the decision code) the body's pod is used.
        """
        if not isinstance(body_pod, dict):
            raise InputError("Pod", short(body_pod), "must be a Pod object")
        meta = body_pod.get("metadata")
        if not isinstance(meta, dict):
            raise InputError("Pod.metadata", short(meta), "must be an object")
        name, ns, uid = meta.get("name"), meta.get("namespace", "default"), meta.get("uid")
        for fld, v in (("Pod.metadata.name", name), ("Pod.metadata.namespace", ns)):
            if not isinstance(v, str) or not NAME.fullmatch(v):
                raise InputError(fld, short(v), "must be a Kubernetes object name")
        if uid is not None and not isinstance(uid, str):
            raise InputError("Pod.metadata.uid", short(uid), "must be a string")
        if self.kube is None:
            return body_pod
        pod = self._read_pod(ns, name)
        api_uid = (pod.get("metadata") or {}).get("uid")
        if uid and api_uid != uid:
            raise InputError("Pod.metadata.uid", uid, f"does not match pod {ns}/{name} on the API server ({api_uid})")
        return pod

    def _read_pod(self, ns: str, name: str) -> dict:
        try:
            return self.kube.get_pod(ns, name)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                raise InputError("Pod", f"{ns}/{name}", "does not exist on the API server") from None
            raise HalError(f"reading pod {ns}/{name} from the API server failed: {describe(exc)}") from None

    def _scorer(self, req: PodRequest, cands, pod_res: tuple[int, int]):
        """``name -> policy score`` for the candidate rows, with the nodes' CPU/memory from the API.

        A pod limited to device types (HAMi's use-gputype matches by substring) gets, as the policy's
        allowed models, the models of the candidates the engine's type rule let through, so the policy
        sees the same constraint the simulator's ``gpu_spec`` gives it."""
        index = self.cluster.index
        types: tuple[str, ...] = ()
        if any(r.type_include for c in req.containers for r in c.requests):
            models = {node_view(index.names[r], self.cluster.nodes[index.names[r]].state).model for r in cands}
            types = tuple(sorted(models))
        res_ledger = self.cluster.resources

        def score(name: str):
            state = self.cluster.nodes[name].state
            shape = pod_shape(req, state, pod_res[0], pod_res[1], types)
            return self._policy.score(node_view(name, state, res_ledger.free(name)), shape)

        return score

    def _choose(self, req: PodRequest, names: list[str], pod_res: tuple[int, int] = (0, 0)
                ) -> tuple[str | None, PodAllocation | None, dict[str, str]]:
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
            score = self._scorer(req, cands, pod_res)
            for r in cands:
                name = index.names[r]
                res = score(name)
                scored.append((res[0] if res else float("-inf"), name))
            order = [n for _, n in sorted(scored, key=lambda t: -t[0])]
        else:
            sc = index.score[cands]
            sign = -1.0 if req.node_policy is NodePolicy.BINPACK else 1.0
            order = (index.names[r] for r in cands[np.argsort(sign * sc, kind="stable")])
        ledger = self.cluster.resources
        for name in order:
            short_of = ledger.short_of(name, *pod_res)
            if short_of:  # kube-scheduler's NodeResourcesFit would say so too; a reservation may be newer
                failed[name] = short_of
                continue
            fit = self.cluster.nodes[name].state.fit_pod(req, veto=self.gate)
            if not fit.ok:
                failed[name] = fit.reason or "NodeUnfitPod"
                continue
            alloc = fit.allocation
            if self._policy is not None and not explicit:
                alloc = self._policy_devices(req, name, score) or alloc
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
        dry_run = ci(args, "NodeNames") is None
        names, err = node_names(args)
        if names is None:
            return FilterOutcome([], {}, err)
        try:
            pod = self.api_pod(ci(args, "Pod"))
            req = self.parse(pod)
            pod_res = self.resources(pod)
        except PodRefused as exc:  # the pod alone decides: no node, now or after a preemption, can take it
            self._log_refusal(pod, exc)
            return FilterOutcome([], {}, unresolvable=dict.fromkeys(map(str, names), str(exc)))
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
            best, alloc, failed = self._choose(req, names, pod_res)
            if alloc is None:
                return FilterOutcome([], failed)
            if dry_run:
                return FilterOutcome([best], failed, allocation=alloc)
            self.cluster.reserve(alloc)
            self.cluster.resources.add(key, best, *pod_res)  # its CPU/memory count until the watch confirms
        if self.kube is not None:
            try:
                self.kube.patch_pod_annotations(req.namespace, req.name, self.filter_annotations(pod, alloc))
            except Exception as exc:  # the API refused: give the slice back
                self.cluster.remove_pod(alloc.key)
                return FilterOutcome([], failed, f"writing allocation annotations failed: {describe(exc)}")
        return FilterOutcome([best], failed, allocation=alloc)

    def _policy_devices(self, req: PodRequest, node: str, score) -> PodAllocation | None:
        """Let a fragmentation policy pick the devices of a one-request pod; the engine validates them."""
        apps = [c for c in req.containers if c.requests]
        if len(apps) != 1 or len(apps[0].requests) != 1:
            return None
        state = self.cluster.nodes[node].state
        res = score(node)
        if not res or not res[1] or len(res[1]) != apps[0].requests[0].count:
            return None
        want = set(res[1])

        def only(dev, usage, r, sl):
            if dev.index not in want:
                from hami_hal.models import FitFailure, FitReason

                return FitFailure(uuid=dev.uuid, reason=FitReason.CARD_UUID_MISMATCH, detail="policy chose another device")
            return self.gate(dev, usage, r, sl)

        fit = state.fit_pod(req, veto=only)
        return fit.allocation if fit.ok else None

    def filter_annotations(self, pod: dict, alloc: PodAllocation) -> dict[str, str]:
        """What Filter writes: node and time, every family's allocation (hami_compat), the request annotations it
        placed (the node agent refuses an Allocate whose request changed since), the vendors' extras."""
        spec = pod.get("spec") or {}
        n = len(spec.get("initContainers") or []) + len(spec.get("containers") or [])
        anns = (pod.get("metadata") or {}).get("annotations") or {}
        out = {ann.VGPU_NODE: alloc.node, ann.VGPU_TIME: str(int(time.time())),
               ann.PLACED_REQUEST: ann.encode_placed(anns, ann.request_pod_keys(self.cluster.vendors))}
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
        names, _ = node_names(args)
        if names is None:
            return []
        try:
            req = self.parse(ci(args, "Pod"))
            pod_res = pod_requests(ci(args, "Pod")) if self._policy is not None else (0, 0)
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
                    score = self._scorer(req, cands, pod_res)
                    for r in cands:
                        res = score(index.names[r])
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
        """Returns the error text ('' on success). Any failure after the request is known to be about
        this pod gives its reservation back; the node lock is released in ``finally``."""
        name, ns, uid, node = (ci(args, k) for k in ("PodName", "PodNamespace", "PodUID", "Node"))
        for field_name, v in (("PodName", name), ("PodNamespace", ns), ("Node", node)):
            if not isinstance(v, str) or not NAME.fullmatch(v):
                return f"{field_name}: {short(v)} must be a Kubernetes object name"
        if uid is not None and not isinstance(uid, str):
            return f"PodUID: {short(uid)} must be a string"
        if self.kube is None:
            return "bind: no Kubernetes API configured"
        key = f"{ns}/{name}"
        try:
            pod = self._read_pod(ns, name)
        except HalError as exc:
            return f"bind {key} to {node}: {exc}"
        api_uid = (pod.get("metadata") or {}).get("uid")
        if uid and api_uid != uid:
            # Not this pod (recreated, or a forged request): touch nothing of the pod the API holds.
            return f"bind {key} to {node}: PodUID {uid!r} does not match the API server's pod ({api_uid})"
        if node not in self.cluster.nodes:
            self._undo(ns, name)
            return f"bind {key}: Node {node!r} is not a registered device node"
        try:
            self.parse(pod)  # refused at Filter (the pod alone decides): no lock is taken, nothing is held for it
        except PodRefused as exc:
            self._undo(ns, name)
            return f"bind {key} to {node}: {exc}"
        with self._bind_locks_guard:
            local = self._bind_locks.setdefault(node, threading.Lock())
        if not local.acquire(timeout=self.bind_wait_s):
            self._undo(ns, name)
            return f"bind {key} to {node}: {self.bind_wait_s:g} s waiting for this scheduler's other binds to {node}"
        try:
            return self._bind_locked(ns, name, uid, node, key)
        finally:
            local.release()

    def _bind_locked(self, ns: str, name: str, uid: str | None, node: str, key: str) -> str:
        try:
            self.kube.lock_node(node, ns, name, self.lock_timeout_s)
        except Exception as exc:  # held by another pod, or the API failed: this pod goes back to the queue
            self._undo(ns, name)
            return f"bind {key} to {node}: {exc if isinstance(exc, HalError) else describe(exc)}"
        refused = sent = False
        try:
            pod = self.kube.get_pod(ns, name)  # fresh, under the lock
            if uid and (pod.get("metadata") or {}).get("uid") != uid:
                raise InputError("PodUID", uid, "no longer matches the API server's pod")
            # Filter's rule again, on the pod about to be bound: an allocation annotation (written by a stale
            # scheduler, or by whoever may edit the pod) never binds a pod that Filter refuses as it now stands
            req = self.parse(pod)
            try:
                alloc = self.verify_on_api(pod, node, req)
            except AllocationError:
                refused = True
                raise
            except InputError as exc:  # the allocation is not the request's: one bounded line, undone below
                raise PodRefused.of(exc) from None
            if alloc is None and req.has_devices:
                raise InputError(f"pod {key}", node, "requests devices but has no allocation annotation for this "
                                 "node (it was not filtered by this scheduler)")
            if alloc is not None:
                self.kube.patch_pod_annotations(ns, name, {ann.BIND_PHASE: "allocating",
                                                           ann.BIND_TIME: str(int(time.time()))})
            sent = True
            self.kube.create_binding(ns, name, uid, node)
        except Exception as exc:  # refused or API error: fail this bind; kube-scheduler retries the pod
            if sent and self._bound_anyway(ns, name, node, exc):
                return ""
            self._undo(ns, name)
            return f"bind {key} to {node}: {exc if isinstance(exc, HalError) else describe(exc)}"
        finally:
            self.kube.unlock_node(node, ns, name)
            if refused:
                self.learn_claims(node, key)
        return ""

    def _bound_anyway(self, ns: str, name: str, node: str, exc: Exception) -> bool:
        """The Binding call failed, but the API server may have applied it before the answer was lost (a read
        timeout, a dropped connection). Clearing the allocation of a pod that is in fact bound would leave it on
        the node with no devices to hand out, so the pod is read back first: bound to ``node``, the bind stands.
        If the read fails too, nothing is known and the bind fails as before (kube-scheduler retries the pod; a
        pod bound meanwhile keeps its claim through the watch)."""
        try:
            pod = self.kube.get_pod(ns, name)
        except Exception:  # noqa: BLE001 - unknown: the caller undoes as for any failed bind
            return False
        if (pod.get("spec") or {}).get("nodeName") != node:
            return False
        log.warning("bind %s/%s to %s: the Binding call failed (%s) but the pod is bound: kept", ns, name, node,
                    describe(exc))
        return True

    def learn_claims(self, node: str, me: str) -> None:
        """The replay refused: this cache missed a claim the API holds on ``node``. Upsert the node's bound and
        binding pods (the API is the truth), so the next filter sees the node full instead of choosing it again
        and meeting the same refusal forever (a pod must end Unschedulable, not loop in bind errors).

        The cache lock is held across the read, so a watch event (a deletion) that the read already reflects
        cannot be overtaken by it; events the watch still has to deliver are newer and apply on top."""
        with self.cluster.lock:
            try:
                pods = self.kube.pods_on_node(node)
            except Exception as exc:  # the watch will bring them; nothing else to do here
                log.warning("re-reading the pods on %s after a refused bind failed: %s", node, describe(exc))
                return
            for other in pods:
                om = other.get("metadata") or {}
                okey = f"{om.get('namespace', 'default')}/{om.get('name')}"
                if okey == me or not is_claim(other, node):
                    continue
                try:
                    self.cluster.upsert_pod(other)
                except HalError as exc:
                    self.cluster.rejected[pod_key(okey)] = str(exc)

    def _undo(self, ns: str, name: str) -> None:
        """A failed bind gives its reservation back, in the cache and on the API (best effort, retried)."""
        self.cluster.remove_pod(f"{ns}/{name}")
        clear: dict[str, str | None] = {ann.VGPU_NODE: None, ann.BIND_PHASE: None}
        for k in ann.allocation_keys(self.cluster.vendors):
            clear[k] = None
        delay = 0.05
        for attempt in range(3):
            try:
                self.kube.patch_pod_annotations(ns, name, clear)
                return
            except Exception as exc:
                if getattr(exc, "status", None) == 404:
                    return  # the pod is gone: nothing to clear
                if attempt == 2:
                    log.warning("clearing the allocation of %s/%s failed: %s", ns, name, describe(exc))
                    return
                time.sleep(delay)
                delay *= 2

    def verify_on_api(self, pod: dict, node: str, req: PodRequest) -> PodAllocation | None:
        """Under the node lock: replay every pod bound (or binding) to ``node``, then this one, whose allocation must
        be exactly what ``req`` (the pod as :meth:`parse` reads it) gets on its devices (:func:`check_replay`).

        Binds on a node are serialised by the lock, so this is what makes two schedulers (or a
        scheduler with a stale cache) unable to hand out one slice twice: the second bind sees the
        first pod bound and fails with the over-commit reason. The exact check is what keeps a direct /bind
        (a trusted client, a stale scheduler) from binding a copied allocation: more devices than asked, more
        memory or cores per device, a cordoned device (InputError; a full node is an AllocationError).
        """
        entry = self.cluster.nodes.get(node)
        if entry is None:
            raise InputError("Node", node, "is not registered")
        fresh = NodeState.from_inventory(entry.inventory, cordoned=entry.state.cordoned)
        devices = {d.uuid: d for d in entry.inventory.devices}
        meta = pod.get("metadata") or {}
        me = f"{meta.get('namespace', 'default')}/{meta.get('name')}"
        for other in self.kube.pods_on_node(node):
            om = other.get("metadata") or {}
            okey = f"{om.get('namespace', 'default')}/{om.get('name')}"
            if okey == me or not is_claim(other, node):
                continue  # finished, or an unbound reservation (maybe another scheduler's): not a claim
            try:
                oalloc = ann.allocation_from_pod(other, self.cluster.vendors, devices)
            except InputError:  # names no device of this node (or is malformed): it holds nothing here, as the
                continue  # cache does not count it (state.py); raising would refuse every bind to this node
            # the cache's rule: a forged claim (devices its pod never asks for, or unbound and not exact) is skipped
            if oalloc is not None and oalloc.node == node and \
                    not self.cluster.claim_refusal(other, okey, oalloc, entry):
                fresh.commit(oalloc)
        mine = ann.allocation_from_pod(pod, self.cluster.vendors, devices)
        if mine is None:
            return None
        if mine.node != node:
            raise InputError(ann.VGPU_NODE, mine.node, f"was filtered for another node than {node}")
        check_replay(fresh, req, mine, veto=self.gate)
        fresh.commit(mine)  # raises AllocationError on any over-commit
        return mine
