"""`hami node` as a process: registers with a fake kubelet, writes the node annotations, serves the
exporter, stops cleanly on SIGTERM; bad flags give one line and exit 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from node_agent_fixtures import NODE

from hami_hal.testing.ports import TAKEN, read_banner_port

#: Run from a temporary folder: from the repo root, ``hami_plugins_nvidia`` would be the source folder.
HAMI = [sys.executable, "-m", "hami_hal.cli"]


def _env() -> dict:
    return {**os.environ, "HAMI_HAL_PLUGINS": "nvidia"}


def test_hami_node_runs_registers_and_serves_metrics(api, kubelet, short_tmp):
    """The exporter on a port the system picks (``--metrics-any-port``; 0 means "off" for ``--metrics-port``), read
    back from its log line: no free-port race, no retry."""
    proc = subprocess.Popen(
        [*HAMI, "node", "--node-name", NODE, "--backend", "sim", "--api-server", api.url,
         "--plugin-dir", str(kubelet.folder), "--state-root", str(short_tmp / "state"),
         "--metrics-any-port", "--metrics-addr", "127.0.0.1"],
        env=_env(), cwd=short_tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    head: list[str] = []

    def read_line() -> str:
        head.append(proc.stdout.readline())
        return head[-1]

    try:
        port = read_banner_port(read_line)
    except RuntimeError:
        proc.kill()
        proc.wait(30)
        raise
    try:
        assert kubelet.wait(lambda k: len(k.healthy("nvidia.com/gpu")) == 20, timeout=60)
        anns = api.nodes[NODE]["metadata"]["annotations"]
        for _ in range(100):  # the node annotations follow the kubelet registration
            if "hami.io/node-nvidia-register" in anns:
                break
            time.sleep(0.1)
        assert len(json.loads(anns["hami.io/node-nvidia-register"])) == 2
        assert json.loads(anns["hami-hal.io/node-inventory"])["source"] == "simulated"
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "hami_host_gpu_memory_used_bytes{" in body and "hami_build_info{" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    out = "".join(head) + out
    assert proc.returncode == 0, out
    assert "registered nvidia.com/gpu with the kubelet" in out and "Traceback" not in out


def test_metrics_port_taken_is_one_line_not_a_traceback(api, short_tmp):
    with socket.socket() as held:  # a listener on the port: the exporter cannot bind it
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        res = subprocess.run([*HAMI, "node", "--node-name", NODE, "--backend", "sim", "--api-server", api.url,
                              "--plugin-dir", str(short_tmp / "dp"), "--state-root", str(short_tmp / "state"),
                              "--metrics-port", str(port), "--metrics-addr", "127.0.0.1"],
                             env=_env(), cwd=short_tmp, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert f"--metrics-port: {port} cannot listen on 127.0.0.1" in last and TAKEN.search(last), res.stderr


def test_metrics_any_port_and_metrics_port_together_are_refused(short_tmp):
    res = subprocess.run([*HAMI, "node", "--backend", "sim", "--metrics-port", "9400", "--metrics-any-port"],
                         env=_env(), cwd=short_tmp, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "not allowed with argument" in res.stderr and "--metrics-any-port" in res.stderr, res.stderr


def test_hami_node_once_writes_annotations(api, short_tmp):
    res = subprocess.run([*HAMI, "node", "--once", "--node-name", NODE, "--backend", "sim", "--api-server", api.url,
                          "--plugin-dir", str(short_tmp / "dp")], env=_env(), cwd=short_tmp, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert "hami.io/node-handshake" in api.nodes[NODE]["metadata"]["annotations"]


def test_bad_flag_is_one_line(short_tmp):
    res = subprocess.run([*HAMI, "node", "--register-interval", "0", "--backend", "sim"], env=_env(), cwd=short_tmp,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "--register-interval" in res.stderr


def test_unreachable_api_server_is_one_line_not_a_crash(short_tmp):
    res = subprocess.run([*HAMI, "node", "--once", "--node-name", NODE, "--backend", "sim",
                          "--api-server", "http://127.0.0.1:1"], env=_env(), cwd=short_tmp, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "annotations not written" in res.stderr and "unreachable" in res.stderr
