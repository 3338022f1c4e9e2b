"""The plugin guide's snippets stay true: its YAML profiles compose, its TOML and Python parse."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import yaml

from hami_hal import ENTRY_POINT_GROUP
from hami_hal.simulation import ProfileCatalog

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "writing-a-plugin.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_guide_profiles_compose():
    (text,) = _blocks("yaml")
    cat = ProfileCatalog()
    for doc in yaml.safe_load_all(text):
        cat.add(doc)
    node = cat.compose("acme-mixed-4")
    assert cat.default_nodes() == ["acme-mixed-4"] and [d.fault for d in node.devices] == [None, "xid-79"]


def test_guide_pyproject_declares_the_entry_point():
    (text,) = _blocks("toml")
    data = tomllib.loads(text)
    assert data["project"]["entry-points"][ENTRY_POINT_GROUP] == {"acme": "hami_plugins_acme.plugin"}


def test_guide_python_snippets_parse():
    blocks = _blocks("python")
    assert len(blocks) >= 2
    for code in blocks:
        ast.parse(code)


def _model_blocks() -> list[str]:
    """The guide's data snippets (section 5): they build hami_hal models and must validate."""
    return [b for b in _blocks("python") if "from hami_hal.models import" in b and "hami_plugins_acme" not in b
            and "@hookimpl" not in b]


def test_guide_rule_snippets_build_valid_models():
    found = _guide_models()
    assert {"shares", "vnpu", "vxpu", "rules", "pod_annotations"} <= set(found)
    assert found["vnpu"].smallest_template(9000).name == "vir05_1c_16g"  # smallest template ≥ request
    assert found["rules"].groups == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(found["pod_annotations"]) == 3


def _guide_models() -> dict:
    ns: dict = {}
    for code in _model_blocks():
        exec(compile(code, str(GUIDE), "exec"), ns)  # noqa: S102 - our own documentation
    return ns


def test_guide_walkthrough_on_the_engine_and_the_acme_plugin(acme, inv):
    """Walk the acme plugin (and the guide's slices example) through section 5: every kind of rule the
    guide documents is data the engine applies, with no core change."""
    from hami_hal.engine import NodeState
    from hami_hal.models import (
        AttributeMatch,
        ContainerRequest,
        Device,
        PartitionKind,
        PodRequest,
        Provenance,
        ResourceRequest,
    )

    vendor = acme.hami_hal_vendor()
    shares, cards = vendor.resources
    # 5.1 templates: acme's T200 takes the smallest template that holds a request.
    t200 = next(d for d in inv.devices if d.partition.kind is PartitionKind.TEMPLATES)
    req = ResourceRequest(vendor="acme", common_word="ACME", count=1, memory_mib=9000)
    pod = PodRequest(name="t", containers=[ContainerRequest(name="c", index=0, requests=[req])])
    assert NodeState("n", [t200]).fit_pod(pod).allocation.slices()[0].template == "t2.16gb"
    # 5.1 slices: the guide's model keeps one size per card and the node's handle budget.
    part = _guide_models()["vxpu"]
    devs = [Device(vendor="v", index=i, uuid=f"K{i}", model="K", hami_type="K", memory_mib=98304, partition=part,
                   provenance=Provenance(source="simulated", profile="guide")) for i in range(8)]

    def vxpu(count, mem, name):
        r = ResourceRequest(vendor="v", common_word="XPU", count=count, memory_mib=mem)
        return PodRequest(name=name, containers=[ContainerRequest(name="c", index=0, requests=[r])])

    node = NodeState("n", devs)
    node.allocate(vxpu(1, 20000, "quarter"))
    assert node.fit_pod(vxpu(8, 24576, "eight-quarters")).ok is False  # 8 cards × 4 handles > 24
    eight = node.fit_pod(vxpu(8, 49152, "eight-halves"))
    assert not eight.ok and "1/8 TemplateNotFit" in eight.reason  # the card in quarters takes no half
    seven = node.fit_pod(vxpu(7, 49152, "seven-halves"))  # 4 + 7 × 2 = 18 of 24 handles
    quarter_card = node.held()[0].slices()[0].uuid
    assert seven.ok and all(s.template == "vxpu-48g" and s.uuid != quarter_card for s in seven.allocation.slices())
    # 5.2 device groups, 5.3 pod annotations, 5.4 per-family keys: acme declares each as data.
    assert cards.device_sets.groups == [[0, 1], [2, 3]] and cards.annotations.allocated
    assert {r.match for r in shares.pod_annotations} == {AttributeMatch.TENANTS, AttributeMatch.DEVICE}
    # ... and the write-back and admission hooks the guide names are implemented.
    assert callable(acme.hami_hal_pod_annotations) and callable(acme.hami_hal_admit_request)
