"""Fuzz targets for everything a user hands hami-hal: quantities, pod files and specs, YAML, the config
file, simulated-hardware profiles. The only allowed failure is the project's one-line error type."""

from __future__ import annotations

import string

import yaml
from fuzz_profiles import FUZZ
from hypothesis import example, given
from hypothesis import strategies as st

from hami_hal import bounded_yaml
from hami_hal.config_file import ConfigError, load_plugin_lists
from hami_hal.errors import HalError, InputError, ProfileError
from hami_hal.requests import load_pod_text, parse_pod, parse_quantity
from hami_hal.requests.quantity import INT64_MAX
from hami_hal.simulation import ProfileCatalog

INT64 = st.integers(-(2**63) + 1, 2**63 - 1)
SUFFIX = st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"])
QUANTITY_TEXT = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=string.digits + "+-.eEkKMGTPi ", max_size=70),
    st.builds(lambda n, s: f"{n}{s}", st.integers(-(10**25), 10**25), SUFFIX),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(0, 10**6), st.integers(-(10**7), 10**7)),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)


@FUZZ
@given(value=st.one_of(QUANTITY_TEXT, st.integers(), st.floats(), JSONISH))
@example("0E").via("found by this target: exa suffix read as an exponent")
@example("2Ei").via("found by this target")
@example("1e999999").via("issue #14")
@example("9" * 5000).via("issue #14")
@example("\u0661\u0662").via("non-ASCII digits")
def test_quantity_is_an_int64_or_one_input_error(value):
    try:
        out = parse_quantity(value, "f")
    except InputError as exc:
        assert exc.field == "f" and "\n" not in str(exc)
        return
    assert isinstance(out, int) and abs(out) <= INT64_MAX


@FUZZ
@given(n=INT64)
def test_plain_integers_round_trip(n):
    assert parse_quantity(str(n), "f") == n


def _pod(limits) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}


RESOURCE = st.sampled_from(["nvidia.com/gpu", "nvidia.com/gpumem", "nvidia.com/gpucores",
                            "nvidia.com/gpumem-percentage", "nvidia.com/priority", "cpu", "example.com/x"])


@FUZZ
@given(limits=st.dictionaries(RESOURCE, st.one_of(QUANTITY_TEXT, st.integers(), JSONISH), max_size=5),
       anns=st.dictionaries(st.sampled_from(["hami.io/gpu-scheduler-policy", "hami.io/node-scheduler-policy",
                                             "nvidia.com/use-gputype", "nvidia.com/use-gpuuuid",
                                             "hami.io/device-scoring-weights"]), JSONISH, max_size=3))
def test_pod_parser_never_crashes(limits, anns):
    from sched_testing import NVIDIA

    pod = _pod(limits)
    pod["metadata"]["annotations"] = anns
    try:
        parse_pod(pod, [NVIDIA])
    except HalError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(doc=JSONISH)
def test_pod_parser_on_any_document(doc):
    from sched_testing import NVIDIA

    try:
        parse_pod(doc if isinstance(doc, dict) else {"spec": doc}, [NVIDIA])
    except HalError:
        pass


YAMLISH = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="[]{}&*!|>:-,'\" \nab01#%@`?", max_size=300),
    st.builds(lambda d: yaml.safe_dump(d), JSONISH),
)


@FUZZ
@given(text=YAMLISH)
def test_bounded_yaml_returns_documents_or_one_error(text):
    try:
        docs = bounded_yaml.load_all(text)
    except (yaml.YAMLError, bounded_yaml.YamlBoundError):
        return
    assert isinstance(docs, list)


@FUZZ
@given(text=YAMLISH)
def test_pod_text_is_a_mapping_or_one_input_error(text):
    try:
        assert isinstance(load_pod_text(text, "pod.yaml"), dict)
    except InputError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), YAMLISH.map(str.encode),
                      st.builds(lambda d: yaml.safe_dump({"plugins": d}).encode(), JSONISH)))
def test_config_file_gives_two_sets_or_one_config_error(tmp_path_factory, data):
    f = tmp_path_factory.mktemp("cfg") / "hal.yaml"
    f.write_bytes(data)
    try:
        allow, deny = load_plugin_lists(f)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert all(isinstance(n, str) and n for n in allow | deny)


@FUZZ
@given(doc=st.one_of(JSONISH, st.fixed_dictionaries({"kind": st.sampled_from(["DeviceProfile", "NodeProfile"]),
                                                      "metadata": JSONISH, "spec": JSONISH})))
def test_profile_loader_accepts_or_one_profile_error(doc):
    try:
        ProfileCatalog().add(doc)
    except ProfileError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(text=YAMLISH)
def test_profile_file_accepts_or_one_profile_error(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("prof") / "p.yaml"
    f.write_text(text)
    try:
        ProfileCatalog().load_file(f)
    except ProfileError as exc:
        assert "\n" not in str(exc)
