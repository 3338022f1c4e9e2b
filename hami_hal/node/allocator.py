"""Kubelet ``Allocate`` the HAMi way: find the bound pod, decode its allocation, build the edits.

HAMi's device plugin (hami-compat.md §9) does not trust the kubelet's device IDs: the scheduler already
chose the devices and wrote them into the pod's ``<family>-devices-to-allocate`` annotation. So for each
container the kubelet asks about, the agent
1. finds the pod: the one the node lock names, else the oldest pending pod bound to this node whose
   ``hami.io/bind-phase`` is ``allocating`` (by ``hami.io/bind-time``);
2. refuses the pod when a request annotation this family reads differs from the scheduler's record of the
   request it placed (``hami-hal.io/placed-request``): the devices were checked against another request;
3. pops the first container segment of the family's to-allocate value that still holds devices, and
   checks its device count against the kubelet's (``device number not matched`` otherwise) and that every
   device is one of this family's devices here;
4. creates hardware partitions where the partition model needs it (fixed hardware templates), creates the container's
   shared-state folder, and asks the plugins for the container edits;
5. patches the trimmed to-allocate value, and ``bind-phase: success`` once nothing is left to allocate,
   then releases the node lock.
Any failure undoes step 4 (partitions destroyed, folder and CDI spec removed), patches
``bind-phase: failed``, writes a Warning event with the same single line, logs it, and answers the kubelet
with that line: nothing is half-made and nothing is allocated twice. Calls are serialised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from hami_hal.digits import is_digits

from ..errors import HalError
from ..manager import Hal
from ..models import (
    ContainerAllocation,
    ContainerEdits,
    Device,
    DeviceSlice,
    PartitionKind,
    Placement,
    VendorInfo,
)
from . import wire
from .cdi import CdiWriter
from .families import Family
from .kubeapi import ApiError, NodeApi
from .statedirs import ContainerRecord, StateDirs

log = logging.getLogger("hami_hal.node.allocate")


class AllocateError(HalError):
    """One line the kubelet, the pod's events and the agent's log all get."""


@dataclass
class ContainerAnswer:
    """What one container gets: the merged edits, and CDI names when the CDI strategy is on."""

    edits: ContainerEdits
    cdi_devices: list[str] = field(default_factory=list)


def _bind_time(pod: dict) -> int:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(wire.BIND_TIME, "")
    return int(value) if is_digits(value) and len(value) <= 12 else 1 << 62


def _container_names(pod: dict) -> list[tuple[str, bool]]:
    spec = pod.get("spec") or {}
    return ([(str(c.get("name", "")), True) for c in spec.get("initContainers") or []]
            + [(str(c.get("name", "")), False) for c in spec.get("containers") or []])


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:500] if text else err.__class__.__name__


def _pod_ref(pod: dict) -> str:
    m = pod.get("metadata") or {}
    return f"{m.get('namespace', 'default')}/{m.get('name', '?')}"


class Allocator:
    """The Allocate flow for every family of one node."""

    def __init__(self, hal: Hal, api: NodeApi, node: str, devices: Callable[[], list[Device]],
                 state: StateDirs, cdi: CdiWriter | None = None,
                 node_vendors: Callable[[], list[VendorInfo]] | None = None) -> None:
        self.hal = hal
        #: The vendors as this node serves them (with the families its settings add); default: the installed ones.
        self.node_vendors = node_vendors or hal.vendors
        self.api = api
        self.node = node
        self.devices = devices
        self.state = state
        self.cdi = cdi
        self.lock = threading.Lock()
        #: (pod uid, annotation key, container index) allocated by this agent: never twice.
        self._done: set[tuple[str, str, int]] = set()
        #: Placements created during the current call, before its records are written.
        self._pending: list[tuple[str, dict]] = []

    # -- finding the pod ---------------------------------------------------------------------

    def _candidates(self, family: Family) -> list[dict]:
        """Pods waiting for this family's devices on this node, the node lock's holder first."""
        key = wire.keys(family).to_allocate
        pods = self.api.pods_on_node(self.node)
        holder = None
        try:
            node = self.api.get_node(self.node)
            holder = wire.lock_holder(((node.get("metadata") or {}).get("annotations") or {}).get(wire.NODE_LOCK))
        except ApiError as err:
            log.warning("node lock unreadable, using the oldest pod: %s", err)
        out = []
        for p in pods:
            meta = p.get("metadata") or {}
            anns = meta.get("annotations") or {}
            if (p.get("status") or {}).get("phase", "Pending") != "Pending":
                continue
            if anns.get(wire.BIND_PHASE) != "allocating" or not key or not anns.get(key, "").strip(";"):
                continue
            if anns.get(wire.VGPU_NODE, self.node) != self.node:
                continue  # filtered for another node (HAMi checks hami.io/vgpu-node too)
            out.append(p)
        out.sort(key=lambda p: (
            0 if holder and ((p["metadata"].get("namespace", "default"), p["metadata"].get("name")) == holder) else 1,
            _bind_time(p), str(p["metadata"].get("creationTimestamp", "")), _pod_ref(p)))
        return out

    # -- the flow ----------------------------------------------------------------------------

    def allocate(self, family: Family, requests: list[list[str]]) -> list[ContainerAnswer]:
        """Answers for the kubelet's container requests (device IDs per container), in order."""
        with self.lock:
            try:
                pods = self._candidates(family)
            except ApiError as err:
                msg = f"Allocate {family.resource_name}: {err}"
                log.error("%s", msg)
                raise AllocateError(msg) from None
            if not pods:
                msg = f"Allocate {family.resource_name}: no binding pod found on node {self.node}"
                log.error("%s", msg)
                raise AllocateError(msg)
            pod = pods[0]
            self._pending = []
            try:
                return self._allocate_pod(pod, family, requests)
            except (HalError, ValueError) as err:
                msg = f"Allocate {family.resource_name} for pod {_pod_ref(pod)}: {_first_line(err)}"
                self._fail(pod, msg)
                raise AllocateError(msg) from None
            except Exception as err:  # a plugin bug: still one line, still undone, the agent keeps serving
                log.debug("Allocate failed", exc_info=True)
                msg = (f"Allocate {family.resource_name} for pod {_pod_ref(pod)}: plugin error "
                       f"{err.__class__.__name__}: {_first_line(err)}")
                self._fail(pod, msg)
                raise AllocateError(msg) from None

    def _allocate_pod(self, pod: dict, family: Family, requests: list[list[str]]) -> list[ContainerAnswer]:
        meta = pod.get("metadata") or {}
        anns = meta.get("annotations") or {}
        ns, name, uid = meta.get("namespace", "default"), meta.get("name", ""), str(meta.get("uid", ""))
        key = wire.keys(family).to_allocate or ""
        changed = wire.request_changed(anns, family)
        if changed:
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise AllocateError(f"{changed[0]}{more} after the scheduler placed the pod (its record "
                                f"{wire.PLACED_REQUEST}): the devices were chosen for another request; "
                                "nothing was allocated")
        working = anns[key]
        names = _container_names(pod)
        by_uuid = {d.uuid: d for d in family.devices}
        all_devices = self.devices()
        undo: list[Callable[[], None]] = []
        answers: list[ContainerAnswer] = []
        done: list[tuple[str, str, int]] = []
        try:
            for ids in requests:
                segs = wire.decode_to_allocate(working, key)
                idx = next((i for i, s in enumerate(segs) if s), None)
                if idx is None:
                    raise AllocateError(f"{key} has no container left to allocate")
                seg = segs[idx]
                cname, init = names[idx] if idx < len(names) else (f"c{idx}", False)
                if len(seg) != len(ids):
                    raise AllocateError(f"device number not matched: the kubelet asks {len(ids)} "
                                        f"{family.resource_name} for a container, {key} gives container "
                                        f"{cname!r} {len(seg)}")
                if (uid, key, idx) in self._done:
                    raise AllocateError(f"container {cname!r} was already allocated by this agent")
                slices = []
                for uuid, ctype, mem, cores in seg:
                    dev = by_uuid.get(uuid)
                    if dev is None:
                        raise AllocateError(f"{key} names device {uuid!r}, which node {self.node} does not "
                                            f"have as {family.resource_name}")
                    slices.append(self._slice(dev, ctype, mem, cores))
                answers.append(self._container(pod, family, cname, idx, init, slices, all_devices, undo))
                working = wire.trimmed(working, key, idx, family.vendor.name)
                done.append((uid, key, idx))
            patch: dict[str, str | None] = {key: working}
            finished = not wire.left_to_allocate(anns | {key: working}, self.node_vendors())
            if finished:
                patch[wire.BIND_PHASE] = "success"
            self._patch(ns, name, patch, key, anns[key], meta.get("resourceVersion"))
        except BaseException:
            for fn in reversed(undo):
                try:
                    fn()
                except Exception as err:  # noqa: BLE001 - keep undoing the rest
                    log.error("Allocate rollback for pod %s/%s: %s", ns, name, err)
            raise
        self._done.update(done)
        log.info("Allocate %s for pod %s/%s: %d container(s)%s", family.resource_name, ns, name, len(answers),
                 ", bind-phase success" if finished else "")
        if finished:
            self._release_lock(ns, name)
            self.api.pod_event(pod, "AllocateSucceeded", f"devices allocated on node {self.node}", warning=False)
        return answers

    def _patch(self, ns: str, name: str, patch: dict[str, str | None], key: str, decoded: str,
               resource_version: str | None, attempts: int = 3) -> None:
        """Patch with the pod's resourceVersion; on 409 (the kubelet or a controller updated the pod) re-read
        it and patch again as long as the to-allocate value is still the one this call decoded."""
        for attempt in range(attempts):
            try:
                self.api.patch_pod_annotations(ns, name, patch, resource_version=resource_version)
                return
            except ApiError as err:
                if err.status != 409 or attempt == attempts - 1:
                    raise
            fresh = self.api.get_pod(ns, name)
            meta = fresh.get("metadata") or {}
            if ((meta.get("annotations") or {}).get(key)) != decoded:
                raise AllocateError(f"{key} changed while the pod was being allocated; nothing was allocated")
            resource_version = meta.get("resourceVersion")
        raise AllocateError("the pod kept changing while it was being allocated (409 Conflict)")

    def _slice(self, dev: Device, ctype: str, mem: int, cores: int) -> DeviceSlice:
        part = dev.partition
        template = placement = None
        if part is not None and part.kind in (PartitionKind.TEMPLATES, PartitionKind.SLICES):
            tpl = part.smallest_template(mem, cores)
            if tpl is None:
                raise AllocateError(f"no partition template of {dev.uuid} holds {mem} MiB / {cores} %")
            template = tpl.name
            if tpl.placements:
                taken = [Placement.model_validate(p) for p in self._placements(dev.uuid)]
                placement = next((p for p in tpl.placements if not any(p.overlaps(t) for t in taken)), None)
                if placement is None:
                    raise AllocateError(f"no free placement for {tpl.name} on {dev.uuid}")
        exclusive = bool(part and part.exclusive_full_compute and cores >= 100) or (
            part is not None and part.kind is PartitionKind.WHOLE)
        return DeviceSlice(vendor=dev.vendor, uuid=dev.uuid, device_index=dev.index, common_word=ctype,
                           memory_mib=mem, compute_percent=cores, template=template, placement=placement,
                           exclusive=exclusive)

    def _placements(self, uuid: str) -> list[dict]:
        """Placements of the partitions this agent created on a device (from the state records) and of
        those created earlier in the current Allocate call."""
        out = [h["handle"]["placement"] for rec, _ in self.state.list() for hs in rec.partitions.values()
               for h in hs if h.get("uuid") == uuid and isinstance((h.get("handle") or {}).get("placement"), dict)]
        return out + [p for u, p in self._pending if u == uuid]

    def _container(self, pod: dict, family: Family, cname: str, idx: int, init: bool, slices: list[DeviceSlice],
                   all_devices: list[Device], undo: list[Callable[[], None]]) -> ContainerAnswer:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        vendor = family.vendor.name
        by_uuid = {d.uuid: d for d in all_devices}
        handles: list[dict] = []
        for i, s in enumerate(slices):
            dev = by_uuid[s.uuid]
            if dev.partition is not None and dev.partition.requires_creation:
                handle = self._create(dev, s)
                if handle is None:
                    raise AllocateError(f"the {vendor} plugin created no partition {s.template} on {s.uuid}")
                handles.append({"uuid": s.uuid, "handle": handle})
                if isinstance(handle.get("placement"), dict):
                    self._pending.append((s.uuid, handle["placement"]))
                undo.append(lambda dev=dev, handle=handle: self.hal.destroy_partition(dev, handle))
                if isinstance(handle.get("placement"), dict):
                    slices[i] = s.model_copy(update={"placement": Placement.model_validate(handle["placement"])})
        record = ContainerRecord(pod_uid=uid, namespace=meta.get("namespace", "default"), pod=meta.get("name", ""),
                                 container=cname, devices={vendor: [s.uuid for s in slices]},
                                 partitions={vendor: handles} if handles else {})
        existed = self.state.path(uid, cname).exists()
        folder = self.state.create(record)
        if not existed:
            undo.append(lambda: self.state.remove(uid, cname))
        alloc = ContainerAllocation(name=cname, index=idx, init=init, slices=slices, state_dir=str(folder))
        edits = self.hal.container_edits(alloc, all_devices)
        if self.cdi is None:
            return ContainerAnswer(edits)
        device = f"{uid}_{cname}"
        cdi_name = self.cdi.write(vendor, device, edits)
        undo.append(lambda: self.cdi.remove(vendor, device))
        return ContainerAnswer(edits, [cdi_name])

    def _create(self, dev: Device, s: DeviceSlice) -> dict | None:
        """Create the partition; when its placement turns out taken (an instance this agent does not know,
        e.g. left by a crashed agent), try the template's other free placements before giving up."""
        try:
            return self.hal.create_partition(dev, s)
        except HalError as first:
            tpl = next((t for t in dev.partition.templates if t.name == s.template), None) if dev.partition else None
            if tpl is None or s.placement is None:
                raise
            taken = [Placement.model_validate(p) for p in self._placements(dev.uuid)] + [s.placement]
            for p in tpl.placements:
                if any(p.overlaps(t) for t in taken):
                    continue
                try:
                    return self.hal.create_partition(dev, s.model_copy(update={"placement": p}))
                except HalError:
                    taken.append(p)
            raise first from None

    # -- failure -----------------------------------------------------------------------------

    def _fail(self, pod: dict, msg: str) -> None:
        meta = pod.get("metadata") or {}
        ns, name = meta.get("namespace", "default"), meta.get("name", "")
        log.error("%s", msg)
        try:
            self.api.patch_pod_annotations(ns, name, {wire.BIND_PHASE: "failed"})
        except ApiError as err:
            log.error("pod %s/%s: bind-phase failed not written: %s", ns, name, err)
        self.api.pod_event(pod, "AllocateFailed", msg)
        self._release_lock(ns, name)

    def _release_lock(self, ns: str, name: str) -> None:
        """Remove the node lock only when this pod holds it (HAMi #1433); best effort, it also expires."""
        try:
            node = self.api.get_node(self.node)
            held = ((node.get("metadata") or {}).get("annotations") or {}).get(wire.NODE_LOCK)
            if wire.lock_holder(held) == (ns, name):
                self.api.patch_node_annotations(self.node, {wire.NODE_LOCK: None})
        except ApiError as err:
            log.warning("node lock of pod %s/%s not released (it expires): %s", ns, name, err)

    # -- preferred allocation ----------------------------------------------------------------

    def pending_devices(self, family: Family) -> list[str]:
        """UUIDs of the next container segment waiting for this family (the scheduler's choice), or []."""
        with self.lock:
            try:
                pods = self._candidates(family)
            except ApiError:
                return []
            if not pods:
                return []
            key = wire.keys(family).to_allocate or ""
            try:
                segs = wire.decode_to_allocate(pods[0]["metadata"]["annotations"][key], key)
            except HalError:
                return []
            return [entry[0] for entry in next((s for s in segs if s), [])]
