"""Node CPU/memory from the API, the seed mix and its hand-over to the cluster's own pods."""

from __future__ import annotations

import pytest
from hami_scheduler.extender import Extender
from hami_scheduler.live_workload import WorkloadFeed, load_seed
from hami_scheduler.node_resources import cpu_milli, memory_mib, pod_requests
from hami_scheduler.policies import make_policy
from hami_scheduler.state import ClusterState
from sched_testing import NVIDIA, gpu_node, gpu_pod

from hami_hal.errors import InputError


def node(name: str, cpu: str = "8", mem: str = "32Gi", gpus: int = 2) -> dict:
    n = gpu_node(name, gpus=gpus, count=100)
    n["status"] = {"allocatable": {"cpu": cpu, "memory": mem}}
    return n


def pod(name: str, cpu: str, memory: str, node_name: str | None = None, phase: str = "Running", **kw) -> dict:
    p = gpu_pod(name, **kw)
    p["spec"]["containers"][0]["resources"]["requests"] = {"cpu": cpu, "memory": memory}
    if node_name:
        p["spec"]["nodeName"] = node_name
    p["status"] = {"phase": phase}
    return p


@pytest.mark.parametrize(("text", "milli"), [("500m", 500), ("2", 2000), ("1.5", 1500), ("0.0001", 1), (3, 3000)])
def test_cpu_quantities(text, milli):
    assert cpu_milli(text, "cpu") == milli


@pytest.mark.parametrize(("text", "mib"), [("1Gi", 1024), ("1G", 954), ("512Mi", 512), ("1", 1)])
def test_memory_quantities(text, mib):
    assert memory_mib(text, "memory") == mib


@pytest.mark.parametrize("bad", ["lots", "-1", "1e999999", "9" * 70, None, True, [1]])
def test_bad_quantities_name_the_field(bad):
    with pytest.raises(InputError, match="^status.allocatable.cpu: "):
        cpu_milli(bad, "status.allocatable.cpu")


def test_effective_request_follows_kube_scheduler():
    p = {"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}},
                                 {"resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}],
                  "initContainers": [{"resources": {"requests": {"cpu": "4", "memory": "1Gi"}}}],
                  "overhead": {"cpu": "100m", "memory": "10Mi"}}}
    # app containers: 1.5 CPU, 2 GiB; init: 4 CPU, 1 GiB -> max per resource, plus overhead
    assert pod_requests(p) == (4100, 2058)
    assert pod_requests({"spec": "nonsense"}) == (0, 0)


def test_ledger_counts_bound_and_reserved_pods_and_forgets_finished_ones():
    c = ClusterState([NVIDIA])
    c.upsert_node(node("a"))
    assert c.resources.free("a") == (8000, 8000, 32768)
    c.upsert_pod(pod("p1", "2", "4Gi", "a"))
    c.upsert_pod({"metadata": {"name": "cpu-only", "namespace": "default"},
                  "spec": {"nodeName": "a", "containers": [{"resources": {"requests": {"cpu": "1"}}}]}})
    assert c.resources.free("a") == (5000, 8000, 28672)
    c.upsert_pod(pod("p1", "2", "4Gi", "a", phase="Succeeded"))
    assert c.resources.free("a") == (7000, 8000, 32768)
    c.remove_pod("default/cpu-only")
    assert c.resources.free("a") == (8000, 8000, 32768)
    assert c.resources.short_of("a", 9000, 0) == "Insufficient cpu"
    assert c.resources.short_of("a", 0, 40000) == "Insufficient memory"
    assert c.resources.short_of("unknown", 10**9, 10**9) == ""


def test_bad_allocatable_keeps_the_node_with_unknown_cpu():
    c = ClusterState([NVIDIA])
    c.upsert_node(node("a", cpu="many"))
    assert "a" in c.nodes and c.resources.free("a") is None
    assert c.rejected["node:a/allocatable"] == "status.allocatable.cpu: 'many' is not a Kubernetes quantity"
    c.upsert_node(node("a"))
    assert "node:a/allocatable" not in c.rejected and c.resources.free("a")[0] == 8000


def test_filter_fails_nodes_short_of_cpu_and_counts_the_reservation():
    c = ClusterState([NVIDIA])
    c.upsert_node(node("small", cpu="1"))
    c.upsert_node(node("big", cpu="16"))
    ext = Extender(c, None, policy="frag-pack")
    out = ext.filter({"Pod": pod("p", "4", "1Gi", mem=1024, cores=10), "NodeNames": ["small"]})
    assert out.node_names == [] and out.failed == {"small": "Insufficient cpu"}
    out = ext.filter({"Pod": pod("p", "4", "1Gi", mem=1024, cores=10), "NodeNames": ["small", "big"]})
    assert out.node_names == ["big"]
    assert c.resources.free("big")[0] == 12000
    # the policy's view of a node carries the ledger's CPU (the stranding term's input)
    from hami_scheduler.extender import node_view

    view = node_view("big", c.nodes["big"].state, c.resources.free("big"))
    assert (view.cpu_free, view.cpu_total, view.mem_free) == (12000, 16000, 31744)


def test_seed_mix_until_the_cluster_takes_over(tmp_path):
    f = tmp_path / "mix.csv"
    f.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
                 "a,4000,1024,1,500\nb,4000,1024,1,500\nc,8000,2048,2,1000\nd,1000,10,0,0\n")
    seed = load_seed(str(f))
    assert dict(seed.workload) == pytest.approx({(4000, 500, 1, ()): 0.5, (8000, 1000, 2, ()): 0.25,
                                                 (1000, 0, 0, ()): 0.25})
    c = ClusterState([NVIDIA])
    c.upsert_node(node("a", cpu="64", mem="256Gi", gpus=4))
    feed = WorkloadFeed(make_policy("fgd"), refresh_s=0, seed=seed, takeover=2)
    assert feed.refresh(c, now=1.0) and feed.mode == f"seed:{f}" and feed.workload == seed.workload
    ext = Extender(c, None, policy="fgd")
    for i in range(2):
        assert ext.filter({"Pod": pod(f"p{i}", "3", "1Gi", mem=1024, cores=20), "NodeNames": ["a"]}).node_names
    assert feed.refresh(c, now=2.0) and feed.mode == "live"
    # the live classes carry the pods' CPU from the ledger
    assert [k for k, _ in feed.workload] == [(3000, 200, 1, ())]


def test_bad_seed_is_one_line(tmp_path, capsys):
    f = tmp_path / "mix.csv"
    f.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\nd,1000,10,0,0\n")
    with pytest.raises(InputError, match="holds no GPU pod"):
        load_seed(str(f))
    with pytest.raises(InputError, match="variant: 'nope' is not one of"):
        load_seed("trace:nope", str(tmp_path))
    from hami_scheduler.cli import main

    assert main(["serve", "--workload-seed", str(tmp_path / "absent.csv"), "--policy", "fgd"]) == 2
    assert main(["serve", "--workload-seed", str(f), "--policy", "binpack"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "cannot be read" in err[-2] and err[-1].startswith("error: --workload-seed: ") and "binpack" in err[-1]
