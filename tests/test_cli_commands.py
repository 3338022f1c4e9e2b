"""The ``hami`` CLI on simulated hardware, driven by the acme plugin: tables, --json, exit codes."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from hami_hal.cli.main import CLI_ENTRY_POINT_GROUP, main
from hami_hal.models import NodeInventory, PodAllocation

cli_main = importlib.import_module("hami_hal.cli.main")

GOOD_POD = """apiVersion: v1
kind: Pod
metadata: {name: acme-pod, namespace: team}
spec:
  initContainers:
  - name: warm
    resources: {limits: {acme.example/xpu: 1, acme.example/xpu-mem: 1000}}
  containers:
  - name: main
    resources: {limits: {acme.example/xpu: 2, acme.example/xpu-mem: 10240, acme.example/xpu-cores: 30}}
  - name: side
    resources: {limits: {acme.example/xpu: 1, acme.example/xpu-mem: 12000}}
"""


@pytest.fixture(autouse=True)
def _acme_only(monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PLUGIN_MODULES", "acme_plugin")
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "acme")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(cli_main, "entry_points", lambda group: [])


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def pod_file(tmp_path: Path, text: str) -> str:
    f = tmp_path / "pod.yaml"
    f.write_text(text)
    return str(f)


def test_plugins_table_and_json(capsys):
    code, out, _ = run(capsys, "plugins")
    assert code == 0 and "acme" in out and "acme.example/xpu-cores" in out and "container_edits" in out
    code, out, _ = run(capsys, "plugins", "--json")
    data = json.loads(out)
    (p,) = data["plugins"]
    assert p["name"] == "acme" and p["version"] == "0.0.1+test" and "hami_hal_admit_request" in p["hooks"]
    assert "acme.example/card" in p["resources"]


def test_devices_table_says_simulated(capsys):
    code, out, _ = run(capsys, "devices")
    assert code == 0 and "simulated (profile acme-mixed-4)" in out
    assert "Acme T200 32GB" in out and "templates, 4 slot(s): t1.8gb, t2.16gb, t4.32gb" in out
    assert "acme-link" in out and "fabric" in out and "skipped acme" not in out
    assert out.count("libacme.so not found") == 1
    assert "acme: the devices above are simulated, because the real backend is absent: libacme.so not found" in out


def test_devices_json_is_a_node_inventory(capsys):
    code, out, _ = run(capsys, "devices", "--json", "--node-name", "n1")
    inv = NodeInventory.model_validate(json.loads(out))
    assert inv.node == "n1" and inv.source == "simulated" and len(inv.devices) == 4
    assert {d.provenance.profile for d in inv.devices} == {"acme-mixed-4"}


def test_devices_named_sim_node_with_fault(capsys):
    code, out, _ = run(capsys, "devices", "--sim-node", "acme-faulty-2")
    assert code == 0 and "simulated (profile acme-faulty-2)" in out and "fallen off the bus" in out


def test_devices_real_backend_without_hardware(capsys):
    code, out, _ = run(capsys, "devices", "--backend", "real")
    assert code == 0 and "no devices found" in out and "libacme.so not found" in out


def test_allocate_table(capsys, tmp_path):
    code, out, _ = run(capsys, "allocate", pod_file(tmp_path, GOOD_POD))
    assert code == 0 and "pod team/acme-pod" in out and "simulated (profile acme-mixed-4)" in out
    assert "warm (init)" in out and "t2.16gb" in out and "ACME_MEMORY_LIMIT_1" in out
    assert "annotation hami.io/acme-devices-allocated:" in out


def test_allocate_json(capsys, tmp_path):
    code, out, _ = run(capsys, "allocate", pod_file(tmp_path, GOOD_POD), "--json")
    data = json.loads(out)
    assert code == 0 and data["fits"] and data["simulated"] and data["profile"] == "acme-mixed-4"
    alloc = PodAllocation.model_validate(data["allocation"])
    assert [(c.name, c.index, len(c.slices)) for c in alloc.containers] == [("warm", 0, 1), ("main", 1, 2),
                                                                           ("side", 2, 1)]
    main_slices = alloc.containers[1].slices
    assert len({s.uuid for s in main_slices}) == 2 and {s.memory_mib for s in main_slices} == {10240}
    assert data["edits"]["main"]["env"]["ACME_CORE_LIMIT"] == "30"
    value = data["annotations"]["hami.io/acme-devices-to-allocate"]
    assert value.count(";") == 3 and value.startswith(f"{alloc.containers[0].slices[0].uuid},ACME,1000,0:;")


def test_allocate_that_does_not_fit_explains_why(capsys, tmp_path):
    text = GOOD_POD.replace("acme.example/xpu-mem: 12000}", "acme.example/xpu-mem: 12000}}\n  - name: more\n"
                            "    resources: {limits: {acme.example/xpu: 4, acme.example/xpu-mem: 9000}")
    code, out, _ = run(capsys, "allocate", pod_file(tmp_path, text))
    assert code == 1 and "does not fit" in out and "simulated" in out and "CardInsufficientMemory" in out
    code, out, _ = run(capsys, "allocate", pod_file(tmp_path, text), "--json")
    data = json.loads(out)
    assert code == 1 and not data["fits"] and data["allocation"] is None and data["failures"]


def test_allocate_pod_without_acme_resources(capsys, tmp_path):
    text = "metadata: {name: x}\nspec: {containers: [{name: a, resources: {limits: {nvidia.com/gpu: 1}}}]}\n"
    code, out, err = run(capsys, "allocate", pod_file(tmp_path, text))
    assert code == 0 and "requests no device of an installed plugin (installed vendors: acme)" in out
    assert "warning: spec.containers[0].resources.limits[\"nvidia.com/gpu\"]: 'nvidia.com/gpu' belongs to no " \
           "installed plugin; ignored" in err


BAD_POD = [
    ("kind: Pod\nmetadata: {name: [x\n", "line 2: 'metadata: {name: [x'", "not valid YAML"),
    (GOOD_POD.replace("xpu-mem: 10240", "xpu-mem: -10240"), 'limits["acme.example/xpu-mem"]', "-10240"),
    (GOOD_POD.replace("xpu-mem: 10240", "xpu-mem: ten"), 'limits["acme.example/xpu-mem"]', "'ten'"),
    (GOOD_POD.replace("xpu-cores: 30", "xpu-cores: 130"), 'limits["acme.example/xpu-cores"]', "130"),
    (GOOD_POD.replace("xpu-cores: 30", "xpu-corez: 30"), 'limits["acme.example/xpu-corez"]', "not a resource"),
    (GOOD_POD.replace("namespace: team}", "namespace: team, annotations: {acme.example/use-xpuuuid: A, "
                      "acme.example/nouse-xpuuuid: A}}"), 'annotations["acme.example/nouse-xpuuuid"]', "'A'"),
    (GOOD_POD.replace("xpu-mem: 12000", "xpu-mem: 64000"), 'spec.containers[1].resources.limits["acme.example/xpu-mem"]',
     "64000"),
]


@pytest.mark.parametrize(("text", "field", "detail"), BAD_POD,
                         ids=["yaml", "negative", "non-numeric", "cores>100", "unknown-name", "selectors", "never"])
def test_allocate_bad_input_is_one_line_exit_2(capsys, tmp_path, text, field, detail):
    code, out, err = run(capsys, "allocate", pod_file(tmp_path, text))
    errors = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and out == "" and len(errors) == 1
    assert errors[0].startswith("error: ") and field in errors[0] and detail in errors[0]
    assert "Traceback" not in err


def test_unknown_sim_node_is_one_line(capsys):
    code, out, err = run(capsys, "devices", "--sim-node", "nope")
    assert code == 2 and out == "" and "node profile 'nope' not found" in err and len(err.strip().splitlines()) == 1


def test_profiles_table_and_json(capsys):
    code, out, _ = run(capsys, "profiles")
    assert code == 0 and "simulated node profiles" in out and "2× acme-x100, 2× acme-t200" in out
    code, out, _ = run(capsys, "profiles", "--json")
    data = json.loads(out)
    assert data["simulated"] and {n["name"] for n in data["node_profiles"]} == {"acme-mixed-4", "acme-faulty-2"}


def test_schemas_check_and_export(capsys, tmp_path):
    code, out, _ = run(capsys, "schemas", "export", "--check")
    assert code == 0 and "match the models" in out
    code, _, err = run(capsys, "schemas", "export", "--check", "--dir", str(tmp_path))
    assert code == 1 and "node-inventory.schema.json" in err
    code, out, _ = run(capsys, "schemas", "export", "--dir", str(tmp_path))
    assert code == 0 and len(list(tmp_path.glob("*.schema.json"))) == 6
    assert run(capsys, "schemas", "export", "--check", "--dir", str(tmp_path))[0] == 0
    code, out, _ = run(capsys, "schemas", "export", "--check", "--json")
    assert code == 0 and json.loads(out)["in_sync"] is True


def test_metrics_dump_text_and_json(capsys):
    code, out, _ = run(capsys, "metrics", "dump")
    assert code == 0 and "hami_hal_device_memory_total_bytes{" in out and 'source="simulated"' in out
    code, out, _ = run(capsys, "metrics", "dump", "--json")
    data = json.loads(out)
    assert data["simulated"] and data["backends"]["acme"]["success"]
    assert {s["metric"] for s in data["samples"]} >= {"hami_hal_device_temperature_celsius"}


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 2 and "allocate" in out


def test_external_subcommands_register_through_entry_points(capsys, monkeypatch):
    eps = [EntryPoint(name="acme-hello", value="acme_cli:register", group=CLI_ENTRY_POINT_GROUP),
           EntryPoint(name="broken", value="no_such_cli_module_xyz:register", group=CLI_ENTRY_POINT_GROUP),
           EntryPoint(name="devices", value="acme_cli:register", group=CLI_ENTRY_POINT_GROUP)]
    monkeypatch.setattr(cli_main, "entry_points", lambda group: [e for e in eps if e.group == group])
    code, out, err = run(capsys, "acme-hello", "--name", "vendor")
    assert code == 3 and out == "hello vendor\n"
    assert "subcommand 'broken'" in err and "could not be loaded" in err and "clashes" in err


def _hami() -> list[str]:
    exe = Path(sys.executable).parent / "hami"
    found = str(exe) if exe.exists() else shutil.which("hami")
    return [found] if found else [sys.executable, "-m", "hami_hal.cli.main"]


def test_console_script_end_to_end(acme_env, tmp_path):
    res = subprocess.run([*_hami(), "devices", "--json"], env=acme_env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert NodeInventory.model_validate_json(res.stdout).source == "simulated"
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD_POD.replace("xpu-cores: 30", "xpu-cores: 300"))
    res = subprocess.run([*_hami(), "allocate", str(bad)], env={**acme_env, "COLUMNS": "200"},
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2 and res.stdout == "" and "Traceback" not in res.stderr
    assert 'spec.containers[0].resources.limits["acme.example/xpu-cores"]: 300 must be between 0 and 100' in res.stderr


def test_metrics_serve_answers_scrapes(acme_env):
    import time
    import urllib.request

    from hami_hal.testing.ports import read_banner_port

    # --port 0: the server binds a port the kernel chooses and prints it; no pick-close-bind race
    proc = subprocess.Popen([*_hami(), "metrics", "serve", "--port", "0", "--addr", "127.0.0.1"],
                            env=acme_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = read_banner_port(proc.stdout.readline)
        body, deadline = "", time.monotonic() + 30
        while time.monotonic() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    body = resp.read().decode()
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        assert "hami_hal_device_memory_used_bytes{" in body, proc.stderr.read() if proc.poll() is not None else ""
        assert 'hami_hal_device_info{' in body and 'source="simulated"' in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_metrics_serve_bad_or_taken_port_is_one_line(acme_env):
    import socket

    with socket.socket() as held:  # a listener on the port: the server cannot bind it
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        taken = subprocess.run([*_hami(), "metrics", "serve", "--port", str(port), "--addr", "127.0.0.1"],
                               env=acme_env, capture_output=True, text=True, timeout=60)
    big = subprocess.run([*_hami(), "metrics", "serve", "--port", "70000"], env=acme_env, capture_output=True,
                         text=True, timeout=60)
    for res, line in ((taken, f"--port: {port} cannot listen on 127.0.0.1"), (big, "--port: 70000 must be 0..65535")):
        assert res.returncode == 2 and res.stdout == "" and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.strip().count("\n") == 0 and line in res.stderr, res.stderr


def test_metrics_without_prometheus_client_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    code, out, err = run(capsys, "metrics", "dump")
    assert code == 2 and out == "" and "needs prometheus-client" in err
