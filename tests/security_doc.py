"""Generated sections of docs/security.md: tests render their evidence as tables and compare them here.

A section sits between ``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->``. When
the table a test produced differs from the file, the test fails and says how to refresh it:
``HAMI_UPDATE_DOCS=1 python -m pytest <the test>`` rewrites the section (then review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "security.md"


def cell(text: object, limit: int = 260) -> str:
    s = str(text).replace("|", "\\|").replace("\n", " ")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def table(header: list[str], rows: list[list[object]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def check_section(name: str, body: str) -> None:
    """Assert docs/security.md holds ``body`` in section ``name`` (rewrite it with HAMI_UPDATE_DOCS=1)."""
    begin, end = f"<!-- BEGIN GENERATED: {name} -->\n", f"<!-- END GENERATED: {name} -->"
    text = DOC.read_text()
    assert begin in text and end in text, f"docs/security.md lacks the markers of section {name!r}"
    head, rest = text.split(begin, 1)
    current, tail = rest.split(end, 1)
    if current == body:
        return
    if os.environ.get("HAMI_UPDATE_DOCS") == "1":
        DOC.write_text(head + begin + body + end + tail)
        return
    raise AssertionError(f"docs/security.md section {name!r} is out of date; refresh with "
                         f"HAMI_UPDATE_DOCS=1 python -m pytest <this test> and review the diff")
