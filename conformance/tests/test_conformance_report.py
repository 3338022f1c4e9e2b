"""The renderings: HTML structure (parsed), provenance banners, Markdown table, and a headless screenshot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conformance_matrices import SIM, cell, entry, matrix, overshoot
from hami_conformance.report import FILES, render_html, render_markdown, write_reports

from hami_hal.models import Level, Requirement


class Cells(HTMLParser):
    """Collects the matrix cells, behaviour rows and banners of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.cells: list[dict] = []
        self.banners: list[tuple[str, str]] = []
        self._banner: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "tr" and "data-behaviour" in a:
            self.rows.append(a["data-behaviour"])
        if tag == "td" and "cell" in classes:
            self.cells.append({"row": self.rows[-1], "classes": classes, "title": a.get("title", ""),
                               "entry": a.get("data-entry")})
        if tag == "div" and "banner" in classes:
            self._banner = [" ".join(classes)]
            self._depth = 1
        elif self._banner is not None and tag == "div":
            self._depth += 1

    def handle_endtag(self, tag):
        if self._banner is not None and tag == "div":
            self._depth -= 1
            if self._depth == 0:
                self.banners.append((self._banner[0], "".join(self._banner[1:])))
                self._banner = None

    def handle_data(self, data):
        if self._banner is not None:
            self._banner.append(data)


def sample():
    real = entry(cells=[
        cell("partition/no-overcommit", Level.SUPPORTED),
        cell("isolation/memory-hard", Level.PARTIAL, measurements=[overshoot(64)], notes="overshoot"),
        cell("topology/links", Level.UNSUPPORTED, Requirement.SHOULD, evidence=["0/28 pairs linked"]),
        cell("partition/templates-exact", Level.NOT_APPLICABLE, notes="no templates"),
        cell("isolation/priority", Level.UNVERIFIED, Requirement.SHOULD),
    ])
    sim = entry("sim-node", prov=SIM, cells=[cell("partition/no-overcommit", Level.SUPPORTED)])
    return matrix(real, sim)


def parse(html: str) -> Cells:
    p = Cells()
    p.feed(html)
    return p


def test_one_cell_per_behaviour_per_row_with_a_class_per_level():
    m = sample()
    page = parse(render_html(m))
    assert page.rows == ["partition/no-overcommit", "partition/templates-exact", "isolation/memory-hard",
                         "isolation/priority", "topology/links"]  # catalogue order
    assert len(page.cells) == len(page.rows) * len(m.entries)
    by = {(c["row"], c["entry"]): c for c in page.cells}
    assert "level-partial" in by[("isolation/memory-hard", "1")]["classes"]
    assert "level-unsupported" in by[("topology/links", "1")]["classes"]
    assert "level-not-applicable" in by[("partition/templates-exact", "1")]["classes"]
    assert "level-unverified" in by[("isolation/priority", "1")]["classes"]
    assert "missing" in by[("topology/links", "2")]["classes"]  # the simulated row did not run it
    assert "memory overshoot = 64 MiB (target <= 0) — 4 GiB slice" in by[("isolation/memory-hard", "1")]["title"]


def test_provenance_banners_say_real_and_simulated_prominently():
    page = parse(render_html(sample()))
    kinds = {cls: text for cls, text in page.banners}
    assert "real: NVIDIA H100 80GB HBM3, driver 580.95.05, runtime 13.0" in kinds["banner real"]
    assert "SIMULATED — profile nvidia-8xh100" in kinds["banner simulated"]
    assert "Never read them as hardware results" in kinds["banner simulated"]


def test_page_is_self_contained_and_escapes_evidence():
    m = matrix(entry(cells=[cell("topology/links", Level.PARTIAL, Requirement.SHOULD,
                                 evidence=["<script>alert(1)</script>"])]))
    html = render_html(m)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "http://" not in html and "https://" not in html  # no external CSS, fonts or scripts


def test_markdown_has_a_row_per_behaviour_and_labels_provenance():
    md = render_markdown(sample())
    assert "| `isolation/memory-hard` | MUST | 🟡 partial<br>memory overshoot = 64 MiB (target <= 0) |" in md
    assert "**SIMULATED** simulated: profile nvidia-8xh100" in md and "**REAL** real: NVIDIA H100" in md


def test_write_reports_writes_the_three_files(tmp_path):
    paths = write_reports(sample(), tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == sorted(FILES.values())
    assert all(p.stat().st_size > 200 for p in paths.values())


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_page_renders_in_headless_chromium(tmp_path):
    paths = write_reports(sample(), tmp_path)
    shot = tmp_path / "matrix.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             f"--screenshot={shot}", "--window-size=1400,1000", paths["html"].resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    data = Path(shot).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a blank page compresses far smaller
