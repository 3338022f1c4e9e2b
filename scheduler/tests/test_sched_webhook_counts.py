"""The webhook writes a count the vendor's admission raised into the pod (HAMi's ascend ``MutateAdmission``), and
only that: one ``replace`` per field naming the family's count, bounded, applied with a strict RFC 6902 applier."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from hami_scheduler.webhook import Mutator, webhook_config
from json_patch import apply_patch

from hami_hal.errors import HalError
from hami_hal.manager import Hal
from hami_hal.models import ResourceRequest
from hami_hal.requests import parser

pytest.importorskip("hami_plugins_ascend.plugin", exc_type=ImportError)

C = "huawei.com/Ascend910C"


@pytest.fixture(scope="module")
def hal() -> Hal:
    return Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"])


def _review(m: Mutator, spec: dict, annotations: dict | None = None) -> tuple[dict, list[dict]]:
    pod = {"metadata": {"name": "p", "annotations": annotations or {}}, "spec": spec}
    resp = m.review({"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE", "object": pod})
    ops = json.loads(base64.b64decode(resp["patch"])) if resp.get("patch") else []
    return resp, ops


def _ctr(name: str, limits: dict, requests: dict | None = None) -> dict:
    res = {"limits": limits, **({"requests": requests} if requests is not None else {})}
    return {"name": name, "image": "npu", "resources": res}


def test_a_910c_count_of_one_becomes_a_pair_in_limit_and_request_and_nothing_else_changes(hal):
    spec = {"initContainers": [_ctr("init", {C: "1"})],
            "containers": [_ctr("main", {C: "1", "cpu": "2"}, {C: "1", "cpu": "1"}), _ctr("side", {C: "4"})]}
    resp, ops = _review(Mutator(hal.vendors(), admit=hal.admit_request), spec)
    assert resp["allowed"]
    counts = [o for o in ops if o["path"] != "/spec/schedulerName"]
    assert counts == [
        {"op": "replace", "path": "/spec/initContainers/0/resources/limits/huawei.com~1Ascend910C", "value": "2"},
        {"op": "replace", "path": "/spec/containers/0/resources/limits/huawei.com~1Ascend910C", "value": "2"},
        {"op": "replace", "path": "/spec/containers/0/resources/requests/huawei.com~1Ascend910C", "value": "2"}]
    out = apply_patch({"spec": spec}, ops)["spec"]
    assert out["containers"][0]["resources"] == {"limits": {C: "2", "cpu": "2"}, "requests": {C: "2", "cpu": "1"}}
    assert out["containers"][1]["resources"] == {"limits": {C: "4"}}


@pytest.mark.parametrize("limits, annotations", [
    ({C: "1", f"{C}-memory": "16384"}, {}),  # a vNPU: the node's templates decide (one card's)
    ({C: "1"}, {"huawei.com/vnpu-mode": "hami-core"}),  # a single-die soft share stays 1
    ({C: "2"}, {}),
    ({"huawei.com/Ascend910B3": "1"}, {}),  # no superPod
])
def test_counts_the_admission_keeps_are_not_patched(hal, limits, annotations):
    resp, ops = _review(Mutator(hal.vendors(), admit=hal.admit_request), {"containers": [_ctr("main", limits)]},
                        annotations)
    assert resp["allowed"], resp
    assert [o["path"] for o in ops] == ["/spec/schedulerName"]


def test_an_odd_910c_count_is_denied_with_the_admissions_line(hal):
    resp, ops = _review(Mutator(hal.vendors(), admit=hal.admit_request), {"containers": [_ctr("main", {C: "3"})]})
    assert resp["allowed"] is False and "patch" not in resp
    msg = resp["status"]["message"]
    assert msg.startswith(f"{C}: 3 must be 1 or even on a superPod chip") and "\n" not in msg


@pytest.mark.parametrize("scheduler, raised", [("hami-scheduler", True), ("default-scheduler", True), ("", True),
                                               ("volcano", False)])
def test_only_a_pod_this_scheduler_places_gets_its_admission(hal, scheduler, raised):
    spec = {"containers": [_ctr("main", {C: "1"})], **({"schedulerName": scheduler} if scheduler else {})}
    resp, ops = _review(Mutator(hal.vendors(), admit=hal.admit_request), spec)
    assert resp["allowed"]
    assert any(o["op"] == "replace" for o in ops) is raised
    odd = {**spec, "containers": [_ctr("main", {C: "3"})]}
    assert _review(Mutator(hal.vendors(), admit=hal.admit_request), odd)[0]["allowed"] is not raised


def test_without_the_plugins_admission_the_count_is_left_to_the_scheduler(hal):
    resp, ops = _review(Mutator(hal.vendors()), {"containers": [_ctr("main", {C: "1"})]})
    assert resp["allowed"] and [o["path"] for o in ops] == ["/spec/schedulerName"]


@pytest.mark.parametrize("to", [1, 3, 1 << 20])
def test_a_count_an_admission_lowers_or_raises_past_double_is_denied_not_written(hal, to):
    def bad(req: ResourceRequest, anns: dict) -> ResourceRequest:
        return req.model_copy(update={"count": to})

    resp, _ = _review(Mutator(hal.vendors(), admit=bad), {"containers": [_ctr("main", {C: "2" if to == 1 else "1"})]})
    assert resp["allowed"] is False and "patch" not in resp
    msg = resp["status"]["message"]
    assert f"was changed to {to} by the ascend plugin's admission" in msg and C in msg and "\n" not in msg


@pytest.mark.parametrize("with_config", [False, True], ids=["no-device-config", "device-config"])
def test_the_webhook_command_wires_the_installed_plugins_admission(tmp_path, with_config):
    conf = tmp_path / "device-config.yaml"
    conf.write_text("nvidia:\n  overwriteEnv: false\n")
    cfg = webhook_config(None, str(conf) if with_config else None)
    assert cfg.admit is not None
    resp, ops = _review(Mutator(cfg.vendors, admit=cfg.admit), {"containers": [_ctr("main", {C: "1"})]})
    assert {"op": "replace", "path": "/spec/containers/0/resources/limits/huawei.com~1Ascend910C",
            "value": "2"} in ops


@pytest.fixture
def parses(monkeypatch) -> list[int]:
    """A spy on the request parser: one entry per parse of a pod, whichever public function started it."""
    calls: list[int] = []
    real = parser._mapping

    def counting(value, where: str):
        if where == "metadata":  # the parse's first step, before anything it can refuse but the kind
            calls.append(1)
        return real(value, where)

    monkeypatch.setattr(parser, "_mapping", counting)
    return calls


@pytest.mark.parametrize("admitting", [True, False], ids=["installed-plugins", "vendors-data"])
def test_a_managed_pod_is_parsed_once(hal, parses, admitting):
    m = Mutator(hal.vendors(), admit=hal.admit_request if admitting else None)
    resp, ops = _review(m, {"containers": [_ctr("main", {C: "1"})]})
    assert resp["allowed"] and len(parses) == 1
    assert any(o["op"] == "replace" for o in ops) is admitting  # the one parse still feeds the admission


def _old_answer(hal, spec: dict, annotations: dict) -> str:
    """The denial the webhook gave when it parsed twice: the plain parse's error first, then the admitted one's."""
    doc = {"metadata": {"name": "p", "namespace": "default", "annotations": annotations}, "spec": spec}
    for admit in (None, hal.admit_request):
        try:
            parser.parse_pod_detailed(doc, hal.vendors(), admit)
        except HalError as exc:
            return str(exc).splitlines()[0]
    raise AssertionError("the pod parses")


@pytest.mark.parametrize("containers, annotations", [
    ([_ctr("main", {C: "3"})], {}),  # the admission refuses
    ([_ctr("a", {C: "3"}), _ctr("b", {C: "1", f"{C}-memory": "lots"})], {}),  # a parse error after a refusal
    ([_ctr("a", {C: "1"}), _ctr("b", {C: "5"})], {}),  # the second request refused, the first raised
    ([_ctr("main", {C: "1"})], {"hami.io/node-scheduler-policy": "nope"}),  # a bad annotation
], ids=["odd", "parse-error-wins", "second-refused", "bad-annotation"])
def test_denials_are_the_same_as_with_two_parses(hal, parses, containers, annotations):
    spec = {"containers": containers}
    resp, _ = _review(Mutator(hal.vendors(), admit=hal.admit_request), copy.deepcopy(spec), annotations)
    assert resp["allowed"] is False and "patch" not in resp and len(parses) == 1
    assert resp["status"]["message"] == _old_answer(hal, spec, annotations)
