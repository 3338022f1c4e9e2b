"""--device-list-strategy cdi: Allocate writes a CDI spec and answers its fully-qualified name only."""

from __future__ import annotations

import json

from node_agent_fixtures import bound_pod, make_agent

RESOURCE = "nvidia.com/gpu"


def test_cdi_strategy_writes_spec_and_answers_its_name(hal, api, kubelet, short_tmp):
    agent = make_agent(hal, api, short_tmp, cdi_dir=short_tmp / "cdi")
    agent.start()
    try:
        assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 20)
        uuid = agent.inventory.devices[0].uuid
        bound_pod(api, "c", f"{uuid},NVIDIA,4096,30:;")
        (resp,) = kubelet.allocate(RESOURCE, [kubelet.healthy(RESOURCE)[:1]]).container_responses
        assert [d.name for d in resp.cdi_devices] == ["hami-hal.io/nvidia=0000-c_main"]
        assert not resp.envs and not resp.mounts
        (spec_file,) = (short_tmp / "cdi").glob("*.json")
        spec = json.loads(spec_file.read_text())
        assert spec["kind"] == "hami-hal.io/nvidia" and spec["devices"][0]["name"] == "0000-c_main"
        env = dict(e.split("=", 1) for e in spec["devices"][0]["containerEdits"]["env"])
        assert env["CUDA_DEVICE_MEMORY_LIMIT_0"] == "4096m" and env["NVIDIA_VISIBLE_DEVICES"] == uuid
        mounts = {m["containerPath"]: m["hostPath"] for m in spec["devices"][0]["containerEdits"]["mounts"]}
        assert mounts["/usr/local/vgpu"] == str(agent.state.path("0000-c", "main"))
        api.delete_pod("default", "c")
        assert agent.cleanup() == 1 and not list((short_tmp / "cdi").glob("*.json"))
    finally:
        agent.stop()
