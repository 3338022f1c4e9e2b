"""Text from outside (annotations, tool output, ports) counts as a number only in ASCII 0-9: '¹' passed
``str.isdigit()`` and then crashed ``int()`` with a ValueError in place of the one-line error (found by the
Ascend parser fuzz test, 2026-12-05)."""

from __future__ import annotations

import pytest

from hami_hal.digits import is_digits
from hami_hal.errors import InputError
from hami_hal.hami_compat.checks import int_field
from hami_hal.node.allocator import _bind_time
from hami_hal.requests.parser import SCORING_WEIGHTS_ANNOTATION, _check_scoring_weights
from hami_hal.vendor_tool import ToolError

ODD_DIGITS = ["¹", "²³", "٣", "１", "1¹", "-1", " 1", ""]


@pytest.mark.parametrize("text", ["0", "7", "0123456789"])
def test_plain_digits_are_digits(text: str) -> None:
    assert is_digits(text)


@pytest.mark.parametrize("text", ODD_DIGITS)
def test_other_digit_characters_are_not(text: str) -> None:
    assert not is_digits(text)


@pytest.mark.parametrize("text", ["¹", "٣"])
def test_scoring_weights_annotation_with_odd_digits_is_one_input_error(text: str) -> None:
    with pytest.raises(InputError, match="slot=<int>"):
        _check_scoring_weights({SCORING_WEIGHTS_ANNOTATION: f"slot={text},core=1,memory=1"})


@pytest.mark.parametrize("text", ["¹", "-²"])
def test_register_integer_field_with_odd_digits_is_one_input_error(text: str) -> None:
    with pytest.raises(InputError, match="must be an integer"):
        int_field("devmem", text, 0, 10)


def test_bind_time_annotation_with_odd_digits_counts_as_unknown() -> None:
    assert _bind_time({"metadata": {"annotations": {"hami.io/bind-time": "¹²"}}}) == 1 << 62


def test_ascend_chip_map_with_odd_digit_logic_id_is_one_tool_error() -> None:
    from hami_plugins_ascend.npu_smi_parse import parse_chip_map

    text = "NPU ID  Chip ID  Logic ID  Chip Name\n0       0        ¹         Ascend 910B3\n"
    with pytest.raises(ToolError, match="logic id"):
        parse_chip_map(text)


def test_kunlun_integer_with_odd_digits_is_one_tool_error() -> None:
    from hami_plugins_kunlun.xpusmi import _int

    with pytest.raises(ToolError, match="not a non-negative integer"):
        _int("¹", "memory", 10)
