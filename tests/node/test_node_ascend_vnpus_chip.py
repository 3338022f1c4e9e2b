"""An Ascend chip only HAMi's ``vnpus`` section knows, end to end on the simulated hardware: discovered from the
fake npu-smi, advertised to the (fake) kubelet under its configured resource names, a pod's ``-memory`` rounded by
the scheduler to the node's configured template (also for a built-in chip whose section adds a smaller template
the built-in table lacks), and allocated through the kubelet: the vNPU of that template is created."""

from __future__ import annotations

import json

import pytest
from node_agent_fixtures import NODE

from hami_hal.manager import Hal
from hami_hal.node.agent import AgentConfig, NodeAgent
from hami_hal.node.kubeapi import KubeNodeApi

pytest.importorskip("hami_plugins_ascend.plugin", exc_type=ImportError)

X9 = "huawei.com/Ascend910X9"
B3 = "huawei.com/Ascend910B3"
#: A chip HAMi's table lacks (figures for the test, not a Huawei datasheet): 64 GB, 24 AI cores.
X9_TEMPLATES = [{"name": "vir06_1c_15g", "memory": 15360, "aiCore": 6, "aiCPU": 1},
                {"name": "vir12_3c_30g", "memory": 30720, "aiCore": 12, "aiCPU": 3}]
#: A 910B3 whose firmware (the test profile) also offers an 8 GB vNPU the built-in table lacks.
B3_TEMPLATES = [{"name": "vir03_1c_8g", "memory": 8192, "aiCore": 3, "aiCPU": 1},
                {"name": "vir05_1c_16g", "memory": 16384, "aiCore": 5, "aiCPU": 1},
                {"name": "vir10_3c_32g", "memory": 32768, "aiCore": 10, "aiCPU": 3}]
VNPUS = {"hamiVnpuCore": False, "configs": [
    {"chipName": "910X9", "commonWord": "Ascend910X9", "resourceName": X9, "resourceMemoryName": f"{X9}-memory",
     "resourceCoreName": f"{X9}-core", "memoryAllocatable": 61440, "memoryCapacity": 65536, "aiCore": 24, "aiCPU": 6,
     "templates": X9_TEMPLATES},
    {"chipName": "910B3", "commonWord": "Ascend910B3", "memoryAllocatable": 65536, "memoryCapacity": 65536,
     "aiCore": 20, "aiCPU": 7, "templates": B3_TEMPLATES},
]}


def _profile(name: str, model: str, cores: int, templates: list[dict], what: str) -> str:
    """A one-chip device profile whose firmware (the fake npu-smi) offers ``templates``."""
    return (f"apiVersion: hami-hal.io/v1alpha1\nkind: DeviceProfile\nmetadata: {{name: {name}, description: \"{what}\"}}\n"
            f"spec: {{vendor: ascend, model: \"{model}\", memory_mib: 65536, compute_units: {cores}, vendor_data: "
            f"{{chips_per_npu: 1, templates: {json.dumps(templates)}}}}}\n---\n")


PROFILES = (_profile("test-910x9", "910X9", 24, X9_TEMPLATES, "a chip outside HAMi's table (test)")
            + _profile("test-910b3-8g", "910B3", 20, B3_TEMPLATES, "a 910B3 whose firmware also offers 8 GB (test)")
            + """\
apiVersion: hami-hal.io/v1alpha1
kind: NodeProfile
metadata: {name: test-x9-node, description: "two vnpus-only chips beside two 910B3 (test)"}
spec:
  driver_version: "24.1.rc3"
  devices:
    - {profile: test-910x9, count: 2}
    - {profile: test-910b3-8g, count: 2}
""")


def _hal(tmp) -> Hal:
    prof = tmp / "profiles.yaml"
    prof.write_text(PROFILES)
    hal = Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"])
    hal.add_profiles([prof])
    return hal


def _pod(name: str, limits: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "annotations": {}},
            "spec": {"containers": [{"name": "main", "image": "npu", "resources": {"limits": limits}}]}}


@pytest.fixture
def stack(api, kubelet, short_tmp):
    """The node agent over the simulated node with the vnpus section, and a scheduler that knows only the
    built-in chips (it loads the plugin without any node's settings, as the extender does)."""
    from hami_scheduler.capability import CapabilityGate
    from hami_scheduler.extender import Extender
    from hami_scheduler.kube import Kube, api_client, sync
    from hami_scheduler.state import ClusterState

    hal = _hal(short_tmp)
    inv = hal.discover("sim", sim_node="test-x9-node", node_name=NODE, vendor_configs={"ascend": {"vnpus": VNPUS}})
    conf = AgentConfig(node_name=NODE, plugin_dir=short_tmp / "dp", state_root=short_tmp / "state", kubelet_poll=0.05,
                       health_interval=3600, register_interval=3600, cleanup_interval=3600)
    agent = NodeAgent(hal, KubeNodeApi(host=api.url), conf, inv)
    agent.start()
    sched = Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"])
    cluster = ClusterState(sched.vendors())
    assert X9 not in {f.count for v in cluster.vendors for f in v.resources}
    kube = Kube(api_client(api.url))
    sync(kube, cluster)
    ext = Extender(cluster, kube, CapabilityGate(None), admit=sched.admit_request, pod_annotator=sched.pod_annotations)
    yield agent, ext
    agent.stop()


def _schedule(api, ext, pod: dict) -> dict:
    api.add_pod(pod)
    name = pod["metadata"]["name"]
    stored = api.pods[("default", name)]
    out = ext.filter({"Pod": stored, "NodeNames": [NODE]})
    assert out.node_names == [NODE], out
    assert ext.bind({"PodName": name, "PodNamespace": "default", "PodUID": stored["metadata"]["uid"],
                     "Node": NODE}) == ""
    return api.pods[("default", name)]["metadata"]["annotations"]


def test_a_vnpus_only_chip_is_discovered_advertised_rounded_and_allocated(stack, api, kubelet):
    agent, ext = stack
    x9 = [d for d in agent.inventory.devices if d.model == "910X9"]
    assert [d.family for d in x9] == ["Ascend910X9"] * 2 and x9[0].attributes["templates"] == ["vir06_1c_15g",
                                                                                               "vir12_3c_30g"]
    # the kubelet: its own resource, 4 vNPU slots per chip (61440 // 15360)
    assert kubelet.wait(lambda k: X9 in k.endpoints and len(k.healthy(X9)) == 8), kubelet.endpoints.keys()
    assert kubelet.endpoints[X9].request.endpoint == "hami-hal-huawei-com-ascend910x9.sock"
    node = api.nodes[NODE]["metadata"]["annotations"]
    assert len(json.loads(node["hami.io/node-register-Ascend910X9"])) == 2
    # the scheduler learns the family from the node's inventory and rounds 10000 MiB up to the node's 15 GB template
    anns = _schedule(api, ext, _pod("x9", {X9: "1", f"{X9}-memory": "10000"}))
    (entry,) = [e for e in anns["hami.io/Ascend910X9-devices-to-allocate"].split(";")[0].split(":") if e]
    uuid, word, mem, _ = entry.split(",")
    assert (word, mem) == ("Ascend910X9", "15360") and uuid in {d.uuid for d in x9}
    (info,) = json.loads(anns[X9])
    assert (info["temp"], info["core"], info["memory"]) == ("vir06_1c_15g", 6, 15360)
    # the kubelet allocates one of that chip's IDs: the agent creates the vNPU of that template
    ids = [i for i in kubelet.healthy(X9) if i.rsplit("-", 1)[0] == uuid][:1]
    (ctr,) = kubelet.allocate(X9, [ids]).container_responses
    dev = next(d for d in x9 if d.uuid == uuid)
    assert dict(ctr.envs) == {"ASCEND_VISIBLE_DEVICES": str(dev.attributes["phy_id"]), "ASCEND_VNPU_SPECS":
                              "vir06_1c_15g"}
    from hami_plugins_ascend.ports import fake_for

    fake = fake_for(agent.inventory.context("ascend").sim)
    assert [v.template for v in fake.vnpus[dev.index]] == ["vir06_1c_15g"]
    assert api.pods[("default", "x9")]["metadata"]["annotations"]["hami.io/bind-phase"] == "success"


def test_a_built_in_chip_is_rounded_to_the_nodes_templates_not_the_built_in_ones(stack, api, kubelet):
    agent, ext = stack
    assert kubelet.wait(lambda k: B3 in k.endpoints and len(k.healthy(B3)) == 16)  # 65536 // 8192 = 8 per chip
    # the built-in table rounds 6000 MiB to vir05_1c_16g; the node has vir03_1c_8g
    anns = _schedule(api, ext, _pod("b3", {B3: "1", f"{B3}-memory": "6000"}))
    (entry,) = [e for e in anns["hami.io/Ascend910B3-devices-to-allocate"].split(";")[0].split(":") if e]
    uuid, _, mem, _ = entry.split(",")
    assert mem == "8192"
    assert json.loads(anns[B3])[0]["temp"] == "vir03_1c_8g"
    ids = [i for i in kubelet.healthy(B3) if i.rsplit("-", 1)[0] == uuid][:1]
    (ctr,) = kubelet.allocate(B3, [ids]).container_responses
    assert dict(ctr.envs)["ASCEND_VNPU_SPECS"] == "vir03_1c_8g"
