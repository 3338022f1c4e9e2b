"""Registering plugin servers with the kubelet, and noticing when the kubelet restarts.

A new kubelet deletes every socket in the device-plugin folder and re-creates ``kubelet.sock``
(kubernetes-contracts.md §2.5). :class:`KubeletWatch` polls both: a new ``kubelet.sock`` inode, or our
own socket gone, means "serve again and re-register".
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc

from .deviceplugin.v1beta1 import api_pb2, api_pb2_grpc

VERSION = "v1beta1"


class RegistrationError(RuntimeError):
    pass


def register(kubelet_socket: Path, endpoint: str, resource_name: str, options: api_pb2.DevicePluginOptions,
             timeout: float = 5.0) -> None:
    """``Registration/Register`` on the kubelet's socket with the server's ``options`` (the same the server's
    ``GetDevicePluginOptions`` answers); raises RegistrationError with one line."""
    target = f"unix://{kubelet_socket}"
    with grpc.insecure_channel(target) as channel:
        try:
            api_pb2_grpc.RegistrationStub(channel).Register(
                api_pb2.RegisterRequest(version=VERSION, endpoint=endpoint, resource_name=resource_name,
                                        options=options),
                timeout=timeout, wait_for_ready=True)
        except grpc.RpcError as err:
            if err.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                raise RegistrationError(f"kubelet not reachable at {kubelet_socket} within {timeout:g}s") from None
            raise RegistrationError(f"kubelet refused {resource_name}: {err.code().name} {err.details()}") from None


class KubeletWatch:
    """Remembers which kubelet we registered with (the inode of its socket)."""

    def __init__(self, kubelet_socket: Path) -> None:
        self.socket = Path(kubelet_socket)
        self.inode: int | None = None

    def current(self) -> int | None:
        try:
            return os.stat(self.socket).st_ino
        except FileNotFoundError:
            return None

    def changed(self) -> bool:
        """True when a kubelet socket exists that is not the one we last registered with."""
        now = self.current()
        return now is not None and now != self.inode

    def mark(self) -> None:
        self.inode = self.current()
