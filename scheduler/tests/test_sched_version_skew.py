"""A node agent one version ahead of the scheduler (a rolling upgrade) is read, not rejected: fields the scheduler
does not know are dropped (one line per node) and the node places pods as before; a newer *major* format, a huge
or malformed document, and unknown fields posing as known ones are still refused or without effect.

On main (992e0fa) every inventory with one field more was rejected whole (``extra_forbidden``): the node left the
cluster's view until the scheduler was upgraded too."""

from __future__ import annotations

import json
import logging
import time
import urllib.request

import pytest
from hami_scheduler.extender import Extender
from hami_scheduler.state import ClusterState
from sched_fakeapi import FakeApiServer
from sched_testing import NVIDIA, start_stack

from hami_hal.errors import InputError
from hami_hal.hami_compat import HAL_INVENTORY, parse_node
from hami_hal.hami_compat.limits import MAX_VALUE_CHARS
from hami_hal.models import (
    AnnotationKeys,
    Device,
    NodeInventory,
    PartitionKind,
    PartitionModel,
    PartitionTemplate,
    Provenance,
    ResourceFamily,
    VendorInfo,
)
from hami_hal.models.skew import MAX_NAMES_SHOWN, UnknownFieldLog

Z1 = ResourceFamily(common_word="Z1", count="zeta.io/z1", memory="zeta.io/z1-memory", default_memory_mib=0,
                    annotations=AnnotationKeys(node_register="zeta.io/node-register-Z1",
                                               to_allocate="zeta.io/Z1-devices-to-allocate",
                                               allocated="zeta.io/Z1-devices-allocated"))
ZETA = VendorInfo(name="zeta", display_name="Zeta", resources=[Z1], domains=["zeta.io/"])
TEMPLATES = PartitionModel(kind=PartitionKind.TEMPLATES, memory_mib=32768, max_slots=4, templates=[
    PartitionTemplate(name="t6", memory_mib=6144, compute_percent=25),
    PartitionTemplate(name="t12", memory_mib=12288, compute_percent=50),
    PartitionTemplate(name="whole", memory_mib=32768, compute_percent=100)])


def _doc(name: str = "n1") -> dict:
    """The inventory JSON an agent of this version writes for one two-card node."""
    devs = [Device(vendor="zeta", index=i, uuid=f"{name}-Z-{i}", model="z", hami_type="Z1", family="Z1",
                   memory_mib=32768, partition=TEMPLATES, provenance=Provenance(source="real")) for i in range(2)]
    inv = NodeInventory(node=name, source="real", devices=devs, vendors=[ZETA])
    return json.loads(inv.model_dump_json(by_alias=True))


def _newer(doc: dict) -> dict:
    """What a newer agent writes: fields at the top and at every nesting level this scheduler has never seen."""
    doc["future_top"] = {"nested": [1, 2, 3]}
    doc["topology"]["future_topology"] = "x"
    for d in doc["devices"]:
        d["future_device"] = True
        d["partition"]["future_partition"] = 7
        d["partition"]["templates"][1]["future_template"] = {"a": 1}
        d["provenance"]["future_provenance"] = "y"
    doc["vendors"][0]["resources"][0]["future_family"] = "z"
    return doc


def _node(doc: dict, name: str = "n1") -> dict:
    return {"metadata": {"name": name, "annotations": {HAL_INVENTORY: json.dumps(doc)}}}


def _placed(node: dict) -> tuple:
    cluster = ClusterState([NVIDIA, ZETA])
    cluster.upsert_node(node)
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "annotations": {}},
           "spec": {"containers": [{"name": "main", "resources": {"limits": {"zeta.io/z1": "2",
                                                                           "zeta.io/z1-memory": "7000"}}}]}}
    out = Extender(cluster).filter({"Pod": pod, "NodeNames": ["n1"]})
    return out.node_names, [(s.uuid, s.template, s.memory_mib) for s in out.allocation.slices()]


def test_the_agent_writes_its_format_version():
    assert _doc()["format_version"] == 1


def test_an_inventory_from_a_newer_agent_is_read_and_placed_as_before(caplog):
    want = _placed(_node(_doc()))
    assert want == (["n1"], [("n1-Z-0", "t12", 12288), ("n1-Z-1", "t12", 12288)])
    with caplog.at_level(logging.WARNING, logger="hami_hal.models.skew"):
        assert _placed(_node(_newer(_doc()))) == want
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"node n1: {HAL_INVENTORY} has 7 field(s) this version does not know, ignored")
    for name in ("future_top", "devices[].future_device", "devices[].partition.future_partition",
                 "devices[].partition.templates[].future_template", "vendors[].resources[].future_family"):
        assert name in lines[0]


def test_an_absent_format_version_is_the_current_one():
    doc = _doc()
    del doc["format_version"]
    assert parse_node(_node(doc), [ZETA]).format_version == 1


def test_unknown_fields_are_logged_once_per_node_and_bounded(caplog):
    fields = UnknownFieldLog()
    many = tuple(f"f{i:02d}" + "x" * 10 for i in range(40))
    with caplog.at_level(logging.WARNING, logger="hami_hal.models.skew"):
        assert fields.note("node a", HAL_INVENTORY, many)
        assert not fields.note("node a", HAL_INVENTORY, many)  # the same fields again: counted, not logged
        assert fields.note("node b", HAL_INVENTORY, many)
        assert fields.note("node a", HAL_INVENTORY, many[:1])  # the node's agent changed: logged again
    assert fields.documents == 4
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0].endswith(f"(+{40 - MAX_NAMES_SHOWN} more)") and many[MAX_NAMES_SHOWN] not in lines[0]
    assert len(lines[0]) < 400


def test_unknown_field_names_are_cut_and_escaped_in_the_line(caplog):
    doc = _doc()
    doc["x" * 5000] = 1
    doc["evil\nnext line"] = 1
    with caplog.at_level(logging.WARNING, logger="hami_hal.models.skew"):
        parse_node(_node(doc, "n-cut"), [ZETA])
    (line,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in line and "evil\\nnext line" in line and len(line) < 400


@pytest.mark.parametrize("version", [2, 99])
def test_a_newer_major_format_is_refused_with_one_line(version):
    doc = _newer(_doc())
    doc["format_version"] = version
    cluster = ClusterState([NVIDIA, ZETA])
    with pytest.raises(InputError) as exc:
        cluster.upsert_node(_node(doc))
    text = str(exc.value)
    assert "\n" not in text and "n1" not in cluster.nodes
    assert text.startswith(f"node n1: {HAL_INVENTORY}.format_version: {version} is newer than this version reads "
                           "(at most 1)"), text


@pytest.mark.parametrize("version", [0, -1, True, "2", 1.5, None, [2]])
def test_a_malformed_format_version_is_refused(version):
    doc = _doc()
    doc["format_version"] = version
    with pytest.raises(InputError, match=rf"{HAL_INVENTORY}.format_version: .* must be a positive integer"):
        parse_node(_node(doc), [ZETA])


@pytest.mark.parametrize("raw", [
    "{", "[]", "null", '"text"', "[" * 200_000 + "]" * 200_000, "x" * (MAX_VALUE_CHARS + 1),
    json.dumps({**_doc(), "pad": "x" * MAX_VALUE_CHARS}),  # an unknown field does not lift the size bound
], ids=["truncated", "array", "null", "string", "deep", "huge", "huge-unknown"])
def test_a_huge_or_malformed_document_is_still_refused(raw):
    with pytest.raises(InputError) as exc:
        parse_node({"metadata": {"name": "n1", "annotations": {HAL_INVENTORY: raw}}}, [ZETA])
    assert str(exc.value).startswith(HAL_INVENTORY) and "\n" not in str(exc.value)


@pytest.mark.parametrize("change", [
    lambda d: d["devices"][0].update(memory_mib=-1),
    lambda d: d["devices"][0]["partition"].update(memory_mib=10**30),
    lambda d: d["devices"][0]["partition"]["templates"][0].update(compute_percent=101),
    lambda d: d.update(source="anything"),
    lambda d: d["devices"][0].update(uuid="a,b"),
], ids=["device-memory", "partition-memory", "template-percent", "source", "uuid"])
def test_known_fields_stay_strict_next_to_unknown_ones(change):
    doc = _newer(_doc())
    change(doc)
    with pytest.raises(InputError):
        parse_node(_node(doc), [ZETA])


def test_unknown_fields_cannot_override_known_ones():
    doc = _doc()
    dev = doc["devices"][0]
    dev.update({"Memory_MiB": 10**9, "memory_mib ": 10**9, "memoryMib": 10**9, "memory\u200bmib": 10**9})
    dev["partition"].update({"MAX_SLOTS": 1000, "max-slots": 1000})
    doc.update({"_contexts": {"zeta": "forged"}, "__class__": "x", "model_config": {"extra": "allow"},
                "formatVersion": 99, "Format_Version": 99, "__pydantic_extra__": {"node": "other"}})
    inv = parse_node(_node(doc), [ZETA])
    assert inv.format_version == 1 and inv.node == "n1"
    assert inv.devices[0].memory_mib == 32768 and inv.devices[0].partition.max_slots == 4
    assert inv.context("zeta") is None and inv.model_extra is None
    assert json.loads(inv.model_dump_json(by_alias=True)) == _doc()  # nothing unknown reaches the object


def _gauge(url: str) -> float:
    with urllib.request.urlopen(url + "/metrics") as r:
        text = r.read().decode()
    (line,) = [x for x in text.splitlines() if x.startswith("hami_scheduler_documents_with_unknown_fields ")]
    return float(line.split()[1])


def test_documents_with_unknown_fields_are_counted_on_the_metrics_endpoint():
    api = FakeApiServer().start()
    stack = start_stack(api, watch=True)
    try:
        before = _gauge(stack.server.url)
        api.add_node(_node(_newer(_doc("n-metric")), "n-metric"))
        for _ in range(100):
            if "n-metric" in stack.cluster.nodes:
                break
            time.sleep(0.05)
        assert "n-metric" in stack.cluster.nodes and not stack.cluster.rejected
        assert _gauge(stack.server.url) >= before + 1
    finally:
        stack.stop()


def test_refusal_lines_stay_one_short_line_whatever_the_document_holds():
    doc = _doc()
    doc["format_version"] = 10**1000
    with pytest.raises(InputError) as exc:
        parse_node(_node(doc), [ZETA])
    assert len(str(exc.value)) < 300 and "\n" not in str(exc.value)
    doc = _doc()
    doc["topology"]["numa"] = {"a\nb" * 20: "not a number"}  # attacker text in the failing field's path
    with pytest.raises(InputError) as exc:
        parse_node(_node(doc), [ZETA])
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 500


def test_what_the_log_remembers_of_a_subject_is_bounded() -> None:
    # a document may name thousands of unknown fields; the once-per-subject memory keeps only what its line showed
    seen = UnknownFieldLog()
    many = tuple(f"f{i:05d}" for i in range(5000))
    assert seen.note("node n1", "inventory", many) is True
    assert seen.note("node n1", "inventory", many) is False  # the same again: no second line
    [(names, count)] = seen._seen.values()
    assert len(names) == MAX_NAMES_SHOWN and count == 5000
    assert seen.note("node n1", "inventory", many[:-1]) is True  # one field fewer: a new line
