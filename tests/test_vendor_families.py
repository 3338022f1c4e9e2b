"""Families a node adds to a vendor (``hami_hal_node_vendor``): what the core takes, and the one line for what it
refuses (a changed family, a name outside the vendor's domains, another family's name or protocol key)."""

from __future__ import annotations

from types import ModuleType

import pytest

from hami_hal import hookimpl
from hami_hal.errors import InputError, PluginLoadError
from hami_hal.models import AnnotationKeys, Device, Provenance, ResourceFamily, VendorInfo
from hami_hal.testing import isolated_hal
from hami_hal.vendor_families import MAX_ADDED_FAMILIES, added_families


def _family(word: str, domain: str = "zeta.io") -> ResourceFamily:
    low = word.lower()
    return ResourceFamily(common_word=word, count=f"{domain}/{low}", memory=f"{domain}/{low}-memory",
                          annotations=AnnotationKeys(node_register=f"zeta.io/node-register-{word}",
                                                     to_allocate=f"zeta.io/{word}-to-allocate",
                                                     allocated=f"zeta.io/{word}-allocated"))


BASE = VendorInfo(name="zeta", display_name="Zeta", resources=[_family("Z1")], domains=["zeta.io/"])
OTHER = VendorInfo(name="acme", display_name="Acme", resources=[
    ResourceFamily(common_word="ACME", count="acme.example/xpu",
                   annotations=AnnotationKeys(to_allocate="hami.io/acme-devices-to-allocate"))],
    domains=["acme.example/"])


def _plugin(node_vendor) -> ModuleType:
    mod = ModuleType("test_plugin_zeta_families")
    mod.PLUGIN_NAME = "zeta"
    dev = Device(vendor="zeta", index=0, uuid="Z-0", model="z", hami_type="Z1", memory_mib=1024,
                 provenance=Provenance(source="real"))
    mod.hami_hal_vendor = hookimpl(lambda: BASE)
    mod.hami_hal_discover = hookimpl(lambda context: [dev])
    mod.hami_hal_node_vendor = hookimpl(lambda context: node_vendor(context))
    return mod


def test_added_families_are_served_and_published_with_the_inventory():
    seen = []

    def node_vendor(context):
        seen.append(context.config)
        return BASE.model_copy(update={"resources": [*BASE.resources, _family("Z2")]})

    hal = isolated_hal(_plugin(node_vendor))
    inv = hal.discover("real", node_name="n", config={"zeta": {"chips": ["Z2"]}})
    assert seen == [{"zeta": {"chips": ["Z2"]}}]  # the context discovery used
    (zeta,) = inv.vendors
    assert [f.common_word for f in zeta.resources] == ["Z1", "Z2"]
    assert [f.common_word for f in hal.vendors()[0].resources] == ["Z1"]  # the installed identity is unchanged


def test_a_plugin_without_the_hook_or_answering_none_keeps_its_identity():
    hal = isolated_hal(_plugin(lambda context: None))
    assert hal.discover("real", node_name="n").vendors == [BASE]


@pytest.mark.parametrize(("offered", "text"), [
    (BASE.model_copy(update={"resources": [_family("Z1").model_copy(update={"memory": None})]}),
     "changes or drops family Z1"),
    (BASE.model_copy(update={"resources": []}), "changes or drops family Z1"),
    (BASE.model_copy(update={"resources": [*BASE.resources, _family("Z2", "other.io")]}),
     "zeta.resources[Z2].count: 'other.io/z2' must be a resource name under zeta's domains (zeta.io/)"),
    (BASE.model_copy(update={"resources": [*BASE.resources, _family("Z2").model_copy(
        update={"count": "zeta.io/z1"})]}), "zeta.resources[Z2].count: 'zeta.io/z1' is already another family's resource name"),
    (BASE.model_copy(update={"resources": [*BASE.resources, _family("Z2").model_copy(update={
        "annotations": AnnotationKeys(to_allocate="zeta.io/Z1-to-allocate")})]}),
     "zeta.resources[Z2].annotations.to_allocate: 'zeta.io/Z1-to-allocate' is already another family's annotation key"),
    (BASE.model_copy(update={"resources": [*BASE.resources, _family("Z 2")]}), "must be a new CommonWord"),
    (BASE.model_copy(update={"name": "acme"}), "vendor.name: 'acme' is not zeta"),
    ({"name": "zeta"}, "hami_hal_node_vendor returned dict"),
])
def test_what_a_plugin_may_not_add_stops_discovery_with_one_line(offered, text):
    hal = isolated_hal(_plugin(lambda context: offered))
    with pytest.raises(PluginLoadError) as err:
        hal.discover("real", node_name="n")
    assert text in str(err.value) and "\n" not in str(err.value)


def test_the_checks_name_the_field_and_value():
    offered = BASE.model_copy(update={"resources": [*BASE.resources, _family("Z2").model_copy(update={
        "annotations": AnnotationKeys(to_allocate="hami.io/acme-devices-to-allocate")})]})
    with pytest.raises(InputError, match=r"^zeta.resources\[Z2\].annotations.to_allocate: "
                                         r"'hami.io/acme-devices-to-allocate' is already "):
        added_families(BASE, offered, [OTHER])  # another vendor's protocol key: its allocations
    many = BASE.model_copy(update={"resources": [*BASE.resources, *(_family(f"N{i}") for i in range(65))]})
    with pytest.raises(InputError, match=r"^zeta.resources: '65 added families' is more than the 64"):
        added_families(BASE, many, [])
    assert len(added_families(BASE, many.model_copy(update={"resources": many.resources[:MAX_ADDED_FAMILIES + 1]}),
                              [])) == MAX_ADDED_FAMILIES
    with pytest.raises(InputError, match="more than the 1 the vendor may still take"):
        added_families(BASE, many, [], room=1)
    with pytest.raises(InputError, match="^vendor.name: 'acme' is not zeta"):
        added_families(BASE, OTHER, [])
