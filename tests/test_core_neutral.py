"""The core knows no vendor: no vendor name, vendor library or fabric term in hami_hal/ (issue 10).

Docs and the acme test plugin may name vendors; the shipped core may not. Vendor shapes (link kinds,
PCIe levels of one library, mode defaults) live in the plugins.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "hami_hal"
#: Vendor names, their libraries and fabrics, and their device-family words.
FORBIDDEN = re.compile(
    r"nvidia|cuda|nvml|nvlink|nvswitch|\bMIG\b|ascend|huawei|hccs|\bnpu|hygon|\bdcu\b|kunlun|baidu|"
    r"cambricon|\bmlu\b|metax|sgpu|iluvatar|enflame|\bgcu\b|mthreads|moore threads|\bamd\b|biren|vastai|"
    r"neuron|\bxid",
    re.IGNORECASE,
)


def _core_files() -> list[Path]:
    return [p for p in CORE.rglob("*") if p.is_file() and p.suffix in (".py", ".json", ".yaml", ".yml", ".md")
            and "__pycache__" not in p.parts]


def test_no_vendor_term_in_the_core():
    hits = []
    for path in _core_files():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in FORBIDDEN.finditer(line):
                # "mig" appears inside HAMi's wire reason CardMigTopologyInfeasible only with a capital M.
                hits.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)!r} in {line.strip()[:90]}")
    assert not hits, f"{len(hits)} vendor term(s) in hami_hal/, first: " + "; ".join(hits[:5])


def test_the_grep_finds_what_it_should(tmp_path):
    assert FORBIDDEN.search("LinkKind.NVLINK") and FORBIDDEN.search("a MIG instance")
    assert FORBIDDEN.search("huawei.com/vnpu-mode") and FORBIDDEN.search("metax-tech.com/sgpu")
    assert not FORBIDDEN.search("CardMigTopologyInfeasible") and not FORBIDDEN.search("acme.example/xpu-mem")


def test_no_process_environment_rewriting_in_the_core_or_suite():
    """Injected faults and profiles go through Hal.add_profiles, never through os.environ writes."""
    writes = re.compile(r"os\.environ\[[^\]]+\]\s*=|os\.environ\.(pop|update|setdefault)\(|putenv\(")
    shipped = [*_core_files(), *(ROOT / "conformance" / "hami_conformance").rglob("*.py"),
               *(ROOT / "scheduler" / "hami_scheduler").rglob("*.py")]
    allowed = {CORE / "testing" / "helpers.py"}  # isolates a test's environment, restoring it after
    hits = [str(p.relative_to(ROOT)) for p in shipped if p.suffix == ".py" and p not in allowed
            and writes.search(p.read_text())]
    assert not hits, hits
