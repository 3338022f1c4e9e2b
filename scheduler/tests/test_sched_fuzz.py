"""Fuzz the extender's three verbs over HTTP: any body gets a JSON answer (never a 500, never a dropped
connection), and no sequence of filters and binds over-commits a device."""

from __future__ import annotations

import http.client
import json
import string

import pytest
from fuzz_profiles import FUZZ, FUZZ_SLOW
from hypothesis import example, given
from hypothesis import strategies as st
from sched_testing import gpu_node, gpu_pod, synced_stack

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)
KEYS = st.sampled_from(["Pod", "pod", "Nodes", "NodeNames", "nodenames", "PodName", "PodNamespace", "PodUID",
                        "Node", "items", "metadata", "name"])
ARGS = st.dictionaries(KEYS, JSONISH, max_size=6)
NAME = st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=8)
QTY = st.one_of(st.integers(-5, 50_000), st.sampled_from(["1e999999", "1e100000", "abc", "1.5", "-1", "2Gi",
                                                          "0", "100", "101", "1e3", "9" * 80]))


@pytest.fixture(scope="module")
def stack():
    with synced_stack(gpu_node("n1", gpus=2, count=4, mem=16384), gpu_node("n2", gpus=1, count=4, mem=16384)) as s:
        yield s


def post(stack, verb: str, body: bytes) -> tuple[int, object]:
    host, port = stack.server.httpd.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", f"/{verb}", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def check_no_overcommit(stack) -> None:
    for name, entry in stack.cluster.nodes.items():
        for st_ in entry.state.devices.values():
            assert st_.used_memory_mib <= st_.part.memory_mib, name
            assert st_.used_slots <= st_.part.max_slots, name


@FUZZ
@given(verb=st.sampled_from(["filter", "prioritize", "bind"]),
       body=st.one_of(ARGS.map(lambda a: json.dumps(a).encode()), st.binary(max_size=200)))
def test_any_body_gets_a_json_answer(stack, verb, body):
    status, out = post(stack, verb, body)
    assert status in (200, 400), (status, out)
    assert isinstance(out, list) or "Error" in out


@FUZZ_SLOW
@given(pods=st.lists(st.tuples(NAME, st.integers(0, 3), QTY, QTY), min_size=1, max_size=3),
       nodes=st.lists(st.sampled_from(["n1", "n2", "ghost", ""]), max_size=3),
       bind_to=st.sampled_from(["n1", "n2", "ghost"]))
# The stack is module-scoped, so examples meet the API's binding log of earlier ones, and a pod name
# comes back (hypothesis favours short names). Explicit examples run first, in this order: "fz-a" is
# bound to n1, then recreated with an out-of-range gpucores (filter and bind both refuse it, one error
# naming the field), then recreated valid but filtered onto no node (bind refuses: no allocation). The
# two recreations once failed by chance in `make test` (`assert None == 'n1'`), because the check below
# read the first example's binding as theirs.
@example(pods=[("a", 1, 100, 10)], nodes=["n1"], bind_to="n1")
@example(pods=[("a", 1, 100, 101)], nodes=["n1"], bind_to="n1")
@example(pods=[("a", 1, 100, 10)], nodes=[], bind_to="n1")
def test_filter_and_bind_never_overcommit(stack, pods, nodes, bind_to):
    made = []
    seen = len(stack.api.bindings)  # bindings before this example belong to earlier ones
    try:
        for name, gpus, mem, cores in pods:
            key = ("default", f"fz-{name}")
            if key in stack.api.pods:
                continue
            pod = gpu_pod(f"fz-{name}", gpus=gpus, mem=None, cores=None)
            pod["spec"]["containers"][0]["resources"]["limits"].update(
                {"nvidia.com/gpumem": mem, "nvidia.com/gpucores": cores})
            made.append(key)
            api_pod = stack.api.add_pod(pod)
            status, out = post(stack, "filter", json.dumps({"Pod": api_pod, "NodeNames": nodes}).encode())
            assert status == 200 and "Error" in out
            status, out = post(stack, "prioritize", json.dumps({"Pod": api_pod, "NodeNames": nodes}).encode())
            assert status == 200 and isinstance(out, list)
            status, out = post(stack, "bind", json.dumps({"PodName": key[1], "PodNamespace": "default",
                                                          "PodUID": f"uid-{key[1]}", "Node": bind_to}).encode())
            assert status == 200 and "Error" in out
            check_no_overcommit(stack)
        for ns, name, node in stack.api.bindings[seen:]:
            pod = stack.api.pods.get((ns, name))
            if (ns, name) in made and pod and stack.extender.parse(pod).has_devices:
                anns = pod["metadata"]["annotations"]  # bound with devices => bound with its allocation
                assert anns.get("hami.io/vgpu-node") == node and anns.get("hami.io/vgpu-devices-allocated")
    finally:
        for key in made:
            stack.api.pods.pop(key, None)
            stack.cluster.remove_pod(f"{key[0]}/{key[1]}")
        for node in stack.api.nodes.values():
            node["metadata"]["annotations"].pop("hami.io/mutex.lock", None)


DEVICE = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.text(max_size=12), JSONISH), "index": JSONISH, "count": st.one_of(st.integers(), JSONISH),
    "devmem": st.one_of(st.integers(), JSONISH), "devcore": st.one_of(st.integers(), JSONISH),
    "type": JSONISH, "numa": JSONISH, "mode": JSONISH, "health": JSONISH})
REGISTER_TEXT = st.one_of(st.lists(DEVICE, max_size=4).map(json.dumps), st.text(max_size=200),
                          st.text(alphabet="GPU-0123456789,:;NVIDIA-tre", max_size=120))


@FUZZ
@given(text=REGISTER_TEXT)
def test_node_register_annotation_decodes_or_one_error(text):
    """Any register annotation gives an inventory or one HalError; never another exception."""
    from hami_scheduler.annotations import parse_node
    from sched_testing import NVIDIA

    from hami_hal.errors import HalError

    node = {"metadata": {"name": "fz", "annotations": {"hami.io/node-nvidia-register": text}}}
    try:
        inv = parse_node(node, [NVIDIA])
    except HalError as exc:
        assert "\n" not in str(exc)
        return
    assert inv.node == "fz"
