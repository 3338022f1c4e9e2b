"""Audit 5: files the scheduler's commands read (``webhook --device-config``, ``--vendors``) give one line
naming the flag and the file, exit 2, never a traceback.

Found attacking main at 0fc1629 (record: docs/results/2026-12-05-audit5.md): a device-config YAML nested
50,000 deep or not UTF-8, and a ``--vendors`` file that is not UTF-8, ended in a traceback; ``--vendors``
read a file of any size whole; its errors said "1 validation error for list[VendorInfo]" without where.
"""

from __future__ import annotations

import json

import pytest
from hami_scheduler.cli import main as hami_scheduler
from hami_scheduler.device_config import read_device_config
from hami_scheduler.server import MAX_VENDORS_FILE
from sched_testing import NVIDIA

from hami_hal.errors import InputError

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))

DEVICE_CONFIG = [
    ("nested 50,000 deep", b"[" * 50_000 + b"]" * 50_000, "nested deeper than 64"),
    ("not UTF-8", b"nvidia: {defaultMemory: \xff}\n", "utf-8"),
    ("an alias bomb", BOMB.encode(), "alias bomb"),
    ("two documents", b"a: 1\n---\nb: 2\n", "documents"),
    ("a 2 MiB file", b"#" * (2 << 20), "larger than"),
    ("defaultMemory 10**40", b"nvidia: {defaultMemory: 10000000000000000000000000000000000000000}\n", "defaultMemory"),
]


def run(capsys, argv: list[str]) -> tuple[int, str]:
    rc = hami_scheduler(argv)
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    return rc, lines[0]


@pytest.fixture
def vendors_file(tmp_path):
    f = tmp_path / "vendors.json"
    f.write_text(json.dumps([NVIDIA.model_dump(mode="json", by_alias=True)]))
    return f


@pytest.mark.parametrize(("what", "data", "why"), DEVICE_CONFIG, ids=[d[0] for d in DEVICE_CONFIG])
def test_webhook_device_config_bad_file(tmp_path, what, data, why):
    cfg = tmp_path / "device-config.yaml"
    cfg.write_bytes(data)
    with pytest.raises(InputError) as err:  # not through the CLI: a file accepted by mistake would serve forever
        read_device_config([NVIDIA], str(cfg))
    assert "device-config" in str(err.value) and why in str(err.value) and "\n" not in str(err.value)


def test_webhook_device_config_error_is_one_line_from_the_cli(tmp_path, capsys, vendors_file):
    cfg = tmp_path / "device-config.yaml"
    cfg.write_bytes(b"[" * 50_000 + b"]" * 50_000)  # a traceback before the fix, refused by any version
    rc, line = run(capsys, ["webhook", "--vendors", str(vendors_file), "--device-config", str(cfg),
                            "--bind", "127.0.0.1:0"])
    assert rc == 2 and "--device-config" in line and "nested deeper" in line


VENDORS = [
    ("not UTF-8", b"\xff\xfe[]", "Invalid JSON"),
    ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, "recursion limit"),
    ("a 5,000-digit integer", b"[" + b"9" * 5000 + b"]", "number out of range"),
    ("an object", b'{"name": "nvidia"}', "valid array"),
    ("a vendor without resources", b'[{"name": "x"}]', "at 0."),
]


@pytest.mark.parametrize(("what", "data", "why"), VENDORS, ids=[v[0] for v in VENDORS])
@pytest.mark.parametrize("command", ["webhook", "serve"])
def test_vendors_bad_file(tmp_path, capsys, command, what, data, why):
    f = tmp_path / "vendors.json"
    f.write_bytes(data)
    argv = [command, "--vendors", str(f), "--bind", "127.0.0.1:0"]
    if command == "serve":
        argv += ["--api-server", "http://127.0.0.1:9"]  # refused before any API call
    rc, line = run(capsys, argv)
    assert rc == 2 and "--vendors" in line and why in line, line


def test_vendors_oversized_file_is_refused_before_reading(tmp_path, capsys):
    f = tmp_path / "vendors.json"
    with open(f, "wb") as fh:
        fh.truncate(MAX_VENDORS_FILE + 1)
    rc, line = run(capsys, ["webhook", "--vendors", str(f), "--bind", "127.0.0.1:0"])
    assert rc == 2 and "larger than" in line
