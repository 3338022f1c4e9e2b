"""Read the Alibaba openb GPU trace (cluster-trace-gpu-v2023) node and pod lists.

The trace is never copied into the repository; its directory is a CLI option (default
``../shared/data/openb-gpu-v2023`` relative to the repository root, or env ``HAMI_TRACE_DIR``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hami_hal.errors import InputError

VARIANTS = (
    "default",
    "cpu050",
    "cpu200",
    "gpushare40",
    "gpushare80",
    "gpuspec10",
    "gpuspec25",
    "multigpu20",
    "multigpu40",
)
NODE_FILE = "openb_node_list_gpu_node.csv"
#: GPU memory per model in MiB (simulator ``MapGpuTypeMemoryMiB``); G1-G3 are nominal.
GPU_MEMORY_MIB = {
    "T4": 15109,
    "V100M16": 16160,
    "P100": 16280,
    "A10": 22731,
    "V100M32": 32510,
    "G1": 1000,
    "G2": 20000,
    "G3": 30000,
}


@dataclass(frozen=True, slots=True)
class TraceNode:
    """One row of the node list."""

    name: str
    cpu_milli: int
    memory_mib: int
    gpus: int
    model: str


@dataclass(frozen=True, slots=True)
class TracePod:
    """One row of a pod list. ``gpu_spec`` holds the allowed GPU models (empty = any)."""

    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    gpu_spec: tuple[str, ...] = ()

    @property
    def gpu_request_milli(self) -> int:
        """Total GPU demand: ``num_gpu × gpu_milli``."""
        return self.num_gpu * self.gpu_milli

    @property
    def spec(self) -> tuple[int, int, int, tuple[str, ...]]:
        """The FGD workload class: (cpu, per-GPU milli, GPU count, GPU types); memory excluded."""
        return (self.cpu_milli, self.gpu_milli, self.num_gpu, self.gpu_spec)


def default_trace_dir() -> Path:
    """``$HAMI_TRACE_DIR`` or ``../shared/data/openb-gpu-v2023`` next to the repository root."""
    env = os.environ.get("HAMI_TRACE_DIR")
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[3]
    return repo_root.parent / "shared" / "data" / "openb-gpu-v2023"


def _int(row: dict[str, str], field: str, where: str) -> int:
    raw = row.get(field)
    try:
        value = int(raw) if raw not in (None, "") else 0
    except ValueError:
        raise InputError(f"{where}.{field}", raw, "is not an integer") from None
    if value < 0:
        raise InputError(f"{where}.{field}", raw, "must be >= 0")
    return value


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise InputError("trace_dir", str(path.parent), f"has no {path.name}")
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=4)
def load_nodes(trace_dir: str) -> tuple[TraceNode, ...]:
    """The 1213 GPU nodes the paper uses (``openb_node_list_gpu_node.csv``)."""
    out = []
    for i, row in enumerate(_rows(Path(trace_dir) / NODE_FILE)):
        where = f"{NODE_FILE}[{i}]"
        out.append(
            TraceNode(
                name=row["sn"],
                cpu_milli=_int(row, "cpu_milli", where),
                memory_mib=_int(row, "memory_mib", where),
                gpus=_int(row, "gpu", where),
                model=(row.get("model") or "").strip(),
            )
        )
    return tuple(out)


@lru_cache(maxsize=16)
def load_pods(trace_dir: str, variant: str) -> tuple[TracePod, ...]:
    """A pod list; ``gpu_milli`` is clamped to 1000 as the trace converter does."""
    if variant not in VARIANTS:
        raise InputError("variant", variant, f"is not one of {', '.join(VARIANTS)}")
    name = f"openb_pod_list_{variant}.csv"
    out = []
    for i, row in enumerate(_rows(Path(trace_dir) / name)):
        where = f"{name}[{i}]"
        num_gpu = _int(row, "num_gpu", where)
        milli = min(_int(row, "gpu_milli", where), 1000) if num_gpu else 0
        spec = tuple(s.strip() for s in (row.get("gpu_spec") or "").split("|") if s.strip())
        out.append(
            TracePod(
                name=row["name"],
                cpu_milli=_int(row, "cpu_milli", where),
                memory_mib=_int(row, "memory_mib", where),
                num_gpu=num_gpu,
                gpu_milli=milli,
                gpu_spec=spec if num_gpu else (),
            )
        )
    return tuple(out)
