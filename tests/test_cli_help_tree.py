"""Every ``--help`` of every command and subcommand renders (argparse formats help lazily, so a bad
``%`` or a broken default only shows when a user asks for it)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hami_hal.cli.main import build_parser


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """The parser and every sub-parser below it, with the words that reach it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias of a command already walked
                    continue
                seen.add(id(sub))
                yield from walk(sub, (*path, name))


def _trees() -> list[tuple[str, argparse.ArgumentParser]]:
    trees = [("hami", build_parser())]
    try:
        from hami_scheduler.cli import build_parser as scheduler_parser
    except ImportError:
        pass
    else:
        trees.append(("hami-scheduler", scheduler_parser()))
    return trees


def test_every_help_renders():
    rendered = []
    for prog, root in _trees():
        for path, parser in walk(root):
            text = parser.format_help()  # raises on a bad '%' or format spec
            assert text.startswith("usage:"), (prog, path)
            rendered.append((prog, *path))
            parser.format_usage()
    names = {" ".join(p) for p in rendered}
    # The tree reaches the nested commands of the other distributions when they are installed.
    assert "hami devices" in names and "hami metrics dump" in names
    if any(prog == "hami-scheduler" for prog, _ in _trees()):
        assert {"hami scheduler plot", "hami-scheduler trace fetch", "hami-scheduler simulate"} <= names


@pytest.mark.parametrize("argv", [["hami_hal.cli", "--help"], ["hami_scheduler.cli", "--help"],
                                  ["hami_scheduler.cli", "plot", "--help"], ["hami_conformance", "--help"],
                                  ["hami_conformance", "run", "--help"]])
def test_help_exits_zero_from_the_command_line(argv):
    pytest.importorskip(argv[0].split(".")[0])
    proc = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:") and "Traceback" not in proc.stderr
