"""The GPU run's outputs become docs/results records only when they are real: a dry-run record or a
simulated matrix row is refused."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "conformance" / "benchmarks" / "node_agent_gpu_collect.py"


def _collect():
    spec = importlib.util.spec_from_file_location("node_agent_gpu_collect", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _out(tmp: Path, dry: bool, source: str) -> Path:
    out = tmp / "out"
    (out / "node").mkdir(parents=True)
    (out / "matrix").mkdir()
    rec = {"dry_run": "stand-in" if dry else None, "criteria": {"exporter_within_1_percent": True}}
    (out / "node" / "2026-12-04-h200-node-agent.json").write_text(json.dumps(rec))
    (out / "node" / "2026-12-04-h200-node-agent.md").write_text("# record\n")
    matrix = {"entries": [{"model": "NVIDIA H200", "provenance": {"source": source, "device_model": "NVIDIA H200",
                                                                  "driver_version": "580"},
                           "capabilities": [{"id": "metrics/allocation-usage", "level": "supported",
                                             "evidence": ["usage_error = 0.4 % (target <= 1)"]}]}]}
    (out / "matrix" / "capability-matrix.json").write_text(json.dumps(matrix))
    (out / "matrix" / "run.log").write_text("ok\n")
    return out


@pytest.mark.parametrize(("dry", "source", "refusal"), [(True, "real", "a dry run"),
                                                         (False, "simulated", "no real-hardware row")])
def test_node_gpu_collect_refuses_what_is_not_a_gpu_result(tmp_path, dry, source, refusal):
    results = tmp_path / "results"
    results.mkdir()
    with pytest.raises(SystemExit, match=refusal):
        _collect()([str(_out(tmp_path, dry, source)), "--results", str(results)])
    assert not any((results / "2026-12-04-h200-node-agent-matrix").glob("*.json")) if source == "simulated" else True


def test_node_gpu_collect_writes_the_records(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    out = _out(tmp_path, False, "real")
    assert _collect()([str(out), "--results", str(results), "--commit", "abc1234"]) == 0
    assert (results / "2026-12-04-h200-node-agent.json").is_file()
    readme = (results / "2026-12-04-h200-node-agent-matrix" / "README.md").read_text()
    assert "metrics/allocation-usage: **supported**" in readme and "abc1234" in readme
    assert "usage_error = 0.4 %" in capsys.readouterr().out
    shutil.rmtree(out)
