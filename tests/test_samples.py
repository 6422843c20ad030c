import math

import pyarrow as pa
import pytest

from sitewise_edge.errors import InvalidValue
from sitewise_edge.samples import (
    SCHEMA,
    Quality,
    SampleBuilder,
    from_columns,
    from_sitewise_values,
    parse_sitewise_value,
    time_to_sitewise,
    to_sitewise_values,
    value_types,
)

T = 1_700_000_000_123_456_789


def test_builder_picks_columns_by_python_type() -> None:
    b = SampleBuilder()
    b.add("/d", T, 1.5)
    b.add("/i", T, 7)
    b.add("/s", T, "run")
    b.add("/b", T, True)
    b.add("/n", T, None, Quality.BAD)
    batch = b.build()
    assert batch.schema == SCHEMA
    assert value_types(batch).to_pylist() == ["double", "integer", "string", "boolean", None]
    assert batch.column("quality").to_pylist() == [0, 0, 0, 0, 1]
    assert len(b) == 0  # the builder is reset


def test_from_columns_defaults_to_good() -> None:
    batch = from_columns(["/a", "/a"], [T, T + 1], double=[1.0, 2.0])
    assert batch.column("quality").to_pylist() == [0, 0]
    assert pa.types.is_dictionary(batch.column("stream").type)


@pytest.mark.parametrize(
    ("tqv", "expected"),
    [
        ({"value": {"doubleValue": 21.5}, "timestamp": {"timeInSeconds": 1700000000, "offsetInNanos": 5}},
         (1700000000_000000005, "double", 21.5, 0)),
        ({"value": {"integerValue": -3}, "timestamp": {"timeInSeconds": 1}, "quality": "UNCERTAIN"},
         (1_000_000_000, "integer", -3, 2)),
        ({"value": {"stringValue": "x"}, "timestamp": {"timeInSeconds": 2}, "quality": "BAD"},
         (2_000_000_000, "string", "x", 1)),
        ({"value": {"booleanValue": False}, "timestamp": {"timeInSeconds": 3}}, (3_000_000_000, "boolean", False, 0)),
        ({"value": {"nullValue": {"valueType": "D"}}, "timestamp": {"timeInSeconds": 3}, "quality": "BAD"},
         (3_000_000_000, None, None, 1)),
    ],
    ids=["double", "integer-uncertain", "string-bad", "boolean", "null-bad"],
)
def test_parse_sitewise_value(tqv: dict, expected: tuple) -> None:
    assert parse_sitewise_value(tqv) == expected


@pytest.mark.parametrize(
    ("tqv", "message"),
    [
        ({"value": {"doubleValue": 1.0}}, "timestamp"),
        ({"value": {"integerValue": 2**31}, "timestamp": {"timeInSeconds": 1}}, "32-bit"),
        ({"value": {"integerValue": 1.5}, "timestamp": {"timeInSeconds": 1}}, "32-bit"),
        ({"value": {"doubleValue": "x"}, "timestamp": {"timeInSeconds": 1}}, "number"),
        ({"value": {"stringValue": "x" * 1025}, "timestamp": {"timeInSeconds": 1}}, "1024"),
        ({"value": {"doubleValue": 1, "integerValue": 1}, "timestamp": {"timeInSeconds": 1}}, "exactly one"),
        ({"value": {"doubleValue": 1}, "timestamp": {"timeInSeconds": 1}, "quality": "OK"}, "unknown quality"),
        ({"value": {"nullValue": {"valueType": "D"}}, "timestamp": {"timeInSeconds": 1}}, "BAD or UNCERTAIN"),
        ({"value": {"doubleValue": 1}, "timestamp": {"timeInSeconds": 1, "offsetInNanos": 10**9}}, "offsetInNanos"),
        ({"value": {"doubleValue": 1}, "timestamp": {"timeInSeconds": 9223372036854774}}, "timeInSeconds must be"),
        ({"value": {"doubleValue": 1}, "timestamp": {"timeInSeconds": 1.5}}, "integer timeInSeconds"),
        ({"value": {"colorValue": 1}, "timestamp": {"timeInSeconds": 1}}, "unknown value member"),
    ],
    ids=["no-timestamp", "int-overflow", "int-float", "double-string", "long-string", "two-values",
         "bad-quality", "null-good", "nanos-range", "year-2262", "float-seconds", "unknown-member"],
)
def test_parse_sitewise_value_rejects(tqv: dict, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        parse_sitewise_value(tqv)


def test_round_trip_through_sitewise_json() -> None:
    tqvs = [
        {"value": {"doubleValue": 1.25}, "timestamp": {"timeInSeconds": 10, "offsetInNanos": 1}, "quality": "GOOD"},
        {"value": {"integerValue": 4}, "timestamp": {"timeInSeconds": 11, "offsetInNanos": 0}, "quality": "BAD"},
        {"value": {"stringValue": "é"}, "timestamp": {"timeInSeconds": 12, "offsetInNanos": 999999999},
         "quality": "UNCERTAIN"},
        {"value": {"booleanValue": True}, "timestamp": {"timeInSeconds": 13, "offsetInNanos": 0}, "quality": "GOOD"},
    ]
    assert to_sitewise_values(from_sitewise_values("/x", tqvs)) == tqvs


def test_nan_travels_as_sitewise_spells_it() -> None:
    batch = from_columns(["/a"], [T], double=[math.nan])
    assert to_sitewise_values(batch)[0]["value"] == {"doubleValue": "NaN"}


def test_time_split() -> None:
    assert time_to_sitewise(T) == {"timeInSeconds": 1_700_000_000, "offsetInNanos": 123_456_789}
