"""The trace simulator on a small slice of the openb trace (the full study is a bench command)."""

from __future__ import annotations

import json

import pytest
from hami_scheduler.cli import main
from hami_scheduler.policies import POLICIES, PodShape, make_policy
from hami_scheduler.policies.base import NodeView
from hami_scheduler.policies.frag import FragModel
from hami_scheduler.sim.run import simulate_one
from hami_scheduler.sim.trace import default_trace_dir, load_nodes, load_pods, missing_files
from hami_scheduler.sim.workload import arrival_order, target_workload
from sched_trace_skip import TRACE_SKIP_REASON

TRACE = default_trace_dir()
needs_trace = pytest.mark.skipif(bool(missing_files(TRACE, ("default", "gpuspec25"))), reason=TRACE_SKIP_REASON)


@needs_trace
def test_trace_composition_matches_published_counts():
    nodes = load_nodes(str(TRACE))
    assert len(nodes) == 1213 and sum(n.gpus for n in nodes) == 6212
    pods = load_pods(str(TRACE), "default")
    assert len(pods) == 8152 and sum(p.gpu_request_milli for p in pods) == 6_086_800


@needs_trace
def test_inflation_reaches_130_percent_with_the_quirk():
    pods = load_pods(str(TRACE), "default")
    order = arrival_order(pods, 42, 6212 * 1000)
    total = sum(p.gpu_request_milli for p in order)
    assert 1.29 * 6_212_000 < total <= 1.3 * 6_212_000 + 8000
    assert order[len(pods)].name.endswith("-tuned-0")
    assert arrival_order(pods, 42, 6_212_000) == order and arrival_order(pods, 43, 6_212_000) != order


@needs_trace
def test_empty_cluster_fragmentation_is_about_14_percent():
    nodes = load_nodes(str(TRACE))
    wl = target_workload(list(load_pods(str(TRACE), "default")))
    assert len(wl) == 35
    fm = FragModel(wl)
    frag = sum(fm.frag_of(n.model, n.cpu_milli, [1000] * n.gpus) for n in nodes)
    assert 13.0 < 100 * frag / 1000 / 6212 < 15.0


def test_fgd_prefers_the_gpu_it_completes():
    pol = make_policy("fgd")
    pol.prepare([((1000, 500, 1, ()), 0.5), ((1000, 1000, 1, ()), 0.5)])
    node = NodeView("n", "X", 8000, 1 << 30, [1000, 500, 1000])
    score, gpus = pol.score(node, PodShape(1000, 0, 1, 500))
    assert gpus == (1,)  # fills the half-used GPU instead of breaking a whole one
    assert pol.score(NodeView("m", "X", 500, 1 << 30, [1000]), PodShape(1000, 0, 1, 500)) is None


@needs_trace
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_runs_through_the_engine(policy):
    r = simulate_one(str(TRACE), "gpuspec25", policy, 42, limit=300, engine_check=True)
    assert r.pods == 300 and 0 < r.curve[3] <= 100
    assert r.failed < 300


@needs_trace
def test_simulate_cli_writes_outputs(tmp_path, capsys):
    out = tmp_path / "sim"
    rc = main(["simulate", "--trace-dir", str(TRACE), "--policies", "bestfit,fgd", "--seeds", "42",
               "--limit", "400", "--workers", "1", "--out", str(out), "--json"])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["policy"] for r in rows} == {"bestfit", "fgd"}
    assert out.with_suffix(".csv").read_text().startswith("variant,policy,seed,arrived_pct,alloc_pct")
    assert out.with_suffix(".md").exists() and out.with_suffix(".json").exists()
    # The plot (matplotlib is part of the dev setup) and a re-plot from the CSV alone.
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = tmp_path / "again.png"
    assert main(["plot", str(out.with_suffix(".csv")), "--out", str(again)]) == 0
    assert again.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_rejects_a_file_that_is_not_a_curve_csv(tmp_path, capsys):
    bad = tmp_path / "x.csv"
    bad.write_text("variant,policy,seed,arrived_pct,alloc_pct\ndefault,fgd,42,0,1.0\n")
    assert main(["plot", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "csv" in err[0] and "lacks arrival bins" in err[0]
    assert not bad.with_suffix(".png").exists()
    assert main(["plot", str(tmp_path / "missing.csv")]) == 2


def test_simulate_cli_bad_input_one_line(capsys, tmp_path, monkeypatch):
    assert main(["simulate", "--trace-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--trace-dir" in err[0] and "trace fetch" in err[0]
    # Arguments are checked before the trace folder: with no trace anywhere the typo is still named.
    monkeypatch.setenv("HAMI_TRACE_DIR", str(tmp_path / "no-trace-here"))
    for argv, field in ((["--seeds", "9-1"], "--seeds"), (["--variant", "nope"], "--variant"),
                        (["--policies", "fgd,nope"], "--policies"), (["--limit", "0"], "--limit")):
        assert main(["simulate", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {field}:"), err
    assert main(["simulate", "--seeds", "42"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "HAMI_TRACE_DIR" in err[0] and "hami-scheduler trace fetch" in err[0]


def test_trace_dir_without_the_variant_file_is_named(capsys, tmp_path):
    (tmp_path / "openb_node_list_gpu_node.csv").write_text("sn,cpu_milli,memory_mib,gpu,model\n")
    assert main(["simulate", "--trace-dir", str(tmp_path), "--variant", "cpu050"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "openb_pod_list_cpu050.csv" in err[0]


@needs_trace
def test_partial_run_does_not_show_the_papers_full_trace_figure(tmp_path, capsys):
    out = tmp_path / "part"
    assert main(["simulate", "--trace-dir", str(TRACE), "--policies", "fgd", "--seeds", "42", "--limit", "200",
                 "--workers", "1", "--no-engine-check", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "published" not in text and "Partial run: only the first 200" in text
    md = out.with_suffix(".md").read_text()
    assert "Partial run" in md
    rows = json.loads(out.with_suffix(".json").read_text())["summary"]
    assert rows and all(r["published_alloc_100"] is None for r in rows)


def test_scarcity_only_for_models_constrained_pods_need():
    from hami_scheduler.policies.frag_pack import model_scarcity

    wl = [((1000, 1000, 1, ()), 0.5), ((1000, 1000, 1, ("T4",)), 0.25), ((1000, 500, 1, ("T4", "P100")), 0.25)]
    s = model_scarcity(wl, {"T4": 10, "P100": 10, "G2": 80})
    assert s["G2"] == 0 and s["T4"] > s["P100"] > 0
    # 100 GPUs of capacity at 0.875 GPU per pod: ~114 pods arrive; T4 demand 0.3125 GPU/pod -> ~3.6x capacity
    assert abs(s["T4"] - (100 / 0.875) * 0.3125 / 10) < 1e-9
    pol = make_policy("frag-pack")
    pol.prepare(wl, {}, {"T4": 10, "P100": 10, "G2": 80})  # type: ignore[call-arg]
    free_t4 = NodeView("t4", "T4", 8000, 1 << 30, [1000])
    free_g2 = NodeView("g2", "G2", 8000, 1 << 30, [1000])
    any_pod = PodShape(1000, 0, 1, 1000)
    assert pol.score(free_g2, any_pod)[0] > pol.score(free_t4, any_pod)[0]
