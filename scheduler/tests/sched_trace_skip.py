"""The one skip reason of every test that needs the openb trace, and the line pytest prints for them."""

from __future__ import annotations

from hami_scheduler.sim.trace import default_trace_dir

TRACE_SKIP_REASON = (f"openb trace not in {default_trace_dir()}: run `hami-scheduler trace fetch` "
                     "or set HAMI_TRACE_DIR to a copy")


def trace_skip_line(skipped_reports) -> str | None:
    """One summary line for the tests skipped for want of the trace (None when none were)."""
    n = sum(1 for r in skipped_reports if TRACE_SKIP_REASON in str(getattr(r, "longrepr", "")))
    return f"{n} simulator test(s) skipped: {TRACE_SKIP_REASON}" if n else None
