"""``hami-scheduler simulate --pods FILE --nodes FILE``: any openb-format list, every bad value named."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hami_scheduler.cli import main
from hami_scheduler.sim import listfile
from hami_scheduler.sim.listfile import ListFileError, load_node_file, load_pod_file
from hami_scheduler.sim.report import simulate_files
from hami_scheduler.sim.run import FileSource, TraceSource, simulate_one
from hami_scheduler.sim.trace import default_trace_dir

TRACE = Path(os.environ.get("HAMI_TRACE_DIR") or default_trace_dir())
needs_trace = pytest.mark.skipif(not (TRACE / "openb_node_list_gpu_node.csv").is_file(),
                                 reason="openb trace not present (set HAMI_TRACE_DIR or run hami-scheduler trace fetch)")

NODES = "sn,cpu_milli,memory_mib,gpu,model\n" + "".join(
    f"n{i},32000,131072,{g},{m}\n" for i, (g, m) in enumerate([(2, "T4"), (4, "V100M16"), (8, "A10"), (0, "")])
)
PODS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n" + "".join(
    f"p{i},{c},{m},{n},{g},{s},LS,Running,0,10,0\n"
    for i, (c, m, n, g, s) in enumerate(
        [(4000, 8192, 1, 1000, ""), (2000, 4096, 1, 500, "T4"), (8000, 16384, 2, 1000, "A10|V100M16"),
         (1000, 2048, 1, 250, ""), (6000, 1024, 0, 0, ""), (3000, 4096, 4, 1000, "")]
    )
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_lists_load(tmp_path):
    nodes = load_node_file(_write(tmp_path, "n.csv", NODES))
    pods = load_pod_file(_write(tmp_path, "p.csv", PODS))
    assert [n.gpus for n in nodes] == [2, 4, 8, 0] and nodes[2].model == "A10"
    assert pods[2].gpu_spec == ("A10", "V100M16") and pods[4].num_gpu == 0 and pods[5].gpu_request_milli == 4000


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (NODES.replace("n1,32000", "n1,lots"), "line 3: cpu_milli = 'lots' is not an integer"),
        (NODES.replace("n2,32000,131072,8", "n2,32000,131072,99"), "line 4: gpu = '99' is outside 0..16"),
        (NODES.replace("n1,", "n0,"), "line 3: sn = 'n0' repeats line 2"),
        (NODES.replace("V100M16", "V100 M16!"), "line 3: model = 'V100 M16!' is not a GPU model name"),
        (NODES.replace("sn,", "node,"), "header: column 'sn' is missing"),
        (NODES.replace(",T4\n", ",T4,red\n"), "line 2: 6 fields, the header has 5"),
        (NODES.replace(",0,\n", "\n"), "line 5: fewer fields than the header"),
        ("sn,cpu_milli,memory_mib,gpu,model\n", "has a header but no rows"),
        ("", "is empty"),
        (NODES.replace("\n", ",x\n", 1), "header: column 'x' is not a known column"),
    ],
)
def test_bad_node_values_are_named(tmp_path, text, needle):
    with pytest.raises(ListFileError) as err:
        load_node_file(_write(tmp_path, "n.csv", text))
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("p0,4000", "p0,-4", "line 2: cpu_milli = '-4' is outside 0..100000000"),
        ("p1,2000,4096,1,500", "p1,2000,4096,1,1500", "line 3: gpu_milli = '1500' is outside 0..1000"),
        ("p2,8000,16384,2,1000", "p2,8000,16384,2,500", "multi-GPU pods take whole GPUs"),
        ("p4,6000,1024,0,0,", "p4,6000,1024,0,300,", "line 6: gpu_milli = 300 needs num_gpu >= 1"),
        ("p4,6000,1024,0,0,", "p4,0,1024,0,0,", "the pod requests nothing"),
        ("p1,2000,4096,1,500,T4", "p1,2000,4096,1,500,T4|<script>", "gpu_spec = '<script>' is not a GPU model"),
        ("p3,1000,2048,1,250,,LS,Running", "p3,1000,2048,1,250,,gold,Running", "line 5: qos = 'gold'"),
        ("p3,1000,2048,1,250,,LS,Running,0", "p3,1000,2048,1,250,,LS,Exploded,0", "pod_phase = 'Exploded'"),
        ("p5,3000,4096,4,1000,,LS,Running,0", "p5,3000,4096,4,1000,,LS,Running,yesterday",
         "line 7: creation_time = 'yesterday' is not an integer"),
        ("p5,", "p0,", "line 7: name = 'p0' repeats line 2"),
    ],
)
def test_bad_pod_values_are_named(tmp_path, old, new, needle):
    assert old in PODS
    with pytest.raises(ListFileError) as err:
        load_pod_file(_write(tmp_path, "p.csv", PODS.replace(old, new, 1)))
    assert needle in str(err.value)


def test_every_problem_is_one_line_and_the_count_is_bounded(tmp_path):
    rows = "".join(f"p{i},x,y,1,500\n" for i in range(30))
    with pytest.raises(ListFileError) as err:
        load_pod_file(_write(tmp_path, "p.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n" + rows))
    lines = str(err.value).splitlines()
    assert lines[0].endswith("60 problem(s)") and len(err.value.problems) == listfile.MAX_PROBLEMS
    assert lines[-1] == "  ... and 40 more"
    assert all("line " in ln for ln in lines[1:-1])


def test_size_binary_and_encoding_bounds(tmp_path, monkeypatch):
    monkeypatch.setattr(listfile, "MAX_FILE_BYTES", 100)
    with pytest.raises(ListFileError, match="more than the limit of 100"):
        load_pod_file(_write(tmp_path, "big.csv", PODS))
    monkeypatch.undo()
    p = tmp_path / "bin.csv"
    p.write_bytes(b"name,cpu_milli\n\xff\xfe\x00")
    with pytest.raises(ListFileError, match="not UTF-8"):
        load_pod_file(p)
    with pytest.raises(ListFileError, match="cannot be read"):
        load_pod_file(tmp_path / "absent.csv")
    with pytest.raises(ListFileError, match="is not a regular file"):
        load_pod_file(tmp_path)


def test_cpu_only_or_tiny_gpu_lists_are_refused_before_running(tmp_path):
    nodes = _write(tmp_path, "n.csv", NODES)
    cpu_only = _write(tmp_path, "p.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,0,0\n")
    with pytest.raises(ListFileError, match="no pod requests a GPU"):
        simulate_files(cpu_only, nodes)
    tiny = _write(tmp_path, "t.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,1,1\n")
    big = _write(tmp_path, "b.csv", "sn,cpu_milli,memory_mib,gpu,model\n" + "".join(
        f"n{i},1000,1000,16,T4\n" for i in range(30)))
    with pytest.raises(ListFileError, match="about 624000 arrivals \\(limit 500000\\)"):
        simulate_files(tiny, big)


def test_simulate_files_api_runs_without_published_columns(tmp_path):
    rows = simulate_files(_write(tmp_path, "p.csv", PODS), _write(tmp_path, "n.csv", NODES),
                          policies=["bestfit", "frag-pack"], seeds=[1, 2])
    assert [r["policy"] for r in rows] == ["bestfit", "frag-pack"]
    for r in rows:
        assert r["variant"] == "file:p.csv" and r["seeds"] == 2
        assert r["published_alloc_100"] is None and r["published_alloc_130"] is None
        assert 0 < r["alloc_130_median"] <= r["bound_130_median"] <= 100  # no policy beats the offline bound
        assert r["alloc_100_median"] <= r["bound_100_median"] + 1e-6


def test_cli_pods_nodes(tmp_path, capsys):
    pods, nodes = _write(tmp_path, "p.csv", PODS), _write(tmp_path, "n.csv", NODES)
    out = tmp_path / "r" / "run"
    rc = main(["simulate", "--pods", str(pods), "--nodes", str(nodes), "--policies", "fgd", "--seeds", "3",
               "--workers", "1", "--out", str(out), "--json"])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["variant"] == "file:p.csv" and rows[0]["published_alloc_100"] is None
    md = out.with_suffix(".md").read_text()
    assert "published" not in md and "user node list" in md and "offline bound @100" in md
    rc = main(["simulate", "--pods", str(pods), "--nodes", str(nodes), "--policies", "fgd", "--seeds", "3",
               "--workers", "1"])
    assert rc == 0 and "published" not in capsys.readouterr().out


def test_cli_bad_inputs_are_one_line_each(tmp_path, capsys):
    pods = _write(tmp_path, "p.csv", PODS.replace("p0,4000", "p0,many").replace("p1,2000,4096,1,500", "p1,2,4,1,0"))
    nodes = _write(tmp_path, "n.csv", NODES)
    assert main(["simulate", "--pods", str(pods), "--nodes", str(nodes), "--workers", "1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: {pods}: 2 problem(s)"
    assert err[1:] == ["  line 2: cpu_milli = 'many' is not an integer",
                       "  line 3: gpu_milli = 0 with num_gpu = 1: a GPU pod needs gpu_milli 1..1000"]
    assert main(["simulate", "--pods", str(pods)]) == 2
    assert "--nodes: None is required with --pods" in capsys.readouterr().err
    assert main(["simulate", "--pods", str(pods), "--nodes", str(nodes), "--variant", "cpu200"]) == 2
    assert "cannot be combined with --pods" in capsys.readouterr().err


@needs_trace
def test_the_trace_as_a_file_gives_the_trace_result():
    """The same lists through --pods/--nodes and through the variant name place identically."""
    src = FileSource(str(TRACE / "openb_node_list_gpu_node.csv"), str(TRACE / "openb_pod_list_cpu200.csv"))
    a = simulate_one(src, None, "fgd", 42, limit=600, engine_check=False)
    b = simulate_one(TraceSource(str(TRACE), "cpu200"), None, "fgd", 42, limit=600, engine_check=False)
    assert a.curve == b.curve and a.failed == b.failed and a.variant == "file:openb_pod_list_cpu200.csv"
