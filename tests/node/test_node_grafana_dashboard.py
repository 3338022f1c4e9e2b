"""Every query of the Grafana dashboard uses only series hami-hal serves (the node agent's exporter and the
scheduler's allocation view), and every label it filters or groups on exists on that series."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hami_hal.metrics import hami_names

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "hami-hal-node.json"
#: PromQL words that look like identifiers but are not series.
PROMQL = {"sum", "avg", "max", "min", "count", "by", "without", "on", "ignoring", "group_left", "group_right",
          "rate", "irate", "increase", "label_values", "topk", "bottomk", "and", "or", "unless", "bool", "offset",
          "avg_over_time", "max_over_time", "histogram_quantile", "clamp_max", "clamp_min", "abs", "time"}
#: The plugins' own series the dashboard may use beside HAMi's (hami_hal/metrics/collector.py).
HAL_SERIES = {"hami_hal_device_info": {"vendor", "model", "device_uuid", "device_index", "hami_type", "mode",
                                       "source", "profile"}}


def _queries(path: Path) -> list[str]:
    dash = json.loads(path.read_text())
    out = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    out += [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return out


def _strip(expr: str) -> str:
    expr = re.sub(r'"[^"]*"', '""', expr)  # string literals
    expr = re.sub(r"\{\{[^}]*\}\}", "", expr)  # legend templates
    return re.sub(r"\[[^\]]*\]", "", expr)  # range selectors


GROUPING = r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\(([^)]*)\)"


def problems(path: Path) -> tuple[list[str], set[str]]:
    """Queries using a series or label the exporter does not serve; and the series used."""
    served = {s.name: set(s.labels) for s in hami_names.ALL + hami_names.SCHEDULER} | dict(HAL_SERIES)
    out: list[str] = []
    used: set[str] = set()
    for expr in _queries(path):
        body = _strip(expr)
        selectors = re.sub(r"\{[^}]*\}", "", body)
        group_labels = {g.strip() for grp in re.findall(GROUPING, selectors) for g in grp.split(",") if g.strip()}
        plain = re.sub(r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", selectors)
        names = {n for n in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", plain) if n not in PROMQL}
        names -= {"node", "pod", "namespace"}  # label_values(..., <label>) second argument
        if not names:
            out.append(f"{expr!r} names no series")
            continue
        unknown = names - served.keys()
        if unknown:
            out.append(f"{expr!r} uses {sorted(unknown)}, which the exporter does not serve")
            continue
        allowed = set().union(*(served[n] for n in names))
        filt = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*=~?", " ".join(re.findall(r"\{([^}]*)\}", body))))
        if not (filt | group_labels) <= allowed:
            out.append(f"{expr!r} uses labels {sorted((filt | group_labels) - allowed)} the series lack")
        used |= names
    return out, used


def test_dashboard_queries_use_served_series_only():
    assert {s.name for s in hami_names.ALL} == hami_names.served_names(legacy=False)
    bad, used = problems(DASHBOARD)
    assert bad == []
    assert {"hami_vgpu_memory_used_bytes", "hami_host_gpu_memory_used_bytes",
            "hami_container_device_utilization_ratio"} <= used
    # the scheduler row (hami-scheduler serve's /metrics)
    assert {"hami_node_gpu_memory_allocated_ratio", "hami_gpu_core_allocated_ratio", "hami_gpu_shared_count",
            "hami_vgpu_memory_allocated_bytes"} <= used


def test_checker_catches_a_wrong_name_and_label(tmp_path):
    dash = json.loads(DASHBOARD.read_text())
    dash["panels"][0]["targets"][0]["expr"] = "sum(vgpu_memory_usage_bytes)"
    dash["panels"][1]["targets"][0]["expr"] = 'hami_host_gpu_utilization_ratio{pod="x"}'
    f = tmp_path / "d.json"
    f.write_text(json.dumps(dash))
    bad, _ = problems(f)
    assert len(bad) == 2 and "vgpu_memory_usage_bytes" in bad[0] and "['pod']" in bad[1]
