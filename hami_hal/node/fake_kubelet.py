"""A fake kubelet for tests and benchmarks: the real v1beta1 protocol over real unix sockets.

It serves ``Registration`` on ``<dir>/kubelet.sock`` and, for each plugin that registers, does what the
kubelet's device manager does: dial the plugin's socket, call ``GetDevicePluginOptions``, keep a
``ListAndWatch`` stream open and remember the latest device list. ``restart()`` behaves like a new
kubelet: it deletes every socket in the folder and serves ``kubelet.sock`` anew. Test code, shipped so a
plugin author can test their vendor plugin under ``hami node`` the same way.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from .deviceplugin.v1beta1 import api_pb2, api_pb2_grpc


@dataclass
class Endpoint:
    """One registered resource as the fake kubelet sees it."""

    request: api_pb2.RegisterRequest
    channel: grpc.Channel
    stub: api_pb2_grpc.DevicePluginStub
    options: api_pb2.DevicePluginOptions | None = None
    devices: dict[str, str] = field(default_factory=dict)  # ID -> health
    updates: int = 0
    registered_at: float = 0.0


class FakeKubelet(api_pb2_grpc.RegistrationServicer):
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.socket = self.folder / "kubelet.sock"
        self.endpoints: dict[str, Endpoint] = {}
        self.registrations: list[api_pb2.RegisterRequest] = []
        self.cond = threading.Condition()
        self._server: grpc.Server | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeKubelet:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-kubelet"))
        api_pb2_grpc.add_RegistrationServicer_to_server(self, server)
        server.add_insecure_port(f"unix://{self.socket}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0).wait(2)
            self._server = None
        with self.cond:
            for ep in self.endpoints.values():
                ep.channel.close()
            self.endpoints.clear()

    def restart(self) -> None:
        """A new kubelet: every socket in the folder is deleted, then kubelet.sock is served again."""
        self.stop()
        for p in self.folder.glob("*.sock"):
            p.unlink(missing_ok=True)
        self.start()

    # -- Registration service ----------------------------------------------------------------

    def Register(self, request, context):  # noqa: N802 - gRPC method name
        if request.version != "v1beta1":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported version {request.version!r}")
        if "/" in request.endpoint or not request.endpoint.endswith(".sock"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad endpoint {request.endpoint!r}")
        channel = grpc.insecure_channel(f"unix://{self.folder / request.endpoint}")
        ep = Endpoint(request, channel, api_pb2_grpc.DevicePluginStub(channel), registered_at=time.monotonic())
        with self.cond:
            old = self.endpoints.pop(request.resource_name, None)
            if old is not None:
                old.channel.close()
            self.endpoints[request.resource_name] = ep
            self.registrations.append(request)
            self.cond.notify_all()
        threading.Thread(target=self._watch, args=(ep,), daemon=True).start()
        return api_pb2.Empty()

    def _watch(self, ep: Endpoint) -> None:
        try:
            ep.options = ep.stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=5)
            for resp in ep.stub.ListAndWatch(api_pb2.Empty()):
                with self.cond:
                    ep.devices = {d.ID: d.health for d in resp.devices}
                    ep.updates += 1
                    self.cond.notify_all()
        except grpc.RpcError:
            pass  # plugin gone or channel closed: a real kubelet marks the devices unhealthy

    # -- what the tests use --------------------------------------------------------------------

    def wait(self, predicate, timeout: float = 10.0) -> bool:
        """Wait until ``predicate(self)`` holds; False on timeout."""
        end = time.monotonic() + timeout
        with self.cond:
            while not predicate(self):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))
            return True

    def healthy(self, resource: str) -> list[str]:
        ep = self.endpoints.get(resource)
        return sorted(i for i, h in (ep.devices.items() if ep else ()) if h == "Healthy")

    def allocate(self, resource: str, containers: list[list[str]], timeout: float = 10.0) -> api_pb2.AllocateResponse:
        req = api_pb2.AllocateRequest(container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=ids)
                                                          for ids in containers])
        return self.endpoints[resource].stub.Allocate(req, timeout=timeout)

    def preferred(self, resource: str, available: list[str], must: list[str], size: int) -> list[str]:
        req = api_pb2.PreferredAllocationRequest(container_requests=[api_pb2.ContainerPreferredAllocationRequest(
            available_deviceIDs=available, must_include_deviceIDs=must, allocation_size=size)])
        resp = self.endpoints[resource].stub.GetPreferredAllocation(req, timeout=5)
        return list(resp.container_responses[0].deviceIDs)

