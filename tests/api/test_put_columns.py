"""BatchPutAssetPropertyValue's columnar path (api/sitewise/put_columns.py) against the reference path.

A request whose every value is good is parsed into Arrow columns and must store exactly the batch the
reference path (value by value) stores; any other request must go to the reference path, which answers
its errors per entry in botocore's shapes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.sitewise.put_columns import accept, parse_put
from sitewise_edge.samples import NS_PER_S, SampleBuilder, column_type, parse_sitewise_value
from tests.botocore_shapes import assert_valid_output
from tests.conftest import gateway_config, sitewise_client

NOW = int(time.time())
LATEST_NS = (NOW + 600) * NS_PER_S
TEMP = "/plant1/line1/press1/temperature"  # DOUBLE
STATE = "/plant1/line1/press1/state"  # INTEGER
STATUS = "/plant1/line1/press1/status"  # STRING


def tqv(value: dict[str, Any], t: int = NOW - 10, nanos: int | None = 0, quality: str | None = "GOOD"
        ) -> dict[str, Any]:
    ts: dict[str, int] = {"timeInSeconds": t}
    if nanos is not None:
        ts["offsetInNanos"] = nanos
    out: dict[str, Any] = {"value": value, "timestamp": ts}
    if quality is not None:
        out["quality"] = quality
    return out


def body(entries: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"entries": entries, **extra}, separators=(",", ":")).encode()


def columnar(raw: bytes, expected: list[str | None] | None = None) -> pa.RecordBatch | None:
    parsed = parse_put(raw, 32)
    if parsed is None:
        return None
    streams = [alias or f"{a}/{p}" for a, p, alias in parsed.names]
    return accept(parsed, streams, expected or [None] * len(streams), LATEST_NS)


def reference(raw: bytes) -> pa.RecordBatch:
    """What data.py's reference path stores for a body of good values (streams by alias)."""
    builder = SampleBuilder()
    for entry in json.loads(raw)["entries"]:
        for v in entry["propertyValues"]:
            t, column, value, q = parse_sitewise_value(v)
            builder.add(entry["propertyAlias"], t, value, q, as_type=column_type(column) if column else None)
    return builder.build()


def rows(batch: pa.RecordBatch) -> dict[str, list[Any]]:
    """The batch as Python lists: streams decoded, times as int64 nanoseconds."""
    out: dict[str, list[Any]] = {}
    for name in batch.schema.names:
        col = batch.column(name)
        out[name] = (col.cast(pa.int64()) if name == "time" else col).to_pylist()
    return out


# --- the same batch as the reference path ------------------------------------------------------------

variants = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: {"doubleValue": v}),
    st.integers(-(2**31), 2**31 - 1).map(lambda v: {"integerValue": v}),
    st.text(max_size=300).filter(lambda s: len(s.encode()) <= 1024).map(lambda v: {"stringValue": v}),
    st.booleans().map(lambda v: {"booleanValue": v}),
)
tqvs = st.one_of(
    st.builds(tqv, variants, st.integers(1, NOW), st.one_of(st.none(), st.integers(0, NS_PER_S - 1)),
              st.sampled_from([None, "GOOD", "BAD", "UNCERTAIN"])),
    st.builds(tqv, st.just({"nullValue": {"valueType": "D"}}), st.integers(1, NOW), st.just(5),
              st.sampled_from(["BAD", "UNCERTAIN"])),
)
entries = st.lists(st.builds(lambda i, vs: {"entryId": f"e{i}", "propertyAlias": f"/p/s{i % 3}", "propertyValues": vs},
                             st.integers(0, 10**6), st.lists(tqvs, min_size=1, max_size=10)),
                   min_size=1, max_size=10, unique_by=lambda e: e["entryId"])


@given(entries)
def test_good_requests_store_what_the_reference_path_stores(es: list[dict[str, Any]]) -> None:
    raw = body(es, enablePartialEntryProcessing=True)
    got = columnar(raw)
    if any(c in str(v["value"].get("stringValue", "")) for e in es for v in e["propertyValues"] for c in "{["):
        # a string holding a brace or a bracket: counted as an object or array, so the reference path reads it
        assert got is None
        return
    assert got is not None
    want = reference(raw)
    assert rows(got) == rows(want)  # exact doubles, strings, times, qualities, in order
    assert got.schema == want.schema


def test_a_full_request_of_every_type_goes_the_columnar_way() -> None:
    kinds = [lambda i: {"doubleValue": 0.1 * i}, lambda i: {"integerValue": -i},
             lambda i: {"stringValue": "é\"\\\u2603"}, lambda i: {"booleanValue": i % 2 == 0},
             lambda i: {"nullValue": {"valueType": "I"}}]
    es = [{"entryId": f"e{k}", "propertyAlias": f"/p/{k}", "propertyValues": [
        tqv(kinds[k % 5](i), NOW - 100 + i, i * 1000, "BAD" if k % 5 == 4 else "GOOD") for i in range(10)]}
        for k in range(10)]
    raw = body(es)
    got = columnar(raw)
    assert got is not None and got.num_rows == 100
    assert rows(got) == rows(reference(raw))
    # the property's data type: matching columns pass, and a null of any type
    typed = body([{"entryId": "t", "propertyAlias": TEMP, "propertyValues": [tqv({"doubleValue": 1.0}),
                  tqv({"nullValue": {"valueType": "D"}}, quality="BAD")]}])
    assert columnar(typed, ["double"]) is not None


LONG = "x" * 1025
REFERENCE_PATH = {
    "double given as NaN": [tqv({"doubleValue": "NaN"})],
    "JSON null": [tqv({"doubleValue": None})],
    "two members": [tqv({"doubleValue": 1.0, "integerValue": 1})],
    "no member": [tqv({})],
    "unknown member": [tqv({"floatValue": 1.0})],
    "integer beyond 32 bits": [tqv({"integerValue": 2**31})],
    "integer as a float": [tqv({"integerValue": 1.5})],
    "boolean as a number": [tqv({"booleanValue": 1})],
    "double as a boolean": [tqv({"doubleValue": True})],
    "string of 1025 bytes": [tqv({"stringValue": LONG})],
    "nullValue with GOOD": [tqv({"nullValue": {"valueType": "D"}})],
    "nullValue without quality": [tqv({"nullValue": {"valueType": "D"}}, quality=None)],
    "unknown quality": [tqv({"doubleValue": 1.0}, quality="good")],
    "time 0": [tqv({"doubleValue": 1.0}, t=0)],
    "time after 2262": [tqv({"doubleValue": 1.0}, t=9_223_372_036)],
    "time too far ahead": [tqv({"doubleValue": 1.0}, t=NOW + 601)],
    "offset of a second": [tqv({"doubleValue": 1.0}, nanos=NS_PER_S)],
    "negative offset": [tqv({"doubleValue": 1.0}, nanos=-1)],
    "time as a string": [{"value": {"doubleValue": 1.0}, "timestamp": {"timeInSeconds": str(NOW)}}],
    "no timestamp": [{"value": {"doubleValue": 1.0}}],
    "no value": [{"timestamp": {"timeInSeconds": NOW}}],
    "11 values": [tqv({"doubleValue": 1.0}, NOW - i) for i in range(11)],
    "no values": [],
}


@pytest.mark.parametrize("values", REFERENCE_PATH.values(), ids=REFERENCE_PATH.keys())
def test_a_request_with_a_bad_value_goes_to_the_reference_path(values: list[dict[str, Any]]) -> None:
    good = {"entryId": "good", "propertyAlias": "/p/ok", "propertyValues": [tqv({"doubleValue": 1.0})]}
    assert columnar(body([good])) is not None
    assert columnar(body([good, {"entryId": "bad", "propertyAlias": "/p/bad", "propertyValues": values}])) is None


def test_requests_the_columnar_path_does_not_take_whole() -> None:
    one = {"entryId": "a", "propertyAlias": "/p/a", "propertyValues": [tqv({"doubleValue": 1.0})]}
    raw = body([one])
    assert columnar(raw) is not None
    cases = {
        "two objects": raw + b"\n" + raw,
        "trailing garbage": raw + b" x",
        "a key twice": raw.replace(b'"entryId":"a"', b'"entryId":"a","entryId":"b"'),
        "a key twice, deeper": raw.replace(b'"quality":"GOOD"', b'"quality":"GOOD","quality":"BAD"'),
        "a key twice, spaced": raw.replace(b'"quality":"GOOD"', b'"quality":"GOOD", "quality" : "BAD"'),
        "a key twice behind an escaped colon": raw.replace(b'"/p/a"', b'"/p/\\u003a"').replace(
            b'"quality":"GOOD"', b'"quality":"GOOD","quality":"BAD"'),
        "an unknown member holding an object": body([{**one, "extra": {"a": [[[[1]]]]}}]),
        "an unknown member holding a string with a colon": body([{**one, "extra": "a:b"}]),
        "11 entries": body([{**one, "entryId": f"e{i}"} for i in range(11)]),
        "no entries": body([]),
        "entryId twice": body([one, one]),
        "entryId with a space": body([{**one, "entryId": "a b"}]),
        "no entryId": body([{k: v for k, v in one.items() if k != "entryId"}]),
        "entries not a list": b'{"entries":{"entryId":"a"}}',
        "not UTF-8": raw.replace(b'"/p/a"', b'"/p/\xff"'),
        "invalid UTF-8 in a string": body([{**one, "propertyValues": [tqv({"stringValue": "ab"})]}]).replace(
            b'"ab"', b'"a\xc3"'),
        "a lone surrogate": body([{**one, "propertyValues": [tqv({"stringValue": "ab"})]}]).replace(
            b'"ab"', b'"\\ud800"'),
        "nested deeper than the shape": body([{**one, "propertyValues": [tqv({"doubleValue": [[[1.0]]]})]}]),
        "not JSON": b"{entries",
    }
    for name, raw_case in cases.items():
        assert columnar(raw_case) is None, name
    # what the reference path takes as it is goes the columnar way too, to the same batch
    same = {
        "pretty-printed": json.dumps({"entries": [one]}, indent=2).encode(),
        "an unknown top-level member": body([one], extra=1),
        "partial flag not a boolean": body([one], enablePartialEntryProcessing="yes"),
        "an unknown scalar member": body([{**one, "propertyValues": [{**one["propertyValues"][0], "x": 2}]}]),
        "colons and escapes in strings": body([{**one, "propertyAlias": "/p:a/\u00e9", "propertyValues": [
            tqv({"stringValue": "a:b\"c\u2603"})]}]),
    }
    for name, raw_case in same.items():
        got = columnar(raw_case)
        assert got is not None, name
        assert rows(got) == rows(reference(raw_case)), name
    assert parse_put(raw, 6) is None  # api.max_json_depth below the shape's: the reference path refuses it
    typed = body([{"entryId": "t", "propertyAlias": TEMP, "propertyValues": [tqv({"integerValue": 1})]}])
    assert columnar(typed, ["double"]) is None  # the property's data type


# --- through a gateway, with boto3 and raw HTTP: the answers in botocore's shapes -------------------------


@pytest.fixture
async def gateway(tmp_path: Path, start_gateway: Any) -> Any:
    return await start_gateway(gateway_config(tmp_path))


async def test_through_the_gateway_good_mixed_and_limits(gateway: Any) -> None:
    client = sitewise_client(gateway.api_port)
    full = [{"entryId": f"e{k}", "propertyAlias": f"/col/s{k}", "propertyValues": [
        tqv({"doubleValue": k + i / 3}, NOW - 100 + i, 123_456_789) for i in range(10)]} for k in range(10)]
    resp = await asyncio.to_thread(client.batch_put_asset_property_value, entries=full,
                                   enablePartialEntryProcessing=True)
    assert resp["errorEntries"] == []
    hist = await asyncio.to_thread(client.get_asset_property_value_history, propertyAlias="/col/s7",
                                   startDate=NOW - 200, endDate=NOW)
    assert [(v["value"]["doubleValue"], v["timestamp"]["offsetInNanos"]) for v in hist["assetPropertyValueHistory"]] \
        == [(7 + i / 3, 123_456_789) for i in range(10)]

    mixed = [
        {"entryId": "ok", "propertyAlias": STATE, "propertyValues": [tqv({"integerValue": 3})]},
        {"entryId": "type", "propertyAlias": TEMP, "propertyValues": [tqv({"doubleValue": 1.0}, NOW - 5),
                                                                      tqv({"stringValue": "x"}, NOW - 4)]},
        {"entryId": "future", "propertyAlias": STATUS, "propertyValues": [tqv({"stringValue": "x"}, NOW + 3600)]},
        {"entryId": "nogood", "propertyAlias": "/col/n", "propertyValues": [tqv({"nullValue": {"valueType": "D"}})]},
        {"entryId": "unknown", "assetId": "d5391ca4-4057-4be8-9775-000000000000",
         "propertyId": "d5391ca4-4057-4be8-9775-000000000000", "propertyValues": [tqv({"doubleValue": 1.0})]},
    ]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.api_port}") as http:
        answer = await http.post("/properties", json={"entries": mixed, "enablePartialEntryProcessing": True})
        assert answer.status_code == 200
        parsed = assert_valid_output("BatchPutAssetPropertyValue", answer.json())
        codes = {e["entryId"]: [x["errorCode"] for x in e["errors"]] for e in parsed["errorEntries"]}
        assert codes == {"type": ["InvalidRequestException"], "future": ["TimestampOutOfRangeException"],
                         "nogood": ["InvalidRequestException"], "unknown": ["ResourceNotFoundException"]}
        by_id = {e["entryId"]: e["errors"][0] for e in parsed["errorEntries"]}
        assert by_id["type"]["timestamps"] == [{"timeInSeconds": NOW - 4, "offsetInNanos": 0}]  # only the bad value
        assert "DOUBLE" in by_id["type"]["errorMessage"]
        latest = await asyncio.to_thread(client.get_asset_property_value, propertyAlias=STATE)
        assert latest["propertyValue"]["value"] == {"integerValue": 3}  # the good entry was stored
        temp = await asyncio.to_thread(client.get_asset_property_value, propertyAlias=TEMP)
        assert temp["propertyValue"]["timestamp"]["timeInSeconds"] == NOW - 5  # and the good value of "type"

        for what, payload, message in [
            ("11 entries", {"entries": [{**full[0], "entryId": f"x{i}"} for i in range(11)]}, "at most 10 entries"),
            ("11 values", {"entries": [{**full[0], "propertyValues": full[0]["propertyValues"] * 2}]},
             "at most 10 values"),
            ("no entries", {"entries": []}, "at least 1 entry"),
        ]:
            refused = await http.post("/properties", json=payload)
            assert refused.status_code == 400, what
            assert refused.headers["x-amzn-errortype"].startswith("InvalidRequestException"), what
            assert message in refused.json()["message"], what
