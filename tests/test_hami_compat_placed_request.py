"""The placed-request record (hami-hal.io/placed-request) is bounded: a bad value is one InputError naming the
annotation, never a traceback; a good one round-trips."""

from __future__ import annotations

import json

import pytest

from hami_hal.errors import InputError
from hami_hal.hami_compat import decode_placed, encode_placed, request_changes, request_pod_keys
from hami_hal.manager import Hal

FIELD = 'metadata.annotations["hami-hal.io/placed-request"]'


@pytest.mark.parametrize("value, reason", [
    (None, "must be a JSON object of at most"),
    ("x" * 20000, "must be a JSON object of at most"),
    ("{not json", "is not JSON"),
    ("[]", "must be a JSON object of at most 256 keys"),
    (json.dumps({f"a/k{i}": "0" * 16 for i in range(257)}), "at most 256 keys"),
    ('{"a/k": 5}', "must map an annotation key to 16 hex digits"),
    ('{"a/k": "0123456789ABCDEF"}', "16 hex digits"),
    ('{"bad key": "0123456789abcdef"}', "16 hex digits"),
])
def test_bad_records_are_one_line(value, reason):
    with pytest.raises(InputError) as err:
        decode_placed(value)
    assert str(err.value).startswith(FIELD) and reason in str(err.value) and "\n" not in str(err.value)


def test_round_trip_over_the_installed_request_keys():
    keys = request_pod_keys(Hal().vendors())
    assert {"nvidia.com/use-gpuuuid", "nvidia.com/nouse-gputype", "hami.io/gpu-scheduler-policy"} <= set(keys)
    anns = {"nvidia.com/use-gpuuuid": "GPU-a, GPU-b", "other.example/x": "y"}
    record = decode_placed(encode_placed(anns, keys))
    assert list(record) == ["nvidia.com/use-gpuuuid"]
    assert request_changes(record, anns, keys) == []
    assert request_changes(record, {**anns, "nvidia.com/use-gpuuuid": "GPU-a,GPU-b"}, keys) == [
        'metadata.annotations["nvidia.com/use-gpuuuid"] was changed to \'GPU-a,GPU-b\'']
