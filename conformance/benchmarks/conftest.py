"""Benchmark fixtures: the installed plugins' devices, and a result file kept per run.

Run with ``make bench`` (or ``pytest --benchmark-only --benchmark-enable conformance/benchmarks``).
Every figure is written to ``conformance/benchmarks/results/<date>-<host>.json`` together with where it
came from (real device and driver, or simulated profile) and this machine's CPU.
"""

from __future__ import annotations

import json
import os
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

RESULTS = Path(__file__).parent / "results"
_records: list[dict] = []


@pytest.fixture(scope="session")
def bench_record():
    """Append one result row; rows are written to the results file at the end of the session."""
    return _records.append


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _records:
        return
    RESULTS.mkdir(exist_ok=True)
    now = datetime.now(UTC)
    host = os.environ.get("NODE_NAME") or socket.gethostname()
    path = RESULTS / f"{now:%Y-%m-%d}-{host}.json"
    path.write_text(json.dumps({
        "generated_at": now.isoformat(), "host": host, "cpu": _cpu(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "results": _records,
    }, indent=2, ensure_ascii=False) + "\n")
    session.config.get_terminal_writer().line(f"benchmark results written to {path}")
