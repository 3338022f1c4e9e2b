"""`hami conformance run|validate|merge|diff|behaviours` end to end on the acme test plugin."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hami_conformance.cli import main

ACME = str(Path(__file__).resolve().parents[2] / "tests" / "plugins")


@pytest.fixture
def acme_only(monkeypatch):
    """Only the acme plugin (tests/plugins), whatever else is installed."""
    monkeypatch.syspath_prepend(ACME)
    monkeypatch.setenv("HAMI_HAL_PLUGIN_MODULES", "acme_plugin")
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "acme")
    monkeypatch.delenv("HAMI_HAL_PROFILE_PATH", raising=False)


@pytest.fixture
def ran(acme_only, tmp_path, capsys):
    out = tmp_path / "run1"
    assert main(["run", "--no-progress", "--out", str(out), "--node-name", "node-a"]) == 0
    return out, capsys.readouterr()


def test_run_writes_json_markdown_html_and_one_summary_line_per_model(ran):
    out, captured = ran
    lines = [ln for ln in captured.out.splitlines() if ln.startswith("SIMULATED")]
    assert len(lines) == 2 and all("MUST not met" in ln or "every MUST" in ln for ln in lines)
    doc = json.loads((out / "capability-matrix.json").read_text())
    assert doc["kind"] == "CapabilityMatrix" and len(doc["entries"]) == 2
    assert doc["entries"][0]["nodes"] == ["node-a"]
    assert (out / "capability-matrix.html").read_text().count("SIMULATED") >= 1


def test_validate_merge_and_diff_on_run_output(ran, acme_only, tmp_path, capsys):
    out, _ = ran
    assert main(["run", "--no-progress", "--out", str(tmp_path / "run2"), "--node-name", "node-b",
                 "--behaviour", "partition/"]) == 0
    capsys.readouterr()
    assert main(["validate", str(out / "capability-matrix.json")]) == 0
    assert "valid" in capsys.readouterr().out
    merged = tmp_path / "cluster.json"
    assert main(["merge", str(out / "capability-matrix.json"), str(tmp_path / "run2" / "capability-matrix.json"),
                 "-o", str(merged), "--out", str(tmp_path / "cluster")]) == 0
    doc = json.loads(merged.read_text())
    assert {tuple(e["nodes"]) for e in doc["entries"]} == {("node-a", "node-b")}
    assert (tmp_path / "cluster" / "capability-matrix.html").exists()
    capsys.readouterr()
    assert main(["diff", str(out / "capability-matrix.json"), str(tmp_path / "run2" / "capability-matrix.json"),
                 "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    kinds = {c["kind"] for c in changes}
    assert "cell-removed" in kinds and kinds <= {"cell-removed", "measurement"}  # run2 ran only partition/


def test_diff_can_fail_on_regression(ran, tmp_path, capsys):
    out, _ = ran
    doc = json.loads((out / "capability-matrix.json").read_text())
    cell = next(c for c in doc["entries"][0]["capabilities"] if c["id"] == "partition/no-overcommit")
    cell["level"] = "unsupported"
    worse = tmp_path / "worse.json"
    worse.write_text(json.dumps(doc))
    assert main(["diff", str(out / "capability-matrix.json"), str(worse)]) == 0
    assert main(["diff", str(out / "capability-matrix.json"), str(worse), "--fail-on-regression"]) == 1
    assert "worse" in capsys.readouterr().out


def test_validate_rejects_a_tampered_matrix(ran, tmp_path, capsys):
    out, _ = ran
    doc = json.loads((out / "capability-matrix.json").read_text())
    cell = next(c for c in doc["entries"][0]["capabilities"] if c["id"] == "isolation/memory-hard")
    cell["level"] = "supported"  # a simulated hardware claim
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(doc))
    assert main(["validate", str(bad)]) == 1
    assert "only a real probe can prove it" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--no-progress", "--plugin", "nvidiaa"], "--plugin: 'nvidiaa' is not an installed plugin"),
    (["run", "--no-progress", "--backend", "real"], "--backend real: no real devices found"),
    (["run", "--no-progress", "--behaviour", "nope/"], "--behaviour: ['nope/'] matches no behaviour ID"),
    (["run", "--no-progress", "--set", "device_memory_scaling"], "--set: 'device_memory_scaling' must look like"),
    (["run", "--no-progress", "--set", "k=[1, 2]"], "--set: 'k=[1, 2]' has a value that is not a plain scalar"),
    (["run", "--no-progress", "--set", "k=&a [*a, *a]"], "has a value that is not a plain scalar"),
    (["validate", "/nonexistent/matrix.json"], "/nonexistent/matrix.json: 'No such file or directory'"),
])
def test_user_mistakes_give_one_line_and_exit_2(acme_only, tmp_path, capsys, argv, message):
    argv = [*argv, "--out", str(tmp_path / "o")] if argv[0] == "run" else argv
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err.replace("\n", " ") and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing written


def test_behaviours_lists_the_catalogue(capsys):
    assert main(["behaviours", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["behaviours"]) >= 15 and doc["suite_version"]


def test_registered_in_the_hami_cli(acme_only, tmp_path, capsys):
    from importlib.metadata import entry_points

    if not any(ep.name == "conformance" for ep in entry_points(group="hami_hal.cli")):
        pytest.skip("hami-conformance is not installed (pip install -e conformance)")
    from hami_hal.cli.main import main as hami

    assert hami(["conformance", "run", "--no-progress", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "capability-matrix.json").exists()


def test_module_entry_point_runs(acme_only, tmp_path):
    import subprocess

    env_path = f"{ACME}"
    proc = subprocess.run([sys.executable, "-m", "hami_conformance", "behaviours"], capture_output=True,
                          text=True, timeout=60, env={**__import__("os").environ, "PYTHONPATH": env_path})
    assert proc.returncode == 0 and "discovery/inventory-complete" in proc.stdout
