"""Scheduler tests: helpers importable (importlib mode), and one closing line on how to run the tests
that skipped for want of the openb trace."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from sched_trace_skip import trace_skip_line  # noqa: E402 - needs the path above


def pytest_terminal_summary(terminalreporter) -> None:
    line = trace_skip_line(terminalreporter.stats.get("skipped", []))
    if line:
        terminalreporter.write_line(line, yellow=True)
