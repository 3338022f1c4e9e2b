"""One place for HAMi's wire format: every generic HAMi annotation key is spelled once, in hami_compat."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [ROOT / "hami_hal", ROOT / "scheduler" / "hami_scheduler", ROOT / "conformance" / "hami_conformance"]
CODEC = ROOT / "hami_hal" / "hami_compat"


def test_generic_hami_keys_are_spelled_only_in_the_codec():
    literal = re.compile(r"""["']hami\.io/[a-z-]+["']""")
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for base in SHIPPED for p in base.rglob("*.py")
            if CODEC not in p.parents for m in literal.finditer(p.read_text())]
    assert not hits, hits


def test_no_second_allocation_string_encoder():
    """The ``<uuid>,<Type>,<mem>,<cores>:`` form is built in hami_compat/allocation.py only."""
    pattern = re.compile(r"\{[a-z_.]*uuid\},\{[a-z_.]*common_word\},")
    hits = [str(p.relative_to(ROOT)) for base in SHIPPED for p in base.rglob("*.py")
            if pattern.search(p.read_text())]
    assert hits == ["hami_hal/hami_compat/allocation.py"], hits


def test_node_lock_and_handshake_formats_live_in_the_codec():
    lock = re.compile(r"\},\{[a-z_]*ns[a-z_]*\},\{|Requesting_|Deleted_")
    hits = [str(p.relative_to(ROOT)) for base in SHIPPED for p in base.rglob("*.py")
            if CODEC not in p.parents and lock.search(p.read_text())]
    assert not hits, hits
