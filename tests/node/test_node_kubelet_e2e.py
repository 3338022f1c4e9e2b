"""End to end through real gRPC on unix sockets: register, ListAndWatch, kubelet restart, health, and
the seed pod bound by the extender and allocated by the agent (env equal to `hami allocate`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from node_agent_fixtures import NODE

RESOURCE = "nvidia.com/gpu"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gpu-pod.yaml"


def test_agent_registers_and_lists_replicas(agent, kubelet):
    assert kubelet.wait(lambda k: RESOURCE in k.endpoints and k.endpoints[RESOURCE].devices)
    ep = kubelet.endpoints[RESOURCE]
    assert ep.request.version == "v1beta1" and ep.request.endpoint == "hami-hal-nvidia-com-gpu.sock"
    assert ep.options.get_preferred_allocation_available and not ep.options.pre_start_required
    uuids = sorted(d.uuid for d in agent.inventory.devices)
    assert sorted(ep.devices) == sorted(f"{u}-{i}" for u in uuids for i in range(10))
    assert set(ep.devices.values()) == {"Healthy"}


def test_kubelet_restart_re_registers(agent, kubelet):
    assert kubelet.wait(lambda k: RESOURCE in k.endpoints and k.endpoints[RESOURCE].devices)
    before = len(kubelet.registrations)
    kubelet.restart()  # deletes every socket in the folder, serves a new kubelet.sock
    assert kubelet.wait(lambda k: len(k.registrations) > before and k.endpoints.get(RESOURCE)
                        and len(k.endpoints[RESOURCE].devices) == 20, timeout=10)
    assert (Path(kubelet.folder) / "hami-hal-nvidia-com-gpu.sock").exists()


def test_unhealthy_device_is_pushed(agent, kubelet, monkeypatch):
    from hami_hal.models import HealthStatus

    assert kubelet.wait(lambda k: RESOURCE in k.endpoints and len(k.healthy(RESOURCE)) == 20)
    bad = agent.inventory.devices[1].uuid
    real = agent.hal.health
    monkeypatch.setattr(agent.hal, "health", lambda d: HealthStatus(uuid=d.uuid, healthy=False, reason="XID 79")
                        if d.uuid == bad else real(d))
    assert agent.refresh_health() == [bad]
    assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 10)
    assert all(not i.startswith(bad) for i in kubelet.healthy(RESOURCE))
    node = agent.api.get_node(NODE)["metadata"]["annotations"]
    reg = json.loads(node["hami.io/node-nvidia-register"])
    assert {d["id"]: d.get("health", False) for d in reg}[bad] is False


def _bind_seed_pod(api, pod: dict) -> dict:
    """The scheduler extender filters and binds the pod through the same fake API server."""
    from sched_testing import start_stack

    stack = start_stack(api=api, watch=False)
    try:
        api.add_pod(pod)
        stored = api.pods[("default", pod["metadata"]["name"])]
        out = stack.extender.filter({"Pod": stored, "NodeNames": [NODE]})
        assert out.node_names == [NODE], out
        err = stack.extender.bind({"PodName": pod["metadata"]["name"], "PodNamespace": "default",
                                   "PodUID": stored["metadata"]["uid"], "Node": NODE})
        assert err == ""
    finally:
        stack.server.stop()
    return api.pods[("default", pod["metadata"]["name"])]


def test_seed_pod_allocate_matches_hami_allocate(agent, kubelet, api, capsys, monkeypatch):
    import importlib

    import yaml

    pod = yaml.safe_load(EXAMPLE.read_text())
    assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 20)
    bound = _bind_seed_pod(api, pod)
    anns = bound["metadata"]["annotations"]
    assert anns["hami.io/bind-phase"] == "allocating" and bound["spec"]["nodeName"] == NODE
    # the kubelet asks the plugin which 2 of the 20 IDs it prefers, then allocates them
    ids = kubelet.preferred(RESOURCE, kubelet.healthy(RESOURCE), [], 2)
    want = [s.split(",")[0] for s in anns["hami.io/vgpu-devices-to-allocate"].split(";")[0].split(":") if s]
    assert [i.rsplit("-", 1)[0] for i in ids] == want
    resp = kubelet.allocate(RESOURCE, [ids])
    (ctr,) = resp.container_responses
    env = dict(ctr.envs)
    # what `hami allocate` shows for the same pod on the same simulated node
    cli = importlib.import_module("hami_hal.cli.main")
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    assert cli.main(["allocate", str(EXAMPLE), "--backend", "sim", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)["edits"]["main"]["env"]
    cache = "CUDA_DEVICE_MEMORY_SHARED_CACHE"  # a fresh random file name per container, as in HAMi
    assert re.fullmatch(r"/usr/local/vgpu/[0-9a-f-]{36}\.cache", env.pop(cache)) and dry.pop(cache)
    assert env == dry
    assert env["CUDA_DEVICE_MEMORY_LIMIT_0"] == env["CUDA_DEVICE_MEMORY_LIMIT_1"] == "10240m"
    assert env["CUDA_DEVICE_SM_LIMIT"] == "30" and env["NVIDIA_VISIBLE_DEVICES"] == ",".join(want)
    # the container's state folder (HAMi layout) is what the edits mount at <hook>/vgpu
    uid = bound["metadata"]["uid"]
    folder = agent.state.path(uid, "main")
    assert folder.is_dir()
    mounts = {m.container_path: m for m in ctr.mounts}
    assert mounts["/usr/local/vgpu"].host_path == str(folder) and not mounts["/usr/local/vgpu"].read_only
    assert mounts["/etc/ld.so.preload"].read_only
    assert {d.container_path for d in ctr.devices} >= {"/dev/nvidiactl"}
    after = api.pods[("default", "gpu-pod")]["metadata"]["annotations"]
    assert after["hami.io/bind-phase"] == "success"
    assert after["hami.io/vgpu-devices-to-allocate"] == ";"
    assert after["hami.io/vgpu-devices-allocated"] == anns["hami.io/vgpu-devices-allocated"]
    # the pod goes away: its state folder is cleaned up
    api.delete_pod("default", "gpu-pod")
    assert agent.cleanup() == 1 and not folder.exists()


def test_node_registration_and_handshake(agent, api):
    from hami_hal.hami_compat import decode_handshake, decode_register

    anns = api.nodes[NODE]["metadata"]["annotations"]
    reg = decode_register(anns["hami.io/node-nvidia-register"], "hami.io/node-nvidia-register")
    assert [(d.id, d.count, d.devmem, d.devcore, d.health, d.mode) for d in reg] == [
        (d.uuid, 10, 32768, 100, True, "hami-core") for d in agent.inventory.devices]
    assert reg[0].type == "NVIDIA-Tesla V100-PCIE-32GB"
    assert decode_handshake(anns["hami.io/node-handshake"]).state == "reported"
    assert json.loads(anns["hami-hal.io/node-inventory"])["node"] == NODE
    rv = api.nodes[NODE]["metadata"]["resourceVersion"]
    assert agent.publish_node() and api.nodes[NODE]["metadata"]["resourceVersion"] == rv  # nothing changed
    # the scheduler asks (HAMi's handshake): the agent answers on its next refresh
    agent.api.patch_node_annotations(NODE, {"hami.io/node-handshake": "Requesting_2026-12-04 10:00:00"})
    assert agent.publish_node()
    assert decode_handshake(api.nodes[NODE]["metadata"]["annotations"]["hami.io/node-handshake"]).state == "reported"


def test_scheduler_reads_the_node_the_agent_registered(agent, api):
    from hami_hal.hami_compat import parse_node

    inv = parse_node(api.nodes[NODE], agent.hal.vendors())
    assert sorted(d.uuid for d in inv.devices) == sorted(d.uuid for d in agent.inventory.devices)
    assert inv.source == "simulated"


def test_own_socket_deleted_serves_again(agent, kubelet):
    assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 20)
    before = len(kubelet.registrations)
    (Path(kubelet.folder) / "hami-hal-nvidia-com-gpu.sock").unlink()
    assert kubelet.wait(lambda k: len(k.registrations) > before, timeout=10)
    assert (Path(kubelet.folder) / "hami-hal-nvidia-com-gpu.sock").exists()


def test_faulty_devices_are_listed_unhealthy(hal, api, kubelet, short_tmp):
    from node_agent_fixtures import make_agent

    agent = make_agent(hal, api, short_tmp, sim_node="nvidia-4xt4-faulty")
    agent.start()
    try:
        # 3 T4 x 10 replicas + the lost GPU (whole, memory unreadable) x 1
        assert kubelet.wait(lambda k: RESOURCE in k.endpoints and len(k.endpoints[RESOURCE].devices) == 31)
        healthy = {i.rsplit("-", 1)[0] for i in kubelet.healthy(RESOURCE)}
        assert healthy == {agent.inventory.devices[0].uuid}  # 1: XID 79, 2: ECC, 3: lost
        # the node stays readable by a HAMi scheduler: the lost GPU is not in the register annotation
        from hami_hal.hami_compat import decode_register

        reg = decode_register(api.nodes[NODE]["metadata"]["annotations"]["hami.io/node-nvidia-register"])
        assert [(d.index, d.health) for d in reg] == [(0, True), (1, False), (2, False)]
    finally:
        agent.stop()


def test_kubelet_started_after_the_agent(hal, api, short_tmp):
    from node_agent_fixtures import make_agent

    from hami_hal.node.fake_kubelet import FakeKubelet

    agent = make_agent(hal, api, short_tmp)
    agent.start()  # no kubelet yet: serves, logs one line, does not block
    kubelet = FakeKubelet(short_tmp / "dp").start()
    try:
        assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 20, timeout=10)
    finally:
        kubelet.stop()
        agent.stop()


def test_a_failing_health_hook_marks_the_device_not_the_agent(agent, kubelet, monkeypatch):
    assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 20)
    bad = agent.inventory.devices[0].uuid

    def health(d):
        if d.uuid == bad:
            raise RuntimeError("NVML_ERROR_UNKNOWN")
        return None

    monkeypatch.setattr(agent.hal, "health", health)
    assert agent.refresh_health() == [bad]
    assert agent.inventory.devices[0].health_reason == "health hook failed: RuntimeError"
    assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 10)
