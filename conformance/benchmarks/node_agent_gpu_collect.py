"""Turn the GPU run's $OUT (node agent record + conformance matrix) into the dated docs/results records.

    python conformance/benchmarks/node_agent_gpu_collect.py <files_at> [--date 2026-12-04] [--commit SHA]

``<files_at>`` holds ``node/`` (node_agent_gpu_record.py's .json/.md and record.log), ``matrix/``
(capability-matrix.json/.md/.html, run.log) and ``devices.txt``. Writes
``docs/results/<date>-h200-node-agent.{json,md}`` (+ ``.log``) and the folder
``docs/results/<date>-h200-node-agent-matrix/`` with the matrix files and a README naming the command,
the device and the metrics/allocation-usage cell. Refuses a record that says it is a dry run, and a matrix
row that is not real hardware: a simulated result never lands as a GPU record.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
RUN = """export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-build-isolation --no-deps --no-compile --target /tmp/hh ./ ./hami_plugins_nvidia ./conformance
export PYTHONPATH=/tmp/hh:/tmp/site HAMI_HAL_PLUGINS=nvidia; R=$PWD; cd /tmp
python3 $R/conformance/benchmarks/node_agent_gpu_record.py --device 0 --out $OUT/node/<date>-h200-node-agent.json
python3 -m hami_hal.cli conformance run --backend real --out $OUT/matrix"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files_at", type=Path)
    p.add_argument("--date", default="2026-12-04")
    p.add_argument("--commit", default="", help="the commit of main the GPU run used")
    p.add_argument("--results", type=Path, default=RESULTS, help="where the records go (default docs/results)")
    args = p.parse_args(argv)
    results = args.results
    src = args.files_at
    recs = sorted((src / "node").glob("*-node-agent.json"))
    if len(recs) != 1:
        raise SystemExit(f"{src / 'node'}: expected one *-node-agent.json, found {len(recs)}")
    rec = json.loads(recs[0].read_text())
    if rec.get("dry_run"):
        raise SystemExit(f"{recs[0]}: a dry run ({rec['dry_run']}), not a GPU record")
    stem = results / f"{args.date}-h200-node-agent"
    shutil.copyfile(recs[0], stem.with_suffix(".json"))
    shutil.copyfile(recs[0].with_suffix(".md"), stem.with_suffix(".md"))
    if (src / "node" / "record.log").is_file():
        shutil.copyfile(src / "node" / "record.log", stem.with_suffix(".log"))
    matrix = src / "matrix" / "capability-matrix.json"
    cell_line = "no conformance matrix in this run"
    if matrix.is_file():
        m = json.loads(matrix.read_text())
        rows = [e for e in m["entries"] if e["provenance"]["source"] == "real"]
        if not rows:
            raise SystemExit(f"{matrix}: no real-hardware row; not a GPU record")
        folder = results / f"{args.date}-h200-node-agent-matrix"
        folder.mkdir(exist_ok=True)
        for f in sorted((src / "matrix").iterdir()):
            shutil.copyfile(f, folder / f.name)
        if (src / "devices.txt").is_file():
            shutil.copyfile(src / "devices.txt", folder / "devices.txt")
        cells = [c for c in rows[0]["capabilities"] if c["id"] == "metrics/allocation-usage"]
        cell = cells[0] if cells else None
        levels: dict[str, int] = {}
        for c in rows[0]["capabilities"]:
            levels[c["level"]] = levels.get(c["level"], 0) + 1
        cell_line = ("metrics/allocation-usage: " + (f"**{cell['level']}**" if cell else "not in the run")
                     + ("\n\n" + "\n".join(f"- {e}" for e in cell["evidence"]) if cell else ""))
        (folder / "README.md").write_text("\n".join([
            f"# Capability matrix, real row: {rows[0]['model']} — {args.date} (node agent finish, issue #11)", "",
            f"`hami conformance run --backend real` on the device machine{f', commit `{args.commit}`' if args.commit else ''}; "
            f"device: {rows[0]['provenance'].get('device_model')}, driver {rows[0]['provenance'].get('driver_version')}. "
            "Files: capability-matrix.json/.md/.html, run.log, devices.txt.", "",
            "Levels: " + ", ".join(f"{n} {lvl}" for lvl, n in sorted(levels.items())) + ".", "",
            cell_line, "", "Command (repository root; `.whl/` carries the wheels the offline machine lacks):", "",
            "```", RUN.replace("<date>", args.date), "```", ""]))
    print(f"wrote {stem.with_suffix('.json')}, .md" + (
        f"; {args.date}-h200-node-agent-matrix/" if matrix.is_file() else "") + f"\ncriteria: {rec['criteria']}\n{cell_line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
