"""Bind accepts a replayed allocation only if it is exactly what the pod's request gets on those devices.

Whoever may edit a pod may write its allocation annotations, and a client trusted to call /bind directly (or a stale
second scheduler) may bind it without this scheduler's Filter. On main (2ac8d8e) Bind's replay compared the
allocation with the request by device family only: a pod asking for 1 GPU bound with a copied allocation naming 2, or
8192 MiB where it asks 4096, or a device cordoned since its Filter. Now the engine's own fit of the request, held to
the recorded devices, must give the same slices (hami_hal.engine.replay.check_replay), else one bounded line naming
the field and the value; the bind is undone as every refused bind is (no Binding, no reservation, the allocation
annotations cleared, the node lock released), as hardening4's refused-pod path does.
"""

from __future__ import annotations

import itertools

import pytest
from fuzz_profiles import FUZZ
from hami_scheduler.extender import MAX_REFUSAL_REASON
from hypothesis import given
from hypothesis import strategies as st
from sched_fakeapi import FakeApiServer
from sched_testing import gpu_node, gpu_pod, start_stack

ALLOC = "hami.io/vgpu-devices-allocated"
TO_ALLOC = "hami.io/vgpu-devices-to-allocate"
NODE = "hami.io/vgpu-node"
CORDON = "hami.io/device-cordon"
LOCK = "hami.io/mutex.lock"


@pytest.fixture
def stack():
    api = FakeApiServer().start()
    for n in ("node1", "node2"):
        api.add_node(gpu_node(n, gpus=2))
    s = start_stack(api, watch=False)
    yield s
    s.stop()


def _bind(stack, name: str, node: str = "node1") -> str:
    return stack.extender.bind({"PodName": name, "PodNamespace": "default", "PodUID": f"uid-{name}", "Node": node})


def _placed(stack, pod: dict, node: str = "node1") -> dict[str, str]:
    """Filter ``pod`` onto ``node`` and return the HAMi annotations it wrote; its reservation is then dropped (as a
    stale or second scheduler would never have held it)."""
    pod = stack.api.add_pod(pod)
    assert stack.extender.filter({"Pod": pod, "NodeNames": [node]}).node_names == [node]
    name = pod["metadata"]["name"]
    stack.cluster.remove_pod(f"default/{name}")
    anns = stack.api.pods[("default", name)]["metadata"]["annotations"]
    return {k: v for k, v in anns.items() if k.startswith(("hami.io/", "nvidia.com/"))}


def _copy_onto(stack, name: str, written: dict[str, str], **limits) -> None:
    """A pod asking for 1 GPU of 4096 MiB / 25 % that carries ``written`` (it may edit its own annotations)."""
    stack.api.add_pod(gpu_pod(name, **limits))
    with stack.api.cond:
        stack.api.pods[("default", name)]["metadata"]["annotations"].update(written)


def _refused(stack, name: str, err: str, *words: str) -> None:
    """One bounded line naming the field and the value; nothing bound, reserved, annotated or locked."""
    assert err.startswith(f"bind default/{name} to node1: "), err
    assert "\n" not in err and len(err) <= MAX_REFUSAL_REASON + 60, err
    for w in words:
        assert w in err, (w, err)
    pod = stack.api.pods[("default", name)]
    assert not pod["spec"].get("nodeName") and not stack.api.bindings
    assert f"default/{name}" not in stack.cluster.pods
    anns = pod["metadata"]["annotations"]
    assert ALLOC not in anns and TO_ALLOC not in anns and NODE not in anns
    assert LOCK not in stack.api.nodes["node1"]["metadata"]["annotations"]


def test_a_copied_allocation_with_more_devices_than_requested_is_refused(stack):
    written = _placed(stack, gpu_pod("two", gpus=2))
    assert written[ALLOC].count(",NVIDIA,") == 2
    _copy_onto(stack, "one", written)
    _refused(stack, "one", _bind(stack, "one"), "allocation container 'main' NVIDIA", "'2 devices'",
             "requests 1")


def test_a_copied_allocation_with_more_memory_per_device_is_refused(stack):
    written = _placed(stack, gpu_pod("big", mem=8192))
    _copy_onto(stack, "small", written)
    _refused(stack, "small", _bind(stack, "small"), "memory of GPU-node1-", "8192", "the request gets 4096 MiB")


def test_a_copied_allocation_with_more_cores_per_device_is_refused(stack):
    written = _placed(stack, gpu_pod("fast", cores=60))
    _copy_onto(stack, "slow", written)
    _refused(stack, "slow", _bind(stack, "slow"), "cores of GPU-node1-", "60", "the request gets 25 %")


def test_an_allocation_naming_a_device_of_another_node_is_refused(stack):
    """Main refused this one already (the annotation codec reads the devices of the bind's node)."""
    written = _placed(stack, gpu_pod("there"), node="node2")
    _copy_onto(stack, "here", {**written, NODE: "node1"})
    _refused(stack, "here", _bind(stack, "here"), "GPU-node2-", "is not a device of node node1")


def test_a_bound_pod_whose_allocation_names_another_nodes_device_does_not_block_the_node(stack):
    """A pod created with ``spec.nodeName: node1`` (no scheduler involved) that carries a copy of a node2 pod's
    allocation: on main its replay raised inside every other pod's bind to node1, so nothing could bind there. It
    holds no device of node1 and is not replayed, as the cache does not count it either."""
    written = _placed(stack, gpu_pod("there"), node="node2")
    squatter = gpu_pod("squatter")
    squatter["spec"]["nodeName"] = "node1"
    squatter["metadata"]["annotations"].update({**written, NODE: "node1", "hami.io/bind-phase": "success"})
    stack.api.add_pod(squatter)
    good = stack.api.add_pod(gpu_pod("good"))
    assert stack.extender.filter({"Pod": good, "NodeNames": ["node1"]}).node_names == ["node1"]
    assert _bind(stack, "good") == ""
    assert ("default", "good", "node1") in stack.api.bindings


def _cordon(stack, uuid: str) -> None:
    with stack.api.cond:
        node = stack.api.nodes["node1"]
        node["metadata"]["annotations"][CORDON] = uuid
    stack.cluster.upsert_node(node)


def test_an_allocation_of_a_device_cordoned_since_its_filter_is_refused(stack):
    pod = stack.api.add_pod(gpu_pod("late"))
    assert stack.extender.filter({"Pod": pod, "NodeNames": ["node1"]}).node_names == ["node1"]
    uuid = stack.api.pods[("default", "late")]["metadata"]["annotations"][ALLOC].split(",")[0]
    _cordon(stack, uuid)
    _refused(stack, "late", _bind(stack, "late"), uuid, "is cordoned on node node1")


def test_a_correct_replay_still_binds(stack):
    for name, gpus in (("one", 1), ("two", 2)):
        pod = stack.api.add_pod(gpu_pod(name, gpus=gpus))
        assert stack.extender.filter({"Pod": pod, "NodeNames": ["node1"]}).node_names == ["node1"]
        assert _bind(stack, name) == ""
    assert stack.api.bindings == [("default", "one", "node1"), ("default", "two", "node1")]


def test_a_correct_replay_of_an_init_and_an_app_container_binds(stack):
    pod = gpu_pod("both", gpus=1)
    pod["spec"]["initContainers"] = [{"name": "setup", "image": "cuda", "resources": {"limits": {
        "nvidia.com/gpu": 1, "nvidia.com/gpumem": 2048, "nvidia.com/gpucores": 10}}}]
    pod = stack.api.add_pod(pod)
    assert stack.extender.filter({"Pod": pod, "NodeNames": ["node1"]}).node_names == ["node1"]
    assert _bind(stack, "both") == "" and stack.api.bindings == [("default", "both", "node1")]


# -- any mutation of a valid allocation is refused, or is itself exactly valid -------------------------------------

DEVICES = ["GPU-node1-0", "GPU-node1-1", "GPU-node2-0", "GPU-none"]
ENTRY = st.tuples(st.sampled_from(DEVICES), st.sampled_from(["NVIDIA", "", "Ascend"]),
                  st.sampled_from([0, 1024, 2048, 4096, 8192, 40960]), st.sampled_from([0, 10, 25, 50, 100]))
MUTATION = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 3)),
    st.tuples(st.just("dup"), st.integers(0, 3)),
    st.tuples(st.just("add"), ENTRY),
    st.tuples(st.just("uuid"), st.integers(0, 3), st.sampled_from(DEVICES)),
    st.tuples(st.just("type"), st.integers(0, 3), st.sampled_from(["NVIDIA", "", "Ascend"])),
    st.tuples(st.just("mem"), st.integers(0, 3), st.sampled_from([0, 1024, 2048, 4096, 8192, 40960])),
    st.tuples(st.just("cores"), st.integers(0, 3), st.sampled_from([0, 10, 25, 50, 100])),
)


def _mutate(entries: list[list], m: tuple) -> None:
    op, *args = m
    if op == "add":
        entries.append(list(args[0]))
        return
    if not entries:
        return
    i = args[0] % len(entries)
    if op == "drop":
        entries.pop(i)
    elif op == "dup":
        entries.append(list(entries[i]))
    else:
        entries[i][{"uuid": 0, "type": 1, "mem": 2, "cores": 3}[op]] = args[1]


def _exactly_valid(entries: list[list], gpus: int, mem: int, cores: int) -> bool:
    """The request's own terms, written out without the engine: ``gpus`` distinct devices of node1 (nothing on it
    is cordoned or used), each NVIDIA with the pod's memory and cores."""
    uuids = [e[0] for e in entries]
    return (len(entries) == gpus and len(set(uuids)) == gpus and set(uuids) <= set(DEVICES[:2])
            and all(e[1:] == ["NVIDIA", mem, cores] for e in entries))


_names = itertools.count()


@FUZZ
@given(gpus=st.integers(1, 2), mem=st.sampled_from([1024, 4096]), cores=st.sampled_from([10, 25]),
       mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_any_mutation_of_a_valid_allocation_is_refused_or_is_itself_exactly_valid(stack, gpus, mem, cores,
                                                                                  mutations):
    name = f"p{next(_names)}"
    written = _placed(stack, gpu_pod(name, gpus=gpus, mem=mem, cores=cores))
    entries = [e.split(",") for e in written[ALLOC].rstrip(";").split(":") if e]
    entries = [[u, t, int(m), int(c)] for u, t, m, c in entries]
    for m in mutations:
        _mutate(entries, m)
    value = "".join(f"{u},{t},{m},{c}:" for u, t, m, c in entries) + ";"
    with stack.api.cond:
        stack.api.pods[("default", name)]["metadata"]["annotations"].update({ALLOC: value, TO_ALLOC: value})
    err = _bind(stack, name)
    try:
        if _exactly_valid(entries, gpus, mem, cores):
            assert err == "" and stack.api.bindings == [("default", name, "node1")], (value, err)
        else:
            _refused(stack, name, err)
    finally:
        stack.api.bindings.clear()
        stack.api.delete_pod("default", name)
        stack.cluster.remove_pod(f"default/{name}")
