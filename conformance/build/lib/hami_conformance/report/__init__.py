"""Renderings of a CapabilityMatrix: JSON (the document), Markdown (for READMEs) and a static HTML page."""

from __future__ import annotations

from pathlib import Path

from hami_hal.models import CapabilityMatrix

from ..matrix_io import dump_matrix
from .html import render_html
from .markdown import render_markdown

#: Files ``write_reports`` produces in the output folder.
FILES = {"json": "capability-matrix.json", "md": "capability-matrix.md", "html": "capability-matrix.html"}


def write_reports(matrix: CapabilityMatrix, out: Path) -> dict[str, Path]:
    """Write the three renderings into ``out`` (created if needed); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / name for k, name in FILES.items()}
    paths["json"].write_text(dump_matrix(matrix))
    paths["md"].write_text(render_markdown(matrix))
    paths["html"].write_text(render_html(matrix))
    return paths


__all__ = ["FILES", "render_html", "render_markdown", "write_reports"]
