"""Plugins' background work in the node agent (hami_hal_node_loops): started with the agent, one thread per
function, stopped with it; a failing one ends only its own thread. The NVIDIA plugin's process census is the
user: on a simulated node it runs only where ``procCensusDir`` is set (a test must not write the host's /run)."""

from __future__ import annotations

import logging
import threading
import time

from node_agent_fixtures import NODE

from hami_hal.node.agent import AgentConfig, NodeAgent
from hami_hal.node.kubeapi import KubeNodeApi


def _agent(hal, api, short_tmp, config: dict | None = None) -> NodeAgent:
    inv = hal.discover("sim", node_name=NODE, config=config)
    conf = AgentConfig(node_name=NODE, plugin_dir=short_tmp / "dp", state_root=short_tmp / "state",
                       kubelet_poll=0.05, health_interval=3600, register_interval=3600, cleanup_interval=3600)
    return NodeAgent(hal, KubeNodeApi(host=api.url), conf, inv)


def _published(folder) -> dict[str, str]:
    """The census files (not the publisher's temporary one, which a reader may catch between write and rename)."""
    if not folder.exists():
        return {}
    return {p.name: p.read_text() for p in folder.iterdir() if not p.name.startswith(".")}


def _census_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hami-node-nvidia-")]


def test_hook_hami_hal_node_loops(hal, api, kubelet, short_tmp):
    folder = short_tmp / "census"
    agent = _agent(hal, api, short_tmp, {"procCensusDir": str(folder)})
    agent.start()
    try:
        uuids = {d.uuid for d in agent.inventory.devices if d.vendor == "nvidia"}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and set(_published(folder)) != uuids:
            time.sleep(0.05)
        assert set(_published(folder)) == uuids  # one file per GPU of the simulated node
        first = _published(folder)
        assert all(text.startswith(f"hami-proc-census 1 {name} ") for name, text in first.items())
        time.sleep(0.3)
        assert _published(folder) != first  # refreshed (the sample time moves)
        assert len(_census_threads()) == 1
    finally:
        agent.stop()
    assert not _census_threads()  # stopped with the agent


def test_no_census_on_a_simulated_node_without_the_setting(hal, api, kubelet, short_tmp):
    agent = _agent(hal, api, short_tmp)
    assert hal.node_loops("nvidia", context=agent.inventory.context("nvidia")) == []
    assert agent.start_plugin_loops() == 0


def test_a_failing_plugin_loop_ends_only_its_thread(hal, api, kubelet, short_tmp, monkeypatch, caplog):
    ran = threading.Event()

    def broken(stop: threading.Event) -> None:
        raise RuntimeError("boom")

    def patient(stop: threading.Event) -> None:
        ran.set()
        stop.wait()

    monkeypatch.setattr(hal, "node_loops", lambda vendor, context=None: [broken, patient] if vendor == "nvidia"
                        else [])
    agent = _agent(hal, api, short_tmp)
    with caplog.at_level(logging.ERROR, logger="hami_hal.node"):
        assert agent.start_plugin_loops() == 2
        assert ran.wait(2)
        time.sleep(0.05)
    assert [r.getMessage() for r in caplog.records] == ["plugin nvidia: background work ended: RuntimeError: boom"]
    assert len(_census_threads()) == 1  # the patient one keeps running ...
    agent.stop()
    assert not _census_threads()  # ... until the agent stops


def test_a_plugin_answering_no_function_is_refused_with_one_line(hal, api, kubelet, short_tmp, monkeypatch, caplog):
    from hami_hal.errors import PluginLoadError

    agent = _agent(hal, api, short_tmp)
    monkeypatch.setattr(hal, "_vendor_call", lambda vendor, hook, **kw: [["not a function"]])
    try:
        hal.node_loops("nvidia", context=agent.inventory.context("nvidia"))
    except PluginLoadError as err:
        assert "hami_hal_node_loops returned str" in str(err)
    else:
        raise AssertionError("a non-callable answer was accepted")
    with caplog.at_level(logging.ERROR, logger="hami_hal.node"):
        assert agent.start_plugin_loops() == 0
    assert any("background work not started" in r.getMessage() for r in caplog.records)
