"""Admission webhook latency: in-process decision, HTTPS round trip, and the whole path through a real
kube-apiserver (pod create with dryRun=All, webhook selected vs not selected).

    .venv/bin/python tests/e2e/bench_webhook_latency.py [--n 2000] [--n-api 300] \
        [--out docs/results/2026-12-04-webhook-latency.json]

Needs the binaries of hack/k8s-bins.sh for the apiserver part (skipped with a note when absent).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scheduler" / "testing_support"))

from hami_scheduler.webhook import Mutator  # noqa: E402
from k8s_controlplane import K8S_VERSION, REPO, ControlPlane, make_ca, make_cert, missing_binaries  # noqa: E402
from sched_testing import NVIDIA  # noqa: E402

from hami_hal.testing.ports import read_banner_port  # noqa: E402

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-pod", "namespace": "default"},
       "spec": {"schedulerName": "default-scheduler", "containers": [{
           "name": "main", "image": "cuda", "resources": {"limits": {"nvidia.com/gpu": "2"}}}]}}


def review(i: int) -> bytes:
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": f"u{i}", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "default", "object": POD}}).encode()


def summary(samples_s: list[float]) -> dict:
    ms = sorted(s * 1000 for s in samples_s)

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(p / 100 * len(ms)))], 3)

    return {"n": len(ms), "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": round(ms[-1], 3),
            "mean_ms": round(statistics.fmean(ms), 3)}


def bench_inprocess(n: int) -> dict:
    m = Mutator([NVIDIA])
    bodies = [review(i) for i in range(n)]
    assert "patch" in m.handle(bodies[0])["response"], "the reference pod must be mutated"
    out = []
    for b in bodies:
        t0 = time.perf_counter()
        m.handle(b)
        out.append(time.perf_counter() - t0)
    return summary(out)


def start_webhook(pki: Path, vendors: Path) -> tuple[subprocess.Popen, int]:
    cert, key = make_cert(pki, "webhook", "IP:127.0.0.1")
    p = subprocess.Popen([sys.executable, "-m", "hami_scheduler.cli", "webhook", "--bind", "127.0.0.1:0",
                          "--tls-cert-file", str(cert), "--tls-private-key-file", str(key), "--vendors", str(vendors)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = read_banner_port(p.stdout.readline)  # port 0: the banner says which port it got (no race)
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    for _ in range(150):
        try:
            c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return p, port
        except OSError:
            time.sleep(0.2)
    p.kill()
    raise RuntimeError("webhook did not start")


def bench_https(pki: Path, port: int, n: int) -> dict:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    out = []
    for i in range(n):
        body = review(i)
        t0 = time.perf_counter()
        conn.request("POST", "/webhook", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        out.append(time.perf_counter() - t0)
        assert resp.status == 200 and json.loads(data)["response"]["allowed"], data[:200]
    return summary(out)


def bench_apiserver(cp: ControlPlane, port: int, n: int) -> dict:
    from kubernetes import client

    core = client.CoreV1Api(cp.api_client())
    adm = client.AdmissionregistrationV1Api(cp.api_client())
    for ns in ("bench-on", "bench-off"):
        core.create_namespace({"metadata": {"name": ns}})
    adm.create_mutating_webhook_configuration({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "bench"},
        "webhooks": [{"name": "vgpu.hami.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                      "failurePolicy": "Fail", "timeoutSeconds": 10,
                      "clientConfig": {"url": f"https://127.0.0.1:{port}/webhook",
                                       "caBundle": base64.b64encode((cp.pki / "ca.crt").read_bytes()).decode()},
                      "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                 "resources": ["pods"]}],
                      "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "bench-on"}}}]})
    pod = {**POD, "metadata": {"name": "gpu-pod"}}
    for _ in range(100):  # until the apiserver's informer has the configuration
        if core.create_namespaced_pod("bench-on", pod, dry_run="All").spec.scheduler_name == "hami-scheduler":
            break
        time.sleep(0.1)
    res = {}
    for ns in ("bench-off", "bench-on", "bench-off", "bench-on"):  # interleaved halves against drift
        out = res.setdefault(ns, [])
        for _ in range(n // 2):
            t0 = time.perf_counter()
            made = core.create_namespaced_pod(ns, pod, dry_run="All")
            out.append(time.perf_counter() - t0)
            assert (made.spec.scheduler_name == "hami-scheduler") == (ns == "bench-on")
    on, off = summary(res["bench-on"]), summary(res["bench-off"])
    return {"with_webhook": on, "without_webhook": off,
            "added_p50_ms": round(on["p50_ms"] - off["p50_ms"], 3), "added_p99_ms": round(on["p99_ms"] - off["p99_ms"], 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--n-api", type=int, default=300)
    ap.add_argument("--out", default=str(REPO / "docs/results/2026-12-04-webhook-latency.json"))
    args = ap.parse_args()
    result = {
        "what": "hami-scheduler webhook latency (AdmissionReview v1, the reference pod nvidia.com/gpu: 2, mutated)",
        "command": "python tests/e2e/bench_webhook_latency.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "note": "shared 2-core VM (other jobs running); 127.0.0.1 only"},
        "in_process": bench_inprocess(args.n),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        vendors = work / "vendors.json"
        vendors.write_text(json.dumps([NVIDIA.model_dump(mode="json")]))
        missing = missing_binaries(("etcd", "kube-apiserver"))
        cp = None
        if missing:
            pki = work / "pki"
            pki.mkdir()
            make_ca(pki)
            result["through_apiserver"] = f"not measured: {', '.join(missing)} not built (make k8s-bins)"
        else:
            cp = ControlPlane(work / "k8s").start()
            pki = cp.pki
        proc, port = start_webhook(pki, vendors)
        try:
            result["https_keepalive"] = bench_https(pki, port, args.n)
            if cp is not None:
                result["kubernetes"] = K8S_VERSION
                result["through_apiserver"] = bench_apiserver(cp, port, args.n_api)
        finally:
            proc.kill()
            if cp is not None:
                cp.stop()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
