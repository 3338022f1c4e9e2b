"""The committed real H200 matrix joins a real HAMi register annotation for an H200 (model key)."""

from __future__ import annotations

import json
from pathlib import Path

from hami_scheduler.capability import CapabilityGate

from hami_hal.engine import NodeState
from hami_hal.hami_compat import parse_node
from hami_hal.models import AnnotationKeys, CapabilityMatrix, Level, ResourceFamily, VendorInfo
from hami_hal.requests import parse_pod

ROOT = Path(__file__).resolve().parents[1]
MATRIX = ROOT / "docs/results/2026-12-02-h200-capability-matrix/capability-matrix.json"
#: The vendor as the cluster describes it (resource names, keys); no plugin imported.
GPU = VendorInfo(name="nvidia", display_name="NVIDIA", resources=[ResourceFamily(
    common_word="NVIDIA", count="nvidia.com/gpu", memory="nvidia.com/gpumem", cores="nvidia.com/gpucores")],
    annotations=AnnotationKeys(node_register="hami.io/node-nvidia-register"))
#: What HAMi's device plugin (v2.8+) writes for the recorded H200: type = "NVIDIA-" + NVML name.
H200_REGISTER = json.dumps([{"id": "GPU-6f1c2d3e-h200", "count": 10, "devmem": 143771, "devcore": 100,
                             "type": "NVIDIA-NVIDIA H200", "health": True, "mode": "hami-core"}])
SHARE = {"metadata": {"name": "share"}, "spec": {"containers": [{"name": "c", "resources": {"limits": {
    "nvidia.com/gpu": 1, "nvidia.com/gpumem": 10240, "nvidia.com/gpucores": 30}}}]}}


def _gate(matrix: CapabilityMatrix) -> CapabilityGate:
    return CapabilityGate(matrix)


def _node():
    return parse_node({"metadata": {"name": "h200", "annotations": {"hami.io/node-nvidia-register": H200_REGISTER}}},
                      [GPU])


def test_committed_h200_matrix_passes_a_real_h200_annotation():
    matrix = CapabilityMatrix.model_validate_json(MATRIX.read_text())
    inv = _node()
    (dev,) = inv.devices
    assert dev.hami_type == "NVIDIA-NVIDIA H200" and dev.model == "NVIDIA H200"
    assert matrix.entry("nvidia", dev.hami_type).model == "NVIDIA H200"  # any spelling joins
    fit = NodeState.from_inventory(inv).fit_pod(parse_pod(SHARE, [GPU]), veto=_gate(matrix))
    assert fit.ok, fit.reason
    (sl,) = fit.allocation.slices()
    assert (sl.memory_mib, sl.compute_percent) == (10240, 30)


def test_simulated_row_refuses_a_real_node_with_one_line():
    matrix = CapabilityMatrix.model_validate_json(MATRIX.read_text())
    (row,) = matrix.entries
    sim = row.model_copy(update={"provenance": row.provenance.model_copy(update={
        "source": "simulated", "profile": "h200-sim", "driver_version": None})})
    matrix = matrix.model_copy(update={"entries": [sim]})
    assert matrix.entry("nvidia", "NVIDIA-NVIDIA H200").cell("isolation/memory-hard").level is Level.SUPPORTED
    fit = NodeState.from_inventory(_node()).fit_pod(parse_pod(SHARE, [GPU]), veto=_gate(matrix))
    assert not fit.ok
    (failure,) = fit.failures
    assert failure.reason.value == "CapabilityNotVerified"
    assert "simulated (profile h200-sim)" in failure.detail and "never vouches for a real device" in failure.detail
    assert "\n" not in failure.detail
