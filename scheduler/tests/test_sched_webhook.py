"""The admission webhook's decision (Mutator) and its HTTP edge, without a cluster.

The same webhook runs through a real kube-apiserver in tests/e2e/test_e2e_webhook.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from hami_scheduler.device_config import read_device_config
from hami_scheduler.webhook import Mutator, WebhookServer
from sched_testing import NVIDIA

from hami_hal.errors import InputError


def review(spec: dict, uid: str = "u1", kind: str = "Pod", op: str = "CREATE") -> dict:
    return {"uid": uid, "kind": {"group": "", "version": "v1", "kind": kind}, "operation": op, "namespace": "default",
            "object": {"metadata": {"name": "p"}, "spec": spec}}


def ctr(limits: dict | None = None, **extra) -> dict:
    c = {"name": "main", "image": "cuda", **extra}
    if limits is not None:
        c["resources"] = {"limits": limits}
    return c


def patch_of(resp: dict) -> list[dict]:
    assert resp["allowed"] is True
    return json.loads(base64.b64decode(resp["patch"])) if "patch" in resp else []


@pytest.fixture
def mutator():
    return Mutator([NVIDIA])


def test_sets_scheduler_name_and_full_cores_for_an_exclusive_gpu(mutator):
    ops = patch_of(mutator.review(review({"schedulerName": "default-scheduler",
                                          "containers": [ctr({"nvidia.com/gpu": "1"})]})))
    assert {"op": "add", "path": "/spec/schedulerName", "value": "hami-scheduler"} in ops
    res = next(o for o in ops if o["path"] == "/spec/containers/0/resources")["value"]
    assert res["limits"] == {"nvidia.com/gpu": "1", "nvidia.com/gpucores": "100"}


@pytest.mark.parametrize("limits, expected", [
    ({"nvidia.com/gpumem": "2048"}, {"nvidia.com/gpumem": "2048", "nvidia.com/gpu": "1"}),
    ({"nvidia.com/gpucores": "30"}, {"nvidia.com/gpucores": "30", "nvidia.com/gpu": "1"}),
    ({"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "100"},
     {"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "100", "nvidia.com/gpucores": "100"}),
    ({"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "50"}, None),  # shared memory: cores untouched
    ({"nvidia.com/gpu": "2", "nvidia.com/gpumem": "1024", "nvidia.com/gpucores": "30"}, None),
])
def test_hami_defaults(mutator, limits, expected):
    ops = patch_of(mutator.review(review({"containers": [ctr(limits)]})))
    res = [o["value"]["limits"] for o in ops if o["path"] == "/spec/containers/0/resources"]
    assert res == ([expected] if expected else [])


def test_init_containers_are_mutated_too(mutator):
    ops = patch_of(mutator.review(review({"initContainers": [ctr({"nvidia.com/gpumem": "100"})],
                                          "containers": [ctr()]})))
    assert any(o["path"] == "/spec/initContainers/0/resources" for o in ops)


def test_other_scheduler_and_plain_pods_are_left_alone(mutator):
    assert patch_of(mutator.review(review({"schedulerName": "volcano", "containers": [
        ctr({"nvidia.com/gpu": "1", "nvidia.com/gpucores": "20", "nvidia.com/gpumem": "100"})]}))) == []
    assert patch_of(mutator.review(review({"containers": [ctr({"cpu": "1"})]}))) == []
    assert patch_of(mutator.review(review({"containers": [ctr()]}, kind="Service"))) == []
    assert patch_of(mutator.review(review({"containers": [ctr({"nvidia.com/gpu": "1"})]}, op="UPDATE"))) == []


def test_force_overwrite_off_keeps_default_scheduler():
    m = Mutator([NVIDIA], force_overwrite_default=False)
    ops = patch_of(m.review(review({"schedulerName": "default-scheduler", "containers": [
        ctr({"nvidia.com/gpu": "1", "nvidia.com/gpucores": "10"})]})))
    assert ops == []


@pytest.mark.parametrize("spec, message", [
    ({"containers": [ctr({"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "150"})]},
     'spec.containers[0].resources.limits["nvidia.com/gpumem-percentage"]: 150 must be between 0 and 100'),
    ({"containers": [ctr({"nvidia.com/gpu": "x"})]}, 'spec.containers[0].resources.limits["nvidia.com/gpu"]'),
    ({"containers": [ctr({"nvidia.com/gpu": "1"}, securityContext={"privileged": True})]},
     "spec.containers[0].securityContext.privileged: true is not allowed with nvidia.com/gpu"),
    ({"nodeName": "n1", "containers": [ctr({"nvidia.com/gpu": "1"})]}, "spec.nodeName: 'n1' is preset"),
    ({"containers": "nope"}, "spec.containers: must be a list"),
    ({"containers": ["nope"]}, "spec.containers[0]: must be an object"),
])
def test_invalid_pods_are_denied_with_one_line_naming_the_field(mutator, spec, message):
    resp = mutator.review(review(spec))
    assert resp["allowed"] is False and resp["status"]["code"] == 400
    assert message in resp["status"]["message"] and "\n" not in resp["status"]["message"]
    assert "patch" not in resp


def test_handle_rejects_what_is_not_an_admission_review(mutator):
    with pytest.raises(ValueError):
        mutator.handle(b'{"kind": "Pod"}')
    with pytest.raises(ValueError):
        mutator.handle(b"not json")
    out = mutator.handle(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                     "request": review({"containers": [ctr()]})}).encode())
    assert out["response"] == {"uid": "u1", "allowed": True} and out["kind"] == "AdmissionReview"


def test_http_edge_bounds_the_body():
    srv = WebhookServer(Mutator([NVIDIA]), "127.0.0.1", 0, None, None).start()
    try:
        def post(body: bytes, path: str = "/webhook"):
            req = urllib.request.Request(srv.url + path, data=body, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()

        ok = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                         "request": review({"containers": [ctr({"nvidia.com/gpu": "1"})]})}).encode()
        code, body = post(ok)
        assert code == 200 and json.loads(body)["response"]["patchType"] == "JSONPatch"
        assert post(ok, "/mutate")[0] == 200
        assert post(b"{}", "/other")[0] == 404
        assert post(b"[1]")[0] == 400
        # Headers only: the server must refuse on Content-Length alone (sending the body would race the close).
        conn = http.client.HTTPConnection(*srv.httpd.server_address[:2], timeout=5)
        conn.putrequest("POST", "/webhook")
        conn.putheader("Content-Length", str((1 << 20) + 1))
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 413 and resp.getheader("Connection") == "close"
        conn.close()
        conn = http.client.HTTPConnection(*srv.httpd.server_address[:2], timeout=5)
        conn.request("POST", "/webhook", body=b"{}", headers={"Content-Length": "-1"})
        assert conn.getresponse().status == 400
        conn.close()
    finally:
        srv.stop()


def test_device_config_defaults_and_bounds(tmp_path):
    cfg = tmp_path / "device-config.yaml"
    cfg.write_text("nvidia:\n  defaultMemory: 2048\n  defaultGPUNum: 2\n")
    (v,) = read_device_config([NVIDIA], str(cfg)).vendors
    assert v.resources[0].default_memory_mib == 2048 and v.resources[0].default_count == 2
    m = Mutator([v])
    ops = patch_of(m.review(review({"containers": [ctr({"nvidia.com/gpumem": "100"})]})))
    assert ops[0]["value"]["limits"]["nvidia.com/gpu"] == "2"
    ops = patch_of(m.review(review({"containers": [ctr({"nvidia.com/gpu": "1"})]})))
    assert all(o["path"] != "/spec/containers/0/resources" for o in ops)  # default memory: not exclusive
    cfg.write_text("nvidia:\n  defaultCores: 300\n")
    with pytest.raises(InputError, match="nvidia.defaultCores"):
        read_device_config([NVIDIA], str(cfg))
    cfg.write_text("- a list\n")
    with pytest.raises(InputError, match="--device-config"):
        read_device_config([NVIDIA], str(cfg))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_tls_a_silent_client_does_not_block_others(tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   cwd=tmp_path, check=True, capture_output=True)
    srv = WebhookServer(Mutator([NVIDIA]), "127.0.0.1", 0, str(tmp_path / "c.pem"), str(tmp_path / "k.pem")).start()
    silent = socket.create_connection(srv.httpd.server_address[:2])  # connects, never says hello
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "c.pem"))
        t0 = time.monotonic()
        with urllib.request.urlopen(srv.url + "/healthz", context=ctx, timeout=5) as r:
            assert r.status == 200
        assert time.monotonic() - t0 < 2
    finally:
        silent.close()
        srv.stop()
