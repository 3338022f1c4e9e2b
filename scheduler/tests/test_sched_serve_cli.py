"""``hami-scheduler serve`` as a process against the fake API server, with the seed pod."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

from sched_fakeapi import FakeApiServer
from sched_testing import NVIDIA, SEED_POD, gpu_node

from hami_hal.testing.ports import read_banner_port


def test_serve_end_to_end_with_seed_pod(tmp_path):
    api = FakeApiServer().start()
    api.add_node(gpu_node("node1", gpus=4))
    pod = api.add_pod(SEED_POD)
    vendors = tmp_path / "vendors.json"
    vendors.write_text(json.dumps([NVIDIA.model_dump(mode="json")]))
    proc = subprocess.Popen(  # port 0: the server binds a port of its choosing and prints it (no race)
        [sys.executable, "-m", "hami_scheduler.cli", "serve", "--api-server", api.url, "--bind", "127.0.0.1:0",
         "--vendors", str(vendors)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{read_banner_port(proc.stdout.readline)}"
        for _ in range(100):
            try:
                with urllib.request.urlopen(base + "/readyz") as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        def post(verb, body):
            req = urllib.request.Request(f"{base}/{verb}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                return json.loads(r.read())
        assert post("filter", {"Pod": pod, "NodeNames": ["node1"]})["NodeNames"] == ["node1"]
        assert post("bind", {"PodName": "gpu-pod", "PodNamespace": "default", "PodUID": "uid-gpu-pod",
                             "Node": "node1"}) == {"Error": ""}
        assert api.pods[("default", "gpu-pod")]["spec"]["nodeName"] == "node1"
    finally:
        proc.terminate()
        proc.wait(10)
        api.stop()


def test_serve_bad_vendors_file_one_line(tmp_path):
    bad = tmp_path / "v.json"
    bad.write_text("{}")
    out = subprocess.run([sys.executable, "-m", "hami_scheduler.cli", "serve", "--api-server", "http://127.0.0.1:9",
                          "--vendors", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "--vendors" in out.stderr
