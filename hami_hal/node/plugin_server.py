"""One kubelet device plugin server (v1beta1 ``DevicePlugin``) per resource family, on a unix socket.

``ListAndWatch`` sends the full list of virtual device IDs at once and again whenever a device's health
changes; ``GetPreferredAllocation`` prefers the devices the scheduler wrote for the waiting pod (the
engine's choice) and otherwise spreads over distinct physical devices, unless the plugin turned it off
(``Device.preferred_allocation``: the options then say it is not available and the RPC answers
``UNIMPLEMENTED``); ``Allocate`` delegates to the :class:`~hami_hal.node.allocator.Allocator` and answers
env, mounts, device nodes and CDI names.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent import futures
from pathlib import Path

import grpc

from ..models import Device
from .allocator import AllocateError, Allocator, ContainerAnswer
from .deviceplugin.v1beta1 import api_pb2, api_pb2_grpc
from .families import Family

log = logging.getLogger("hami_hal.node.plugin")
HEALTHY, UNHEALTHY = "Healthy", "Unhealthy"
#: Bounds on one Allocate request (a pod has far fewer containers; a node far fewer virtual IDs).
MAX_CONTAINERS, MAX_IDS = 256, 8192
#: Streams re-check whether the kubelet is still there this often (seconds).
STREAM_POLL_S = 0.5


def plugin_options(family: Family) -> api_pb2.DevicePluginOptions:
    """The options of ``family``'s server: one value for ``Register`` and ``GetDevicePluginOptions`` alike."""
    return api_pb2.DevicePluginOptions(pre_start_required=False,
                                       get_preferred_allocation_available=family.preferred_allocation)


def response_for(answer: ContainerAnswer) -> api_pb2.ContainerAllocateResponse:
    """The kubelet's shape of one container's edits."""
    if answer.cdi_devices:
        return api_pb2.ContainerAllocateResponse(cdi_devices=[api_pb2.CDIDevice(name=n) for n in answer.cdi_devices])
    e = answer.edits
    return api_pb2.ContainerAllocateResponse(
        envs=e.env,
        mounts=[api_pb2.Mount(container_path=m.container_path, host_path=m.host_path, read_only="ro" in m.options)
                for m in e.mounts],
        devices=[api_pb2.DeviceSpec(container_path=d.path, host_path=d.host_path or d.path,
                                    permissions="".join(c for c in d.permissions if c in "rwm") or "rw")
                 for d in e.device_nodes],
    )


class DevicePluginService(api_pb2_grpc.DevicePluginServicer):
    """The gRPC servicer of one family."""

    def __init__(self, family: Family, allocator: Allocator,
                 scores: dict[tuple[str, str], int] | None = None) -> None:
        self.family = family
        self.allocator = allocator
        #: Topology pair scores of the node (fast links score higher), for preferring linked devices.
        self.scores = scores or {}
        self._cond = threading.Condition()
        self._version = 0
        self._stopped = False

    # -- state -------------------------------------------------------------------------------

    def update(self, devices: list[Device]) -> None:
        """New device list (health changed): every ListAndWatch stream resends the full list."""
        with self._cond:
            self.family.devices = devices
            self._version += 1
            self._cond.notify_all()

    def stop(self) -> None:
        """End every open ListAndWatch stream (the server is going away)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._stopped = False

    def device_list(self) -> api_pb2.ListAndWatchResponse:
        out = []
        for rid, dev in self.family.replicas().items():
            topo = api_pb2.TopologyInfo(nodes=[api_pb2.NUMANode(ID=dev.numa_node)]) \
                if dev.numa_node is not None and dev.advertise_numa else None
            out.append(api_pb2.Device(ID=rid, health=HEALTHY if dev.healthy else UNHEALTHY, topology=topo))
        return api_pb2.ListAndWatchResponse(devices=out)

    # -- RPCs --------------------------------------------------------------------------------

    def GetDevicePluginOptions(self, request, context):  # noqa: N802 - gRPC method names
        return plugin_options(self.family)

    def ListAndWatch(self, request, context):  # noqa: N802
        with self._cond:
            seen = self._version
            first = self.device_list()
        yield first
        while True:
            with self._cond:
                while self._version == seen and not self._stopped and context.is_active():
                    self._cond.wait(STREAM_POLL_S)
                if self._stopped or not context.is_active():
                    return
                seen = self._version
                msg = self.device_list()
            yield msg

    def GetPreferredAllocation(self, request, context):  # noqa: N802
        if not self.family.preferred_allocation:  # registered without it: a kubelet does not call it
            msg = (f"GetPreferredAllocation {self.family.resource_name}: not offered (the plugin turned preferred "
                   "allocation off; get_preferred_allocation_available is false)")
            log.warning("%s", msg)
            context.abort(grpc.StatusCode.UNIMPLEMENTED, msg)
        reqs = request.container_requests
        ids = sum(len(c.available_deviceIDs) + len(c.must_include_deviceIDs) for c in reqs)
        if len(reqs) > MAX_CONTAINERS or ids > MAX_IDS or any(not 0 <= c.allocation_size <= MAX_IDS for c in reqs):
            msg = (f"GetPreferredAllocation {self.family.resource_name}: {len(reqs)} containers / {ids} IDs / sizes "
                   f"{sorted({c.allocation_size for c in reqs})[:4]} is over the bound ({MAX_CONTAINERS} / {MAX_IDS})")
            log.error("%s", msg)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, msg)
        replicas = self.family.replicas()
        wanted = self.allocator.pending_devices(self.family)
        out = []
        for creq in request.container_requests:
            out.append(api_pb2.ContainerPreferredAllocationResponse(
                deviceIDs=preferred(replicas, list(creq.available_deviceIDs), list(creq.must_include_deviceIDs),
                                    creq.allocation_size, wanted, self.scores)))
        return api_pb2.PreferredAllocationResponse(container_responses=out)

    def Allocate(self, request, context):  # noqa: N802
        reqs = [list(c.devices_ids) for c in request.container_requests]
        if len(reqs) > MAX_CONTAINERS or sum(map(len, reqs)) > MAX_IDS:
            msg = (f"Allocate {self.family.resource_name}: {len(reqs)} containers / {sum(map(len, reqs))} IDs is "
                   f"over the bound ({MAX_CONTAINERS} / {MAX_IDS})")
            log.error("%s", msg)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, msg)
        known = self.family.replicas()
        unknown = next((i for ids in reqs for i in ids if i not in known), None)
        if unknown is not None:
            msg = f"Allocate {self.family.resource_name}: unknown device ID {unknown[:80]!r}"
            log.error("%s", msg)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, msg)
        try:
            answers = self.allocator.allocate(self.family, reqs)
        except AllocateError as err:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
        return api_pb2.AllocateResponse(container_responses=[response_for(a) for a in answers])

    def PreStartContainer(self, request, context):  # noqa: N802
        return api_pb2.PreStartContainerResponse()


def preferred(replicas: dict[str, Device], available: list[str], must: list[str], size: int,
              wanted: list[str], scores: dict[tuple[str, str], int] | None = None) -> list[str]:
    """``size`` IDs from ``available``: ``must`` first, then the devices the scheduler chose for the waiting
    pod, then distinct devices best linked to those already chosen, then any (fewer devices than asked)."""
    offered = set(available)
    chosen: list[str] = [i for i in dict.fromkeys(must) if i in offered][:max(size, 0)]  # each ID once
    used = {replicas[i].uuid for i in chosen if i in replicas}

    def take(pred) -> None:
        for rid in available:
            if len(chosen) >= size:
                return
            dev = replicas.get(rid)
            if rid not in chosen and dev is not None and dev.uuid not in used and pred(dev):
                chosen.append(rid)
                used.add(dev.uuid)

    for uuid in wanted:
        take(lambda d, uuid=uuid: d.uuid == uuid)
    while len(chosen) < size:  # no pod waiting: the best-linked free device next (topology pair scores)
        free = [replicas[r] for r in available if r in replicas and replicas[r].uuid not in used]
        if not free:
            break
        best = max(free, key=lambda d: sum((scores or {}).get((d.uuid, u), 0) for u in used))
        take(lambda d, best=best: d.uuid == best.uuid)
    taken = set(chosen)  # a set: the list's `in` made this loop quadratic in the IDs the kubelet sends
    for rid in available:  # fewer distinct devices than asked: the kubelet still needs `size` IDs
        if len(chosen) >= size:
            break
        if rid not in taken:
            chosen.append(rid)
            taken.add(rid)
    return chosen


class PluginServer:
    """A gRPC server on ``<plugin_dir>/<endpoint>`` serving one family."""

    def __init__(self, service: DevicePluginService, plugin_dir: Path, workers: int = 8) -> None:
        self.service = service
        self.socket = Path(plugin_dir) / service.family.endpoint
        self.workers = workers
        self._server: grpc.Server | None = None
        self.inode: int | None = None

    def start(self) -> None:
        """(Re)start serving; removes a stale socket of ours first (kubernetes-contracts.md §2.4)."""
        self.stop()
        self.service.resume()
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        if self.socket.exists() or self.socket.is_symlink():
            self.socket.unlink()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers,
                                                        thread_name_prefix=f"dp-{self.service.family.endpoint}"))
        api_pb2_grpc.add_DevicePluginServicer_to_server(self.service, server)
        server.add_insecure_port(f"unix://{self.socket}")
        server.start()
        self._server = server
        self.inode = os.stat(self.socket).st_ino

    def socket_gone(self) -> bool:
        """True when our socket file was deleted or replaced (a new kubelet cleans the folder)."""
        try:
            return os.stat(self.socket).st_ino != self.inode
        except FileNotFoundError:
            return True

    def stop(self, grace: float = 0.2) -> None:
        if self._server is not None:
            self.service.stop()
            self._server.stop(grace).wait(grace + 1)
            self._server = None
