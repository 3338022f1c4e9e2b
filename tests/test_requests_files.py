"""Pod files and Kubernetes quantities: clean one-line errors, exact integers."""

from __future__ import annotations

import pytest

from hami_hal.errors import InputError
from hami_hal.requests import load_pod_file, load_pod_text, parse_quantity


@pytest.mark.parametrize(("text", "value"), [
    ("10", 10), ("1k", 1000), ("1Ki", 1024), ("2Mi", 2 * 2**20), ("1Gi", 2**30), ("3e2", 300), ("5E1", 50),
    ("1.5k", 1500), ("2000m", 2), ("+7", 7), ("0", 0), ("-3", -3),
])
def test_quantity_strings(text, value):
    assert parse_quantity(text, "f") == value


@pytest.mark.parametrize(("value", "why"), [
    ("500m", "whole number"), ("1.5", "whole number"), ("10 Gi", "quantity"), ("abc", "quantity"),
    ("", "quantity"), (None, "not a number"), (True, "not a number"), ([1], "not a number"), (2.5, "whole number"),
])
def test_quantity_errors_name_the_field(value, why):
    with pytest.raises(InputError) as exc:
        parse_quantity(value, 'limits["x"]')
    assert exc.value.field == 'limits["x"]' and why in str(exc.value)


def test_load_yaml_and_json(tmp_path):
    y = tmp_path / "p.yaml"
    y.write_text("kind: Pod\nmetadata: {name: a}\n")
    j = tmp_path / "p.json"
    j.write_text('{"kind": "Pod", "metadata": {"name": "b"}}')
    assert load_pod_file(y)["metadata"]["name"] == "a"
    assert load_pod_file(str(j))["metadata"]["name"] == "b"


def test_malformed_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("kind: Pod\nmetadata:\n  name: [unclosed\n  x: 1\n")
    with pytest.raises(InputError) as exc:
        load_pod_file(f)
    assert str(f) in exc.value.field and "line" in exc.value.field and "not valid YAML" in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(("text", "why"), [
    ("", "is empty"), ("- 1\n- 2\n", "not a mapping"), ("a: 1\n---\nb: 2\n", "more than one document"),
])
def test_documents_that_are_not_one_pod(text, why):
    with pytest.raises(InputError, match=why):
        load_pod_text(text, "x.yaml")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_pod_file(tmp_path / "nope.yaml")
