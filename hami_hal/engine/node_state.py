"""A node's devices and their usage: all-or-nothing pod placement, exact release.

Used by the node side (``hami allocate``), the conformance suite and the scheduler alike, so every
placement decision in the project comes from this one piece of code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import AllocationError
from ..models import (
    ContainerAllocation,
    ContainerRequest,
    Device,
    DeviceSlice,
    DeviceUsage,
    FitFailure,
    FitReason,
    NodeInventory,
    PartitionKind,
    PodAllocation,
    PodRequest,
    ResourceRequest,
    Topology,
)
from .device_fit import Proposal, Refusal, fit_device
from .device_sets import count_refusal, pick_in_sets
from .device_state import Contribution, DeviceState
from .selection import order, pick

#: A scheduler veto on a proposed slice (the capability gate). Vendor rules are data the engine reads.
Veto = Callable[[Device, DeviceUsage, ResourceRequest, DeviceSlice], FitFailure | None]


@dataclass
class PodFit:
    """Outcome of a dry run: the allocation, or the refusals and HAMi-style reason text."""

    ok: bool
    allocation: PodAllocation | None = None
    refusals: list[Refusal] = field(default_factory=list)
    reason: str = ""

    @property
    def failures(self) -> list[FitFailure]:
        return [FitFailure(reason=r, uuid=u, detail=d) for r, u, d in self.refusals]


def pod_reason(container: str, failed: str, counts: Counter[str] | None = None, total: int = 0) -> str:
    """The one reason text of a pod that does not fit, as the engine and the scheduler's prefilter
    write it: ``container <name>: <failure> (<n>/<total> <Reason>, ...)``, reasons sorted (HAMi form)."""
    text = f"container {container}: {failed}"
    if counts:
        text += " (" + ", ".join(f"{n}/{total} {reason}" for reason, n in sorted(counts.items())) + ")"
    return text


def _slice(p: Proposal, req: ResourceRequest) -> DeviceSlice:
    dev = p.state.device
    return DeviceSlice(
        vendor=dev.vendor, uuid=dev.uuid, device_index=dev.index, common_word=req.common_word,
        memory_mib=p.memory_mib, compute_percent=p.compute_percent, template=p.template,
        placement=p.placement, exclusive=p.exclusive, priority=req.priority,
        attributes={a.attribute: a.value for a in req.attributes},
    )


class NodeState:
    """Devices of one node with their usage, plus what each committed pod holds."""

    def __init__(
        self,
        name: str,
        devices: Iterable[Device],
        topology: Topology | None = None,
        cordoned: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.devices: dict[str, DeviceState] = {d.uuid: DeviceState.of(d) for d in devices}
        self.topology = topology
        self._scores = topology.pair_scores() if topology and topology.links else None
        self.cordoned = frozenset(cordoned)
        self._held: dict[str, tuple[PodAllocation, dict[str, Contribution]]] = {}
        self._by_vendor: dict[str, list[str]] = {}
        for uuid, st in self.devices.items():
            self._by_vendor.setdefault(st.device.vendor, []).append(uuid)

    @classmethod
    def from_inventory(cls, inv: NodeInventory, cordoned: Iterable[str] = ()) -> NodeState:
        return cls(inv.node, inv.devices, inv.topology, cordoned)

    # -- views -------------------------------------------------------------------------------

    def usage(self, uuid: str) -> DeviceUsage:
        return self.devices[uuid].usage()

    def usages(self) -> list[DeviceUsage]:
        return [st.usage() for st in self.devices.values()]

    def held(self) -> list[PodAllocation]:
        return [a for a, _ in self._held.values()]

    def score(self) -> float:
        """HAMi node score: 10 × (Σused/Σcount + Σcores/Σtotal + Σmem/Σtotal), 0 if a total is 0."""
        sts = list(self.devices.values())
        slots = sum(s.part.max_slots for s in sts)
        cores = sum(s.part.compute_percent for s in sts)
        mem = sum(s.part.memory_mib for s in sts)
        if not slots or not cores or not mem:
            return 0.0
        return 10 * (
            sum(s.used_slots for s in sts) / slots
            + sum(s.used_compute_percent for s in sts) / cores
            + sum(s.used_memory_mib for s in sts) / mem
        )

    def empty_copy(self) -> NodeState:
        """The same devices with nothing allocated: tells "never fits" from "not now"."""
        return NodeState(self.name, [s.device for s in self.devices.values()], self.topology, self.cordoned)

    # -- decisions ---------------------------------------------------------------------------

    def fit_pod(self, pod: PodRequest, *, veto: Veto | None = None) -> PodFit:
        """Place every container of ``pod`` or none; never changes this node."""
        app: dict[str, DeviceState] = {}  # scratch copies, made on first touch

        def current(uuid: str, table: dict[str, DeviceState]) -> DeviceState:
            return table.get(uuid) or app.get(uuid) or self.devices[uuid]

        def scratch(uuid: str, table: dict[str, DeviceState]) -> DeviceState:
            st = table.get(uuid)
            if st is None:
                st = table[uuid] = current(uuid, table).copy()
            return st

        out: list[ContainerAllocation] = []
        for ctr in pod.containers:
            # Init containers run one at a time before the app containers: each fits on its own copy.
            table = {} if ctr.init else app
            slices, refusals, total, failed = self._fit_container(ctr, table, current, scratch, veto)
            if failed:
                counts = Counter(r.value for r, _, _ in refusals)
                return PodFit(False, None, refusals, pod_reason(ctr.name, failed, counts, total))
            if ctr.init:  # template/whole partitions of init containers stay until the pod ends
                for s in slices:
                    if self.devices[s.uuid].part.kind is not PartitionKind.SHARES:
                        scratch(s.uuid, app).add(Contribution(
                            memory_mib=s.memory_mib, compute_percent=s.compute_percent,
                            instances=[(s.template, s.placement)] if s.template else [], exclusive=s.exclusive,
                            slots=1))
            out.append(ContainerAllocation(name=ctr.name, index=ctr.index, init=ctr.init, slices=slices))
        alloc = PodAllocation(namespace=pod.namespace, name=pod.name, uid=pod.uid, node=self.name, containers=out)
        return PodFit(True, alloc)

    def _fit_container(self, ctr: ContainerRequest, table, current, scratch, veto):
        slices: list[DeviceSlice] = []
        for req in ctr.requests:
            uuids = self._by_vendor.get(req.vendor, [])
            never = count_refusal(req.device_sets, req.count)
            if never:
                return slices, [], len(uuids), f"{FitReason.ALLOCATED_CARDS_INSUFFICIENT_REQUEST.value}: {never}"
            if len(uuids) < req.count:
                why = f"{req.vendor} needs {req.count} devices, node has {len(uuids)}"
                return slices, [], len(uuids), f"{FitReason.NODE_INSUFFICIENT_DEVICE.value}: {why}"
            props: list[Proposal] = []
            refusals: list[Refusal] = []
            for uuid in uuids:
                st = current(uuid, table)
                got = fit_device(st, req, self.cordoned)
                if isinstance(got, tuple):
                    refusals.append(got)
                    continue
                if veto is not None:
                    vetoed = veto(st.device, st.usage(), req, _slice(got, req))
                    if vetoed is not None:
                        refusals.append((vetoed.reason, uuid, vetoed.detail))
                        continue
                props.append(got)
            rules = req.device_sets
            if rules is not None and rules.restricts_sets:
                chosen = pick_in_sets(order(props, req.policy), req.count, rules)
                if chosen is None:
                    return slices, refusals, len(uuids), (
                        f"{FitReason.ALLOCATED_CARDS_INSUFFICIENT_REQUEST.value}: {req.vendor} needs "
                        f"{req.count} devices in one allowed set, {len(props)} fit but form none")
            else:
                chosen = pick(props, req.count, req.policy, req.numa_bind, self._scores)
            if chosen is None:
                reason = FitReason.NUMA_NOT_FIT if req.numa_bind and len(props) >= req.count else (
                    FitReason.ALLOCATED_CARDS_INSUFFICIENT_REQUEST)
                return slices, refusals, len(uuids), (
                    f"{reason.value}: {req.vendor} needs {req.count} devices, {len(props)} fit")
            shared = [p for p in chosen if p.template is None and not p.exclusive]
            if rules is not None and rules.max_shared_devices is not None and shared and \
                    req.count > rules.max_shared_devices:
                return slices, refusals, len(uuids), (
                    f"{FitReason.ALLOCATED_CARDS_INSUFFICIENT_REQUEST.value}: {req.vendor} shares are enforced on at "
                    f"most {rules.max_shared_devices} devices per container, {req.count} requested")
            over = self._budget_refusal(chosen, table, current)
            if over and len(chosen) == req.count and not (rules and rules.restricts_sets):
                # Devices already hosting the template cost the budget nothing: try them first.
                free = [p for p in props if any(n == p.template for n, _ in p.state.instances)]
                costly = [p for p in props if p not in free]
                first = pick(free, min(len(free), req.count), req.policy, False, None) or []
                rest = pick(costly, req.count - len(first), req.policy, False, None) if len(first) < req.count else []
                if rest is not None and len(first) + len(rest) == req.count:
                    chosen = first + rest
                    over = self._budget_refusal(chosen, table, current)
            if over:
                return slices, refusals, len(uuids), f"{FitReason.NODE_INSUFFICIENT_DEVICE.value}: {over}"
            for p in chosen:
                scratch(p.state.device.uuid, table).add(p.contribution())
                slices.append(_slice(p, req))
        return slices, [], 0, None

    def _budget_refusal(self, chosen: list[Proposal], table, current) -> str | None:
        """Node-wide budgets (``PartitionModel.node_budget``) the chosen templates would overdraw."""
        names = {p.state.part.node_budget.name for p in chosen if p.template and p.state.part.node_budget}
        for name in sorted(names):
            added: dict[str, set[str]] = {}
            for p in chosen:
                if p.template:
                    added.setdefault(p.state.device.uuid, set()).add(p.template)
            used, limit = 0, None
            for uuid, base in self.devices.items():
                budget = base.part.node_budget
                if budget is None or budget.name != name:
                    continue
                limit = budget.limit if limit is None else min(limit, budget.limit)
                hosted = {n for n, _ in current(uuid, table).instances} | added.get(uuid, set())
                cost = {t.name: t.node_cost for t in base.part.templates}
                used += sum(cost.get(n, 0) for n in hosted)
            if limit is not None and used > limit:
                return f"{name}: {used} of {limit} would be used"
        return None

    # -- state changes -----------------------------------------------------------------------

    def _contributions(self, alloc: PodAllocation) -> dict[str, Contribution]:
        """Per-device usage of a pod, collapsed as HAMi does: shares = max(init peak, Σ app)."""
        out: dict[str, Contribution] = {}
        init_peak: dict[str, Contribution] = {}
        for ctr in alloc.containers:
            for s in ctr.slices:
                st = self.devices.get(s.uuid)
                if st is None:
                    raise AllocationError(f"pod {alloc.key}: device {s.uuid!r} is not on node {self.name}")
                if ctr.init and st.part.kind is PartitionKind.SHARES:
                    peak = init_peak.setdefault(s.uuid, Contribution(slots=1))
                    peak.memory_mib = max(peak.memory_mib, s.memory_mib)
                    peak.compute_percent = max(peak.compute_percent, s.compute_percent)
                    peak.exclusive = peak.exclusive or s.exclusive
                    continue
                c = out.setdefault(s.uuid, Contribution())
                c.tags.extend(s.attributes.items())
                c.slots += 1
                c.memory_mib += s.memory_mib
                c.compute_percent += s.compute_percent
                c.exclusive = c.exclusive or s.exclusive
                if s.template:
                    c.instances.append((s.template, s.placement))
                    tpl = next((t for t in st.part.templates if t.name == s.template), None)
                    if tpl is None:
                        raise AllocationError(f"pod {alloc.key}: template {s.template!r} unknown on {s.uuid}")
                    c.compute_units += tpl.compute_units or 0
        for uuid, peak in init_peak.items():
            c = out.setdefault(uuid, Contribution())
            c.slots = max(c.slots, 1)
            c.memory_mib = max(c.memory_mib, peak.memory_mib)
            c.compute_percent = max(c.compute_percent, peak.compute_percent)
            c.exclusive = c.exclusive or peak.exclusive
        return out

    def commit(self, alloc: PodAllocation) -> None:
        """Apply an allocation (from fit_pod or replayed from annotations); all or nothing."""
        if alloc.key in self._held:
            raise AllocationError(f"pod {alloc.key} already holds devices on node {self.name}")
        contrib = self._contributions(alloc)
        for uuid, c in contrib.items():
            trial = self.devices[uuid].copy()
            trial.add(c)
            bad = trial.overcommitted()
            if bad:
                raise AllocationError(f"pod {alloc.key} would over-commit {uuid}: {bad}")
        for uuid, c in contrib.items():
            self.devices[uuid].add(c)
        self._held[alloc.key] = (alloc, contrib)

    def release(self, alloc: PodAllocation | str) -> PodAllocation:
        """Give back exactly what ``commit`` took for this pod."""
        key = alloc if isinstance(alloc, str) else alloc.key
        if key not in self._held:
            raise AllocationError(f"pod {key} holds nothing on node {self.name}")
        held, contrib = self._held.pop(key)
        for uuid, c in contrib.items():
            self.devices[uuid].remove(c)
        return held

    def allocate(self, pod: PodRequest, *, veto: Veto | None = None) -> PodAllocation:
        fit = self.fit_pod(pod, veto=veto)
        if not fit.ok:
            raise AllocationError(f"pod {pod.namespace}/{pod.name} does not fit node {self.name}: {fit.reason}",
                                  fit.failures)
        self.commit(fit.allocation)
        return fit.allocation
