"""Read the Alibaba openb GPU trace (cluster-trace-gpu-v2023) node and pod lists.

The trace is never copied into the repository. ``hami-scheduler trace fetch`` downloads it (pinned
checksums, see :mod:`.trace_fetch`) into the user's cache folder, which is the default trace folder;
``$HAMI_TRACE_DIR`` and ``--trace-dir`` win over it.
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
#: Where the default trace folder lives inside the user's cache folder.
CACHE_SUBDIR = Path("hami-hal") / "openb-gpu-v2023"
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


def pod_file(variant: str) -> str:
    """The pod-list file name of one variant (``openb_pod_list_<variant>.csv``)."""
    if variant not in VARIANTS:
        raise InputError("variant", variant, f"is not one of {', '.join(VARIANTS)}")
    return f"openb_pod_list_{variant}.csv"


def trace_files(variants: list[str] | tuple[str, ...]) -> list[str]:
    """The files a simulation of these variants reads: the node list and one pod list per variant."""
    return [NODE_FILE, *(pod_file(v) for v in variants)]


def cache_trace_dir() -> Path:
    """``$XDG_CACHE_HOME/hami-hal/openb-gpu-v2023`` (``~/.cache/...`` when unset): where fetch puts it."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / CACHE_SUBDIR


def default_trace_dir() -> Path:
    """``$HAMI_TRACE_DIR`` when set, else the cache folder ``trace fetch`` downloads into."""
    env = os.environ.get("HAMI_TRACE_DIR")
    return Path(env).expanduser() if env else cache_trace_dir()


def missing_files(trace_dir: Path, variants: list[str] | tuple[str, ...]) -> list[str]:
    """The files of these variants that are not in ``trace_dir`` (all of them when it does not exist)."""
    return [f for f in trace_files(variants) if not (trace_dir / f).is_file()]


HOW_TO_GET = "run `hami-scheduler trace fetch` or point HAMI_TRACE_DIR / --trace-dir at a copy"


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
        raise InputError("trace_dir", str(path.parent), f"has no {path.name} ({HOW_TO_GET})")
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
    name = pod_file(variant)
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
