"""The committed v1beta1 stubs are what grpcio-tools makes from the proto, and the proto is the kubelet's."""

from __future__ import annotations

import pytest

pytest.importorskip("grpc_tools")

from hami_hal.node.deviceplugin import generate  # noqa: E402
from hami_hal.node.deviceplugin.v1beta1 import api_pb2  # noqa: E402


def test_generated_stubs_are_current(capsys):
    assert generate.main(["--check"]) == 0, capsys.readouterr().out


def test_services_have_the_kubelet_method_paths():
    services = {s.full_name: [m.name for m in s.methods] for s in api_pb2.DESCRIPTOR.services_by_name.values()}
    assert services == {
        "v1beta1.Registration": ["Register"],
        "v1beta1.DevicePlugin": ["GetDevicePluginOptions", "ListAndWatch", "GetPreferredAllocation", "Allocate",
                                 "PreStartContainer"],
    }
    assert api_pb2.DESCRIPTOR.package == "v1beta1"
    lw = api_pb2.DESCRIPTOR.services_by_name["DevicePlugin"].methods_by_name["ListAndWatch"]
    assert lw.server_streaming and not lw.client_streaming


@pytest.mark.parametrize(("message", "fields"), [
    ("RegisterRequest", {"version": 1, "endpoint": 2, "resource_name": 3, "options": 4}),
    ("Device", {"ID": 1, "health": 2, "topology": 3}),
    ("ContainerPreferredAllocationRequest", {"available_deviceIDs": 1, "must_include_deviceIDs": 2,
                                             "allocation_size": 3}),
    ("ContainerAllocateResponse", {"envs": 1, "mounts": 2, "devices": 3, "annotations": 4, "cdi_devices": 5}),
    ("Mount", {"container_path": 1, "host_path": 2, "read_only": 3}),
    ("DeviceSpec", {"container_path": 1, "host_path": 2, "permissions": 3}),
])
def test_field_numbers_match_the_kubelet(message, fields):
    desc = api_pb2.DESCRIPTOR.message_types_by_name[message]
    assert {f.name: f.number for f in desc.fields} == fields
