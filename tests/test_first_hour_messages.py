"""What a new user meets in the first hour says what to do: a memory value in the wrong unit names the
unit, memory given twice says which one wins, a command of an absent distribution says what to install,
and the documentation stands on its own (no pointer outside the repository)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from hami_hal.errors import InputError
from hami_hal.requests.parser import parse_pod_detailed

cli_main = importlib.import_module("hami_hal.cli.main")
REPO = Path(__file__).resolve().parents[1]


def _pod(limits: dict) -> dict:
    return {"kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "main", "resources": {"limits": limits}}]}}


def test_memory_with_a_binary_suffix_names_the_unit_and_the_value(acme_vendor):
    with pytest.raises(InputError) as err:
        parse_pod_detailed(_pod({"acme.example/xpu": 1, "acme.example/xpu-mem": "10Gi"}), [acme_vendor])
    msg = str(err.value)
    assert msg.startswith('spec.containers[0].resources.limits["acme.example/xpu-mem"]: 10737418240 is too large')
    assert "counts MiB" in msg and "suffix such as Gi" in msg and "write 10240 for 10 GiB" in msg
    assert "\n" not in msg


def test_memory_and_percentage_together_warn_and_memory_wins(acme_vendor):
    parsed = parse_pod_detailed(_pod({"acme.example/xpu": 1, "acme.example/xpu-mem": 4096,
                                      "acme.example/xpu-mem-percentage": 50}), [acme_vendor])
    (req,) = parsed.request.containers[0].requests
    assert req.memory_for(32768) == 4096  # HAMi's Fit: memory over the percentage
    (line,) = parsed.warnings
    assert '"acme.example/xpu-mem-percentage"]: 50 is ignored' in line and "4096 MiB" in line
    # Either one alone: no warning.
    alone = parse_pod_detailed(_pod({"acme.example/xpu": 1, "acme.example/xpu-mem": 4096}), [acme_vendor])
    assert alone.warnings == []


@pytest.mark.parametrize(("command", "dist"), [("conformance", "hami-conformance"), ("scheduler", "hami-scheduler")])
def test_command_of_an_absent_distribution_says_what_to_install(monkeypatch, capsys, command, dist):
    monkeypatch.setattr(cli_main, "entry_points", lambda group: [])
    assert cli_main.main([command, "run", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"pip install {dist}" in err[0] and "invalid choice" not in err[0]
    assert cli_main.main([command, "--help"]) == 2
    assert f"pip install {dist}" in capsys.readouterr().err


def test_installed_distribution_replaces_the_stand_in():
    pytest.importorskip("hami_conformance")
    parser = cli_main.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert "not installed" not in sub.choices["conformance"].format_help()


def test_metrics_without_prometheus_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails as when not installed
    monkeypatch.setattr(cli_main, "entry_points", lambda group: [])
    monkeypatch.setenv("HAMI_HAL_PLUGIN_MODULES", "acme_plugin")
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "acme")
    assert cli_main.main(["metrics", "dump"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'hami-hal[metrics]'" in err[0]


def _repo_docs() -> list[Path]:
    """Every file a user reads: Markdown, examples, and the comments of the packaged YAML/config files."""
    skip = {".venv", ".git", "node_modules", "build", "dist", "hami-out"}
    out = []
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO).parts
        # hidden folders (.git, .venv, scratch copies such as .gpu/) are not what a user reads
        if not path.is_file() or any(p in skip or p.startswith(".") or p.endswith(".egg-info") for p in rel):
            continue
        if path.suffix in {".md", ".yaml", ".yml", ".txt", ".rst", ".html"} or path.name in {"Makefile"}:
            out.append(path)
    return out


OUTSIDE = re.compile(r"\.\./shared|shared/(reference|data)|hami-compat\.md|kubernetes-contracts\.md|scheduling-benchmark\.md|style-anchors\.md")


def test_docs_never_point_outside_the_repository():
    docs = _repo_docs()
    assert any(p.name == "README.md" for p in docs) and any(p.parent.name == "examples" for p in docs)
    bad = [f"{p.relative_to(REPO)}:{i}: {line.strip()}"
           for p in docs for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
           if OUTSIDE.search(line)]
    assert not bad, "docs point outside the repository:\n" + "\n".join(bad)
