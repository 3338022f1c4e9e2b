"""The shared pieces CLI-driven plugins build on: tool lookup and runner (hami_hal.vendor_tool) and the
real-or-fake port cache (hami_hal.tool_ports). Stand-in scripts play the tool."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from hami_hal.context import NodeContext
from hami_hal.errors import BackendUnavailable, HalError, InputError
from hami_hal.tool_ports import ToolPorts, timeout_from_config
from hami_hal.vendor_tool import C_LOCALE, DRIVER_WORDING, ToolError, find_tool, run_tool


def _script(path, body: str, mode: int = 0o755) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return str(path)


def test_candidates_come_before_path_and_must_be_executable(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    on_path = _script(tmp_path / "bin" / "xtool", "true\n")
    not_exec = _script(tmp_path / "plain", "true\n", mode=0o644)
    vendor = _script(tmp_path / "vendor-xtool", "true\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_tool("xtool", candidates=[not_exec, vendor]) == vendor
    assert find_tool("xtool", candidates=[not_exec]) == on_path
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BackendUnavailable, match=r"^xtool not found \(looked on PATH and in .*plain\)$"):
        find_tool("xtool", candidates=[not_exec])


def test_label_stdin_and_env_reach_the_tool(tmp_path):
    tool = _script(tmp_path / "t", 'read line; echo "$line $LC_ALL"\n')
    assert run_tool([tool], stdin="hello\n", env=C_LOCALE, label="t") == "hello C\n"
    with pytest.raises(ToolError, match=r"^t --x: exit status 4: first$"):
        run_tool([_script(tmp_path / "f", "echo first >&2; echo last >&2; exit 4\n"), "--x"], label="t --x")


def test_driver_wording_quotes_the_last_stderr_line_and_names_a_hang(tmp_path):
    failing = _script(tmp_path / "f", "echo first >&2; echo last >&2; exit 4\n")
    with pytest.raises(ToolError, match=r"^f: exited with status 4: last$"):
        run_tool([failing], label="f", wording=DRIVER_WORDING)
    with pytest.raises(ToolError) as err:
        run_tool([_script(tmp_path / "h", "sleep 30\n")], timeout_s=0.3, label="h", wording=DRIVER_WORDING)
    assert str(err.value) == "h: timed out after 0.3 s (tool or driver hung)"


def test_missing_or_unexecutable_binary_is_named(tmp_path):
    with pytest.raises(ToolError, match=r"absent not found$"):
        run_tool([str(tmp_path / "absent")])
    if os.geteuid() != 0:  # root may run anything
        with pytest.raises(ToolError, match=r"plain is not executable$"):
            run_tool([_script(tmp_path / "plain", "true\n", mode=0o644)])


@pytest.mark.parametrize("value", [0, -1, 301, True, "10"])
def test_bad_timeout_is_one_line_naming_the_field(value):
    with pytest.raises(InputError, match=r"vendorx\.tool_timeout_s"):
        timeout_from_config({"vendorx": {"tool_timeout_s": value}}, "vendorx", "tool_timeout_s", 10.0)


def test_timeout_default_and_value():
    assert timeout_from_config({}, "vendorx", "t", 10.0) == 10.0
    assert timeout_from_config({"vendorx": "junk"}, "vendorx", "t", 10.0) == 10.0
    assert timeout_from_config({"vendorx": {"t": 2}}, "vendorx", "t", 10.0) == 2.0


def _node(name: str, *uuids: str):
    return SimpleNamespace(name=name, devices=[SimpleNamespace(uuid=u) for u in uuids])


def test_fakes_are_kept_per_node_and_the_oldest_dropped():
    made = []
    ports = ToolPorts(make_real=lambda ctx: ("real", ctx.node_name), make_fake=lambda n: made.append(n) or object(),
                      wrap_fake=lambda f: ("port", f), label="X", max_fakes=2)
    a, b, c = _node("a", "u1"), _node("b", "u2"), _node("c", "u3")
    first = ports.fake_for(a)
    assert ports.fake_for(_node("a", "u1")) is first and len(made) == 1
    ports.fake_for(b)
    ports.fake_for(a)  # a is now the most recently used
    ports.fake_for(c)  # drops b
    assert [key[0] for key in ports.fakes] == ["a", "c"]
    assert ports.port_for(NodeContext("sim", "a", sim=a)) == ("port", first)
    with pytest.raises(HalError, match="^simulated X context carries no simulated node$"):
        ports.port_for(NodeContext("sim", "a"))


def test_real_port_is_built_once_and_replaceable():
    ports = ToolPorts(make_real=lambda ctx: object(), make_fake=lambda n: n, wrap_fake=lambda f: f, label="X")
    ctx = NodeContext("real", "n1")
    real = ports.port_for(ctx)
    assert ports.port_for(ctx) is real
    ports.use_real("stand-in")
    assert ports.port_for(ctx) == "stand-in"
    ports.reset()
    assert ports.port_for(ctx) is not real and not ports.fakes
