"""An operator's own node and pod lists in the openb CSV format, checked column by column.

The built-in loaders (:mod:`.trace`) trust the published trace; these files come from a user, so
every column is checked and every bad value is reported on its own line (field, row, value, why),
all of them at once, so a file can be fixed in one pass. Files are bounded in size and rows.

Columns (header row required, order free):

* nodes: ``sn, cpu_milli, memory_mib, gpu, model`` (``model`` may be empty when ``gpu`` is 0).
* pods: ``name, cpu_milli, memory_mib, num_gpu, gpu_milli`` required; ``gpu_spec`` (allowed GPU
  models, ``|``-separated), ``qos``, ``pod_phase``, ``creation_time``, ``deletion_time``,
  ``scheduled_time`` optional (the last five are checked and ignored, as the paper's simulator
  ignores them for arrival-only runs).
"""

from __future__ import annotations

import csv
import io
import os
import re
from functools import lru_cache
from pathlib import Path

from hami_hal.errors import HalError

from .trace import TraceNode, TracePod

MAX_FILE_BYTES = 64 << 20
MAX_NODES = 100_000
MAX_PODS = 1_000_000
MAX_GPUS_PER_NODE = 16
MAX_CPU_MILLI = 100_000_000  # 100k cores
MAX_MEMORY_MIB = 1 << 30  # 1 PiB
MAX_TIME = 1 << 40
MAX_PROBLEMS = 20
#: The arrival workload is inflated to 130 % of GPU capacity by resampling pods; a list whose pods
#: ask for very little GPU would need millions of arrivals, so that is refused up front.
MAX_ARRIVALS = 500_000
ARRIVAL_RATIO = 1.3
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,252}")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_REQUIRED = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
POD_OPTIONAL = ("gpu_spec", "qos", "pod_phase", "creation_time", "deletion_time", "scheduled_time")
QOS = ("", "LS", "BE", "Burstable", "Guaranteed")
PHASES = ("", "Running", "Pending", "Failed", "Succeeded")


class ListFileError(HalError):
    """A node or pod list is malformed; ``problems`` holds one line per bad field or value."""

    def __init__(self, path: str, problems: list[str], more: int = 0) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{path}: {len(problems) + more} problem(s)"] + [f"  {p}" for p in problems]
        if more:
            lines.append(f"  ... and {more} more")
        super().__init__("\n".join(lines))


class _Collector:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []
        self.more = 0

    def add(self, line: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(line)
        else:
            self.more += 1

    def raise_if_any(self) -> None:
        if self.problems:
            raise ListFileError(self.path, self.problems, self.more)

    def fail(self, line: str) -> ListFileError:
        self.add(line)
        return ListFileError(self.path, self.problems, self.more)


def _show(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _read(path: Path, kind: str, required: tuple[str, ...], optional: tuple[str, ...], max_rows: int,
          bad: _Collector) -> list[tuple[int, dict[str, str]]]:
    """Header-checked rows (line number, row) of a bounded UTF-8 CSV file."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise bad.fail(f"{kind} file: is not a regular file")
        if size > MAX_FILE_BYTES:
            raise bad.fail(f"{kind} file: {size} bytes is more than the limit of {MAX_FILE_BYTES}")
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise bad.fail(f"{kind} file: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise bad.fail(f"{kind} file: more than the limit of {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad.fail(f"{kind} file: byte {exc.start} is not UTF-8") from None
    if "\x00" in text:
        raise bad.fail(f"{kind} file: contains a NUL byte (binary file?)")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise bad.fail(f"{kind} file: header is not CSV ({exc})") from None
    if not header:
        raise bad.fail(f"{kind} file: is empty (a header row is required: {','.join(required)})")
    header = [h.strip() for h in header]
    reader.fieldnames = header
    for col in required:
        if col not in header:
            bad.add(f"header: column {col!r} is missing (required: {','.join(required)})")
    known = set(required) | set(optional)
    for col in header:
        if col not in known:
            bad.add(f"header: column {_show(col)} is not a known column ({','.join(required + optional)})")
    if len(set(header)) != len(header):
        bad.add("header: a column name appears twice")
    bad.raise_if_any()
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for row in reader:
            if len(rows) >= max_rows:
                raise bad.fail(f"{kind} file: more than the limit of {max_rows} rows")
            line = reader.line_num
            if None in row:
                bad.add(f"line {line}: {len(header) + len(row[None])} fields, the header has {len(header)}")
                continue
            if any(v is None for v in row.values()):
                bad.add(f"line {line}: fewer fields than the header's {len(header)}")
                continue
            rows.append((line, {k: v.strip() for k, v in row.items()}))
    except csv.Error as exc:
        raise bad.fail(f"line {reader.line_num}: not valid CSV ({exc})") from None
    if not rows and not bad.problems:
        bad.add(f"{kind} file: has a header but no rows")
    return rows


def _int(row: dict[str, str], col: str, line: int, lo: int, hi: int, bad: _Collector, default: int | None = None) -> int:
    raw = row.get(col, "")
    if raw == "" and default is not None:
        return default
    try:
        value = int(raw)
    except ValueError:
        bad.add(f"line {line}: {col} = {_show(raw)} is not an integer")
        return lo
    if not lo <= value <= hi:
        bad.add(f"line {line}: {col} = {_show(raw)} is outside {lo}..{hi}")
        return lo
    return value


def _model(raw: str, col: str, line: int, bad: _Collector) -> str:
    if not _MODEL.fullmatch(raw):
        bad.add(f"line {line}: {col} = {_show(raw)} is not a GPU model name (letters, digits, . _ -; at most 64)")
    return raw


def _key(path: str | Path, kind: str) -> tuple[str, int, int]:
    """Cache key of a list file (resolved path, mtime, size): an edited file is read again."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ListFileError(str(path), [f"{kind} file: cannot be read ({exc.strerror or exc})"]) from None
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def load_node_file(path: str | Path) -> tuple[TraceNode, ...]:
    """Nodes of an openb-format node list; raises :class:`ListFileError` listing every bad value."""
    return _load_nodes(*_key(path, "nodes"))


@lru_cache(maxsize=8)
def _load_nodes(path: str, _mtime: int, _size: int) -> tuple[TraceNode, ...]:
    bad = _Collector(path)
    rows = _read(Path(path), "nodes", NODE_COLUMNS, (), MAX_NODES, bad)
    out: list[TraceNode] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        name = row["sn"]
        if not _NAME.fullmatch(name):
            bad.add(f"line {line}: sn = {_show(name)} is not a node name (letters, digits, . _ : / -; at most 253)")
        elif name in seen:
            bad.add(f"line {line}: sn = {_show(name)} repeats line {seen[name]}")
        seen.setdefault(name, line)
        cpu = _int(row, "cpu_milli", line, 1, MAX_CPU_MILLI, bad)
        mem = _int(row, "memory_mib", line, 1, MAX_MEMORY_MIB, bad)
        gpus = _int(row, "gpu", line, 0, MAX_GPUS_PER_NODE, bad)
        model = row["model"]
        if gpus or model:
            _model(model, "model", line, bad)
        out.append(TraceNode(name=name, cpu_milli=cpu, memory_mib=mem, gpus=gpus, model=model))
    if out and not any(n.gpus for n in out) and not bad.problems:
        bad.add("nodes file: no node has a GPU (column gpu is 0 everywhere)")
    bad.raise_if_any()
    return tuple(out)


def load_pod_file(path: str | Path) -> tuple[TracePod, ...]:
    """Pods of an openb-format pod list; raises :class:`ListFileError` listing every bad value."""
    return _load_pods(*_key(path, "pods"))


@lru_cache(maxsize=8)
def _load_pods(path: str, _mtime: int, _size: int) -> tuple[TracePod, ...]:
    bad = _Collector(path)
    rows = _read(Path(path), "pods", POD_REQUIRED, POD_OPTIONAL, MAX_PODS, bad)
    out: list[TracePod] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        name = row["name"]
        if not _NAME.fullmatch(name):
            bad.add(f"line {line}: name = {_show(name)} is not a pod name (letters, digits, . _ : / -; at most 253)")
        elif name in seen:
            bad.add(f"line {line}: name = {_show(name)} repeats line {seen[name]}")
        seen.setdefault(name, line)
        cpu = _int(row, "cpu_milli", line, 0, MAX_CPU_MILLI, bad)
        mem = _int(row, "memory_mib", line, 0, MAX_MEMORY_MIB, bad)
        num_gpu = _int(row, "num_gpu", line, 0, MAX_GPUS_PER_NODE, bad)
        milli = _int(row, "gpu_milli", line, 0, 1000, bad)
        if num_gpu == 0 and milli:
            bad.add(f"line {line}: gpu_milli = {milli} needs num_gpu >= 1 (num_gpu is 0)")
        if num_gpu and not milli:
            bad.add(f"line {line}: gpu_milli = 0 with num_gpu = {num_gpu}: a GPU pod needs gpu_milli 1..1000")
        if num_gpu > 1 and milli and milli != 1000:
            bad.add(f"line {line}: gpu_milli = {milli} with num_gpu = {num_gpu}: multi-GPU pods take whole GPUs (1000)")
        if not (cpu or num_gpu):
            bad.add(f"line {line}: cpu_milli and num_gpu are both 0: the pod requests nothing")
        spec_raw = row.get("gpu_spec", "")
        spec = tuple(s.strip() for s in spec_raw.split("|") if s.strip())
        if spec and not num_gpu:
            bad.add(f"line {line}: gpu_spec = {_show(spec_raw)} needs num_gpu >= 1 (num_gpu is 0)")
        for s in spec:
            _model(s, "gpu_spec", line, bad)
        if row.get("qos", "") not in QOS:
            bad.add(f"line {line}: qos = {_show(row['qos'])} is not one of {', '.join(q for q in QOS if q)} or empty")
        if row.get("pod_phase", "") not in PHASES:
            bad.add(f"line {line}: pod_phase = {_show(row['pod_phase'])} is not one of "
                    f"{', '.join(p for p in PHASES if p)} or empty")
        for col in ("creation_time", "deletion_time", "scheduled_time"):
            _int(row, col, line, 0, MAX_TIME, bad, default=0)
        out.append(TracePod(name=name, cpu_milli=cpu, memory_mib=mem, num_gpu=num_gpu, gpu_milli=milli,
                            gpu_spec=spec if num_gpu else ()))
    bad.raise_if_any()
    return tuple(out)


def check_arrivals(path: str, nodes: tuple[TraceNode, ...], pods: tuple[TracePod, ...]) -> None:
    """Refuse a pod list whose inflation to 130 % of the nodes' GPUs would be unbounded or huge."""
    demand = sum(p.gpu_request_milli for p in pods)
    if not demand:
        raise ListFileError(path, ["pods file: no pod requests a GPU (num_gpu is 0 everywhere); "
                                   "the arrival workload is measured in GPU requests"])
    capacity = sum(n.gpus for n in nodes) * 1000
    expected = int(ARRIVAL_RATIO * capacity / (demand / len(pods)))
    if expected > MAX_ARRIVALS:
        raise ListFileError(path, [f"pods file: reaching 130 % of the nodes' {capacity // 1000} GPUs needs about "
                                   f"{expected} arrivals (limit {MAX_ARRIVALS}); give fewer nodes or GPU-heavier pods"])
