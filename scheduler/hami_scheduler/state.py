"""The scheduler's view of the cluster: one engine NodeState per node, plus every pod's allocation.

Built from Node objects (HAMi register annotations or hami-hal's inventory annotation) and from the
``<vendor>-allocated`` annotations of pods that are not finished, so a restarted scheduler recovers
exactly what was handed out. Every mutation happens under one lock; a malformed object is rejected
whole with a clear reason and leaves the state unchanged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from hami_hal.engine import NodeState, Veto, check_exact
from hami_hal.errors import AllocationError, HalError, InputError
from hami_hal.models import NodeInventory, PodAllocation, PodRequest, VendorInfo
from hami_hal.requests import parse_pod_detailed
from hami_hal.vendor_families import MAX_ADDED_FAMILIES, added_families, with_families

from .annotations import (
    BIND_PHASE,
    DEVICE_CORDON,
    VGPU_NODE,
    allocation_from_pod,
    allocation_inputs,
    node_inputs,
    parse_node,
)
from .index import NodeIndex
from .node_resources import NodeResources
from .refusals import NODE, Memo, digest, node_key, one_line, pod_key, rejected_object

log = logging.getLogger("hami_scheduler.state")
T = TypeVar("T")

#: Longest refusal logged for a node or pod (an inventory refusal may quote part of a 256 KiB annotation).
MAX_LOGGED_REFUSAL = 500

FINISHED = ("Succeeded", "Failed")


def is_claim(pod: dict, node: str | None = None) -> bool:
    """Whether ``pod`` holds its devices as a claim on the API: bound (to ``node``, when given) or binding, and
    not finished. Claims win over unbound reservations in a cache, and only claims count in the bind replay.

    With ``node``, a pod is a claim there only if its binding (else its ``hami.io/vgpu-node`` annotation) names that
    node: the replay lists a node's pods by the ``hami.io/vgpu-node`` label too, which the pod author may edit, and
    a pod bound elsewhere that its label drew in would fail every bind to ``node`` (its devices are not there)."""
    if (pod.get("status") or {}).get("phase") in FINISHED:
        return False
    bound_to = (pod.get("spec") or {}).get("nodeName")
    if bound_to:
        return node is None or bound_to == node
    anns = (pod.get("metadata") or {}).get("annotations") or {}
    if node is not None and anns.get(VGPU_NODE, node) != node:
        return False
    return anns.get(BIND_PHASE) in ("allocating", "success")


def _asked_families(pod: dict, vendors: list[VendorInfo]) -> set[tuple[int, str]]:
    """(container index, CommonWord) of every family a container names a resource of (init containers first,
    HAMi's positional index). Read from the resource names alone, not parsed: no quantity or annotation the
    pod parser would refuse can make a pod's real allocation look unasked."""
    words: dict[str, set[str]] = {}  # a resource name two families share asks for either
    for v in vendors:
        for fam in v.resources:
            for n in (fam.count, fam.memory, fam.memory_percent, fam.cores):
                if n:
                    words.setdefault(n, set()).add(fam.common_word)
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    ctrs = [c for part in ("initContainers", "containers") for c in (spec.get(part) or [])
            if isinstance(spec.get(part), list)]
    asked = set()
    for i, c in enumerate(ctrs):
        res = c.get("resources") if isinstance(c, dict) and isinstance(c.get("resources"), dict) else {}
        for part in ("limits", "requests"):
            amounts = res.get(part) if isinstance(res.get(part), dict) else {}
            asked.update((i, w) for n in amounts if n in words for w in words[n])
    return asked


def unrequested_families(alloc: PodAllocation, pod: dict, vendors: list[VendorInfo]) -> str:
    """Why ``alloc`` holds devices ``pod`` never asks for ('' when it does not): every container may hold
    slices only of the resource families it names.

    Pod annotations are written by whoever may update the pod, not only by this scheduler: without this
    check a pod that asks for no device (so it needs no device quota) and names another scheduler (so it
    never runs) could carry an allocation and ``bind-phase: allocating`` naming every device of any node,
    and this cache counted them as held, for good. Counts are not compared: a vendor's admission may
    change a request's count (Ascend rounds to its templates), which the cache does not see."""
    asked = _asked_families(pod, vendors)
    asking = {i for i, _ in asked}
    for c in alloc.containers:
        for s in c.slices:
            # an entry without a type (legacy strings) is of the key's families: the container must ask for one
            ok = (c.index, s.common_word) in asked if s.common_word else c.index in asking
            if not ok:
                kind = f"{s.common_word} " if s.common_word else ""
                return f"container {c.name!r} holds {kind}device {s.uuid} but requests no {kind}device"
    return ""


@dataclass
class NodeEntry:
    inventory: NodeInventory
    state: NodeState
    resource_version: str = ""
    #: a fingerprint of the devices and the cordon the state was built from: a remembered verdict on a pod's
    #: allocation (:meth:`ClusterState.claim_refusal`) holds only for these
    version: bytes = b""


@dataclass
class ClusterState:
    vendors: list[VendorInfo]
    nodes: dict[str, NodeEntry] = field(default_factory=dict)
    #: pod key ("ns/name") -> allocation held in some NodeState
    pods: dict[str, PodAllocation] = field(default_factory=dict)
    #: pods whose allocation refers to a node not (yet) known: replayed when the node arrives
    pending: dict[str, dict] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: rejected objects: key (:func:`.refusals.node_key`, :func:`.refusals.pod_key`) -> reason (exported as a metric)
    rejected: dict[str, str] = field(default_factory=dict)
    #: vectorised summary of every node, kept in step with ``nodes`` (the filter's prefilter)
    index: NodeIndex = field(default_factory=NodeIndex)
    #: pods whose allocation is a claim on the API (bound, or binding): they win over unbound reservations
    claims: set[str] = field(default_factory=set)
    #: node CPU/memory: allocatable minus the requests of the pods on it (the policies' CPU terms)
    resources: NodeResources = field(default_factory=NodeResources)
    #: vendor -> how many families it had before any node added one (the bound on what nodes may add)
    _static_families: dict[str, int] = field(default_factory=dict, repr=False)
    #: node -> (what parse_node read from it, the vendors it read with, the inventory): see :meth:`_parse_node`
    _parsed: dict[str, tuple[tuple, list[VendorInfo], NodeInventory]] = field(default_factory=dict, repr=False)
    #: refused parses by the digest of what the parser read: (the objects it read them with, the refusal)
    _refused: Memo[tuple[tuple, HalError]] = field(default_factory=Memo, repr=False)
    #: unbound pods' allocations found exact, by the digest of what the check read: the objects it read them with
    _exact: Memo[tuple] = field(default_factory=Memo, repr=False)
    #: pods' allocations as decoded, by the digest of what the decoder read and the node's version: (vendors, it)
    _decoded: Memo[tuple[list[VendorInfo], PodAllocation | None]] = field(default_factory=Memo, repr=False)
    #: the pod's request as Filter reads it (the vendors' admission included: ``Extender.parse``, which sets it);
    #: without it the parser's request, and :attr:`veto` (the capability gate) with it
    request_of: Callable[[dict], PodRequest] | None = None
    veto: Veto | None = None

    # -- nodes -------------------------------------------------------------------------------

    def learn_families(self, inv: NodeInventory) -> None:
        """Resource families the node's agent serves beyond this scheduler's vendors (a chip its settings add, e.g.
        an Ascend chip only its ``vnpus`` section knows), from its inventory annotation: pods can ask for them from
        then on. Held to :func:`~hami_hal.vendor_families.added_families` (never replacing a family, names under
        the vendor's domains, no shared resource name or protocol key, at most ``MAX_ADDED_FAMILIES`` per vendor);
        where a node's families of a vendor break it, none of them is learned and the node is recorded as rejected
        (``node:<name>/families``); its devices stay."""
        with self.lock:
            key = node_key(inv.node, "families")
            self.rejected.pop(key, None)
            for offered in inv.vendors:
                i = next((j for j, v in enumerate(self.vendors) if v.name == offered.name), None)
                if i is None:
                    continue  # a vendor this scheduler does not serve
                base = self.vendors[i]
                first = self._static_families.setdefault(base.name, len(base.resources))
                others = [v for v in self.vendors if v.name != base.name]
                try:
                    added = added_families(base, offered, others, MAX_ADDED_FAMILIES - (len(base.resources) - first))
                except InputError as exc:
                    self.rejected[key] = f"families not learned: {exc}"
                    continue
                if added:  # a new list: a reader holding the old one keeps a consistent view
                    self.vendors = [*self.vendors[:i], with_families(base, added), *self.vendors[i + 1:]]

    def _parse_node(self, node: dict) -> NodeInventory:
        """:func:`parse_node`, again only when what it reads changed. Why: every node event (a lock taken, the agent's
        handshake, a label) came here, and each decoded and checked the node's inventory again (up to 256 KiB of
        JSON); now an event whose inventory or register annotations and vendors are unchanged reuses the last parse.
        A refused value is refused again from memory, and logged once (:meth:`_once`)."""
        vendors = self.vendors
        inputs = node_inputs(node, vendors)
        name = inputs[0] if inputs else None
        hit = self._parsed.get(name) if isinstance(name, str) else None
        if hit is not None and hit[1] is vendors and hit[0] == inputs:
            return hit[2]
        inv = self._once(f"node {name}", inputs and ("node", inputs), (vendors,), lambda: parse_node(node, vendors))
        if isinstance(name, str):
            self._parsed[name] = (inputs, vendors, inv)
        return inv

    def _once(self, what: str, inputs: tuple | None, using: tuple, parse: Callable[[], T]) -> T:
        """``parse()``, unless these ``inputs`` read with these ``using`` objects (the same vendors list) were refused
        before: then the same refusal again, without parsing. The refusal is logged once per
        distinct value, in one bounded line. Why: a watch hands over a node or pod with a malformed annotation again
        on every change of any other field, and each parsed (up to 256 KiB of JSON) and would log it again; the
        memory is bounded (:mod:`.refusals`), so a value changed on every event costs a parse and a line each time,
        never more memory. ``inputs`` None (an object too malformed to say) is parsed each time."""
        key = digest(inputs) if inputs is not None else None
        known = self._refused.get(key) if key is not None else None
        if known is not None and all(a is b for a, b in zip(known[0], using, strict=True)):
            raise known[1].with_traceback(None)
        try:
            return parse()
        except HalError as exc:
            if key is not None and self._refused.put(key, (using, exc)):
                log.warning("%s refused: %s", what, one_line(str(exc), MAX_LOGGED_REFUSAL))
            raise

    def upsert_node(self, node: dict) -> None:
        """Add or refresh a node; existing allocations on it are re-applied to the new devices."""
        inv = self._parse_node(node)  # raises before anything changes
        meta = node.get("metadata") or {}
        cordon = [u.strip() for u in (meta.get("annotations") or {}).get(DEVICE_CORDON, "").split(",") if u.strip()]
        with self.lock:
            self.rejected.pop(node_key(inv.node), None)  # a node refused before and fixed since is not refused now
            self.learn_families(inv)
            try:
                self.resources.set_node(inv.node, node)
                self.rejected.pop(node_key(inv.node, "allocatable"), None)
            except HalError as exc:  # devices still schedule; CPU/memory of this node stay unknown
                self.rejected[node_key(inv.node, "allocatable")] = str(exc)
            old = self.nodes.get(inv.node)
            if old and old.inventory.devices == inv.devices and old.state.cordoned == frozenset(cordon):
                old.resource_version = meta.get("resourceVersion", "")
                return
            fresh = NodeState.from_inventory(inv, cordoned=cordon)
            held = old.state.held() if old else []
            for alloc in held:
                try:
                    fresh.commit(alloc)
                except (AllocationError, HalError) as exc:
                    # The node shrank under a running pod: keep the pod recorded but say so.
                    self.rejected[pod_key(alloc.key)] = f"no longer fits node {inv.node}: {exc}"
                    self.pods.pop(alloc.key, None)
            self.nodes[inv.node] = NodeEntry(inv, fresh, meta.get("resourceVersion", ""),
                                             digest((inv.devices, sorted(fresh.cordoned))))
            self.index.set_node(inv.node, fresh)
            for key, pod in list(self.pending.items()):
                self.pending.pop(key)
                self.upsert_pod(pod)

    def remove_node(self, name: str) -> None:
        with self.lock:
            self._forget_refusals(node_key(name))
            self._parsed.pop(name, None)
            entry = self.nodes.pop(name, None)
            self.index.set_node(name, None)
            self.resources.drop_node(name)
            if entry:
                for alloc in entry.state.held():
                    self.pods.pop(alloc.key, None)

    def _forget_refusals(self, key: str) -> None:
        """Drop what ``rejected`` says about one object (``node:<name>`` or ``pod:<ns>/<name>``) and its parts
        (``node:<name>/families``, ``pod:<ns>/<name>/resources``). Why: the list is current state (it is the
        ``hami_scheduler_rejected_objects`` gauge); an object gone from the API is refused no more, and a list that
        kept every deleted object's refusal would grow with each bad object created and deleted."""
        for k in [k for k in self.rejected if k == key or k.startswith(f"{key}/")]:
            del self.rejected[k]

    def forget_absent(self, nodes: set[str], pods: set[str]) -> None:
        """After a re-list: drop the refusals of the nodes and pods (``<ns>/<name>``) the API no longer lists."""
        with self.lock:
            for k in list(self.rejected):
                kind, name = rejected_object(k)
                if name not in (nodes if kind == NODE else pods):
                    del self.rejected[k]

    # -- pods --------------------------------------------------------------------------------

    def forget_pod(self, key: str) -> None:
        """The pod was deleted: drop its allocation and what ``rejected`` says about it."""
        with self.lock:
            self.remove_pod(key)
            self._forget_refusals(pod_key(key))

    def upsert_pod(self, pod: dict) -> None:
        """Record (or drop, when finished/unallocated) the allocation a pod's annotations carry."""
        meta = pod.get("metadata") or {}
        key = f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"
        phase = (pod.get("status") or {}).get("phase")
        with self.lock:
            try:
                self._upsert_pod(pod, meta, key, phase)
            finally:  # CPU/memory ledger: after the device part, whatever it decided
                self._count_resources(pod, meta, key, phase)

    def _count_resources(self, pod: dict, meta: dict, key: str, phase: str | None) -> None:
        node = (pod.get("spec") or {}).get("nodeName") or (meta.get("annotations") or {}).get(VGPU_NODE)
        if phase in FINISHED or meta.get("deletionTimestamp"):
            node = None
        try:
            self.resources.set_pod(key, pod, node if isinstance(node, str) else None)
            self.rejected.pop(pod_key(key, "resources"), None)
        except HalError as exc:
            self.rejected[pod_key(key, "resources")] = str(exc)

    def _upsert_pod(self, pod: dict, meta: dict, key: str, phase: str | None) -> None:
        if phase in FINISHED or meta.get("deletionTimestamp"):
            self.remove_pod(key)
            return
        node = (meta.get("annotations") or {}).get(VGPU_NODE) or (pod.get("spec") or {}).get("nodeName")
        entry = self.nodes.get(node) if node else None
        if node and entry is None:
            self.pending[key] = pod
            return
        alloc = None
        if entry is not None:
            alloc = self._decode(pod, key, entry)
        undue = self.claim_refusal(pod, key, alloc, entry) if alloc is not None and entry is not None else ""
        if undue:  # forged or stale: hold nothing for it (a reservation it had goes too)
            self.remove_pod(key)
            self.rejected[pod_key(key)] = f"allocation annotation ignored: {undue}"
            raise InputError(f"pod {key} allocation", node, f"is ignored: {undue}")
        claim = is_claim(pod)
        current = self.pods.get(key)
        if current is not None and alloc is not None and current.node == alloc.node and \
                current.containers == alloc.containers:
            # Same devices as held (typically this scheduler's own reservation, now binding or bound):
            # only its claim status moves. Without this, a pod this cache reserved stayed a "reservation"
            # after it bound, and a claim of another scheduler evicted it for good (no later watch event
            # brings a running pod back), so the filter kept choosing a full device.
            self._mark_claim(key, claim)
            self.rejected.pop(pod_key(key), None)
            return
        if current is not None:
            self.remove_pod(key)
        if alloc is None:
            self.rejected.pop(pod_key(key), None)  # no allocation, nothing refused (a bad one removed since)
            return
        try:
            entry.state.commit(alloc)
        except AllocationError as exc:
            if not (claim and self._evict_reservations(node)):
                self.rejected[pod_key(key)] = str(exc)
                raise InputError(f"pod {key} allocation", node, f"does not fit the node: {exc}") from None
            try:  # a bound pod wins over this cache's unbound reservations (another scheduler bound it)
                entry.state.commit(alloc)
            except AllocationError as exc2:
                self.rejected[pod_key(key)] = str(exc2)
                raise InputError(f"pod {key} allocation", node, f"does not fit the node: {exc2}") from None
        self.pods[key] = alloc
        self._mark_claim(key, claim)
        self.rejected.pop(pod_key(key), None)  # a refusal is current state, not history: it goes once the pod fits
        self.index.touch(node)

    def _decode(self, pod: dict, key: str, entry: NodeEntry) -> PodAllocation | None:
        """:func:`allocation_from_pod` on ``entry``'s devices, again only when what it reads changed (the pod's
        allocation annotations and node, the node's devices, the vendors): a watch event of an unchanged pod (a
        status, a label) decodes nothing. The decoded allocation is never changed by the cache or the engine, so
        one object serves every event."""
        devices = {d.uuid: d for d in entry.inventory.devices}
        vendors = self.vendors
        # what a refusal depends on: the pod's values, the node's device UUIDs (the inventory it read them from
        # is not kept: a memo entry must not hold a node's whole inventory alive) and the vendors
        inputs = ("pod", allocation_inputs(pod, vendors), sorted(devices))
        # what the decoded allocation holds besides: the pod's UID, its containers' names (init first) and its
        # families' attribute annotations (a QoS policy travels with its slices), read from every annotation
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        names = [[c.get("name") if isinstance(c, dict) else None for c in spec.get(k) or []]
                 for k in ("initContainers", "containers")]
        mark = digest((inputs, entry.version, meta.get("uid"), meta.get("annotations"), names))
        seen = self._decoded.get(mark)
        if seen is not None and seen[0] is vendors:
            return seen[1]
        alloc = self._once(f"pod {key} allocation", inputs, (vendors,),
                           lambda: allocation_from_pod(pod, vendors, devices))
        self._decoded.put(mark, (vendors, alloc))
        return alloc

    def claim_refusal(self, pod: dict, key: str, alloc: PodAllocation, entry: NodeEntry) -> str:
        """Why ``alloc`` (read from ``pod``'s annotations) does not count as ``pod``'s claim on ``entry``'s node; ''
        when it counts. The one rule for this cache and for Bind's replay of a node's other pods:

        - A bound pod (``spec.nodeName``) counts as it is, within the families it asks for
          (:func:`unrequested_families`): the node agent hands out what the annotation says, so counting less
          than that would put two pods on one slice (fail-open on the node).
        - A pod not yet bound counts only if its allocation is exactly what its request gets on those devices
          (:func:`~hami_hal.engine.check_exact`, the rule Bind holds the pod being bound to). Whoever may edit
          the pod could otherwise write an allocation larger than its request and ``bind-phase: allocating``:
          it can never bind with it, yet it filled the node for every other pod.

        The verdict is remembered by value (the pod's name, annotations and containers, the node's devices and
        cordon, the vendors, the parser): an event of an unchanged pod is neither parsed nor fitted again, and a
        refusal is logged once (:meth:`_once`)."""
        undue = unrequested_families(alloc, pod, self.vendors)
        spec = pod.get("spec") or {}
        if undue or spec.get("nodeName"):
            return undue
        vendors, request_of, veto = self.vendors, self.request_of, self.veto
        meta = pod.get("metadata") or {}
        inputs = ("exact", meta.get("namespace"), meta.get("name"), meta.get("annotations"),
                  spec.get("initContainers"), spec.get("containers"), entry.version)
        using = (vendors, request_of, veto)
        seen = self._exact.get(digest(inputs))
        if seen is not None and all(a is b for a, b in zip(seen, using, strict=True)):
            return ""

        def check() -> None:
            req = request_of(pod) if request_of is not None else parse_pod_detailed(pod, vendors).request
            check_exact(entry.state, req, alloc, veto)

        try:
            self._once(f"pod {key} allocation (not bound)", inputs, using, check)
        except HalError as exc:
            return one_line(f"not exactly what its request gets: {exc}", MAX_LOGGED_REFUSAL)
        self._exact.put(digest(inputs), using)
        return ""

    def _mark_claim(self, key: str, claim: bool) -> None:
        if claim:
            self.claims.add(key)
        else:
            self.claims.discard(key)

    def _evict_reservations(self, node: str) -> list[str]:
        """Drop every unbound reservation on ``node`` (their binds then fail and kube-scheduler retries
        them); returns their keys. Called when a bound pod does not fit beside them."""
        gone = [k for k, a in self.pods.items() if a.node == node and k not in self.claims]
        for k in gone:
            self.remove_pod(k)
            self.rejected[pod_key(k)] = f"reservation on {node} dropped: a bound pod needs its devices"
        return gone

    def remove_pod(self, key: str) -> None:
        with self.lock:
            self.pending.pop(key, None)
            self.claims.discard(key)
            self.resources.drop_pod(key)
            alloc = self.pods.pop(key, None)
            if alloc and alloc.node in self.nodes:
                self.nodes[alloc.node].state.release(alloc)
                self.index.touch(alloc.node)

    def reserve(self, alloc: PodAllocation) -> None:
        """Hold a filter decision so concurrent filters cannot hand out the same slice."""
        with self.lock:
            self.remove_pod(alloc.key)
            self.nodes[alloc.node].state.commit(alloc)
            self.pods[alloc.key] = alloc
            self.index.touch(alloc.node)

    def fit(self, node: str, pod: PodRequest, veto=None):
        entry = self.nodes.get(node)
        if entry is None:
            return None
        return entry.state.fit_pod(pod, veto=veto)

    def snapshot(self) -> dict:
        """Comparable summary (tests: restart recovery)."""
        with self.lock:
            return {
                "nodes": sorted(self.nodes),
                "pods": {k: a.model_dump(mode="json") for k, a in sorted(self.pods.items())},
                "usage": {n: [u.model_dump(mode="json") for u in e.state.usages()] for n, e in sorted(self.nodes.items())},
            }
