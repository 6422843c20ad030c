"""The SiteWise read operations (aggregates, interpolation, batch reads, ExecuteQuery) through boto3 over HTTP."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest

from sitewise_edge.config import QueryLimits
from sitewise_edge.samples import NS_PER_S, from_columns
from tests.botocore_shapes import assert_valid_output
from tests.conftest import gateway_config, sitewise_client

TEMP = "/plant1/line1/press1/temperature"  # DOUBLE
STATE = "/plant1/line1/press1/state"  # INTEGER
STATUS = "/plant1/line1/press1/status"  # STRING
HOUR = 3600
BASE = (int(time.time()) // HOUR - 3) * HOUR  # an hour boundary three to four hours ago


@pytest.fixture
async def api(tmp_path: Path, start_gateway: Any) -> Any:
    gw = await start_gateway(gateway_config(tmp_path))
    # TEMP: one value a second for 10 minutes from BASE + 1 s, value = seconds since BASE
    secs = list(range(1, 601))
    await gw.ingest(from_columns([TEMP] * 600, [(BASE + s) * NS_PER_S for s in secs], double=[float(s) for s in secs]))
    # a BAD value that must not count in GOOD aggregates, and a STATUS string every 30 s
    await gw.ingest(from_columns([TEMP], [(BASE + 30) * NS_PER_S + 5], double=[1000.0], quality=[1]))
    await gw.ingest(from_columns([STATUS] * 20, [(BASE + 30 * k) * NS_PER_S for k in range(20)],
                                 string=["run" if k % 2 else "idle" for k in range(20)]))
    return gw, sitewise_client(gw.api_port)


def call(client: Any, op: str, **kwargs: Any) -> Any:
    return asyncio.to_thread(getattr(client, op), **kwargs)


async def http_get(gw: Any, path: str, params: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        return await http.get(path, params=params)


async def http_post(gw: Any, path: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        return await http.post(path, json=body)


async def error_code(coro: Any) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        await coro
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def epoch(ts: Any) -> float:
    return ts.timestamp() if isinstance(ts, datetime) else float(ts)


# --- GetAssetPropertyAggregates ----------------------------------------------------------------


async def test_aggregates_per_minute_stamped_at_bucket_start(api: Any) -> None:
    gw, client = api
    resp = await call(client, "get_asset_property_aggregates", propertyAlias=TEMP, resolution="1m",
                      aggregateTypes=["AVERAGE", "COUNT", "MAXIMUM", "MINIMUM", "SUM", "STANDARD_DEVIATION"],
                      startDate=BASE, endDate=BASE + 600)
    values = resp["aggregatedValues"]
    assert [epoch(v["timestamp"]) for v in values] == [BASE + 60 * k for k in range(11)]
    first, second, last = values[0]["value"], values[1]["value"], values[-1]["value"]
    assert first["count"] == 59.0 and first["minimum"] == 1.0 and first["maximum"] == 59.0  # the BAD one is out
    assert second == {"average": 89.5, "count": 60.0, "maximum": 119.0, "minimum": 60.0, "sum": sum(range(60, 120)),
                      "standardDeviation": pytest.approx(statistics.stdev(range(60, 120)))}
    assert last["count"] == 1.0 and "standardDeviation" not in last  # one value has no sample deviation
    assert {v["quality"] for v in values} == {"GOOD"}
    raw = await http_get(gw, "/properties/aggregates", {
        "propertyAlias": TEMP, "resolution": "1m", "aggregateTypes": ["COUNT", "AVERAGE"],
        "startDate": BASE, "endDate": BASE + 600, "qualities": "BAD"})
    body = assert_valid_output("GetAssetPropertyAggregates", raw.json())
    assert [(epoch(v["timestamp"]), v["value"]) for v in body["aggregatedValues"]] == [
        (BASE, {"count": 1.0, "average": 1000.0})]


async def test_aggregates_window_is_start_exclusive_end_inclusive(api: Any) -> None:
    _, client = api
    resp = await call(client, "get_asset_property_aggregates", propertyAlias=TEMP, resolution="1h",
                      aggregateTypes=["COUNT", "MINIMUM", "MAXIMUM"], startDate=BASE + 10, endDate=BASE + 20)
    assert [v["value"] for v in resp["aggregatedValues"]] == [{"count": 10.0, "minimum": 11.0, "maximum": 20.0}]


async def test_aggregates_page_with_the_boto3_paginator_both_orders(api: Any) -> None:
    _, client = api

    def pages(ordering: str) -> list[float]:
        paginator = client.get_paginator("get_asset_property_aggregates")
        out: list[float] = []
        for page in paginator.paginate(propertyAlias=TEMP, resolution="1m", aggregateTypes=["COUNT"],
                                       startDate=BASE, endDate=BASE + 600, timeOrdering=ordering,
                                       PaginationConfig={"PageSize": 4}):
            assert len(page["aggregatedValues"]) <= 4
            out += [epoch(v["timestamp"]) for v in page["aggregatedValues"]]
        return out

    assert await asyncio.to_thread(pages, "ASCENDING") == [BASE + 60 * k for k in range(11)]
    assert await asyncio.to_thread(pages, "DESCENDING") == [BASE + 60 * k for k in reversed(range(11))]


@pytest.mark.parametrize("resolution", ["5m", "30s", "2h"], ids=["5m", "30s", "2h"])
async def test_other_resolutions_work_through_boto3_and_plain_http(api: Any, resolution: str) -> None:
    gw, client = api
    code, message = await error_code(call(client, "get_asset_property_aggregates", propertyAlias=TEMP,
                                          resolution=resolution, aggregateTypes=["COUNT"], startDate=BASE,
                                          endDate=BASE + 600))
    assert code == "InvalidRequestException" and "api.any_resolution: true" in message and resolution in message
    gw.api_config = gw.api_config.model_copy(update={"any_resolution": True})  # the opt-in
    seconds = {"5m": 300, "30s": 30, "2h": 7200}[resolution]
    resp = await call(client, "get_asset_property_aggregates", propertyAlias=TEMP, resolution=resolution,
                      aggregateTypes=["COUNT"], startDate=BASE, endDate=BASE + 600, qualities=["GOOD"],
                      maxResults=100)
    stamps = [epoch(v["timestamp"]) for v in resp["aggregatedValues"]]
    assert stamps[0] == BASE - BASE % seconds and all(s % seconds == 0 for s in stamps)
    assert sum(v["value"]["count"] for v in resp["aggregatedValues"]) == 600.0
    raw = await http_get(gw, "/properties/aggregates", {
        "propertyAlias": TEMP, "resolution": resolution, "aggregateTypes": "COUNT", "maxResults": 100,
        "startDate": datetime.fromtimestamp(BASE, UTC).isoformat(), "endDate": BASE + 600})
    assert raw.status_code == 200
    assert assert_valid_output("GetAssetPropertyAggregates", raw.json())["aggregatedValues"] == \
        resp["aggregatedValues"]


async def test_strings_have_only_count(api: Any) -> None:
    _, client = api
    resp = await call(client, "get_asset_property_aggregates", propertyAlias=STATUS, resolution="1m",
                      aggregateTypes=["COUNT"], startDate=BASE - 1, endDate=BASE + 600)
    assert [v["value"] for v in resp["aggregatedValues"]] == [{"count": 2.0}] * 10
    code, message = await error_code(call(client, "get_asset_property_aggregates", propertyAlias=STATUS,
                                          resolution="1m", aggregateTypes=["COUNT", "AVERAGE"],
                                          startDate=BASE, endDate=BASE + 600))
    assert code == "InvalidRequestException" and "only the COUNT aggregate" in message and "AVERAGE" in message


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"resolution": "7x"}, "resolution"),
        ({"resolution": "0m"}, "resolution"),
        ({"aggregateTypes": ["MEDIAN"]}, "MEDIAN"),
        ({"maxResults": 2501}, "maxResults"),
        ({"startDate": BASE + 700}, "startDate"),
        ({"qualities": ["GOOD", "BAD"]}, "qualities"),
        ({"nextToken": "bm90LWEtdG9rZW4="}, "nextToken"),
    ],
    ids=["unknown-unit", "zero", "unknown-aggregate", "max-results", "start-after-end", "two-qualities",
         "foreign-token"],
)
async def test_aggregates_refuse_bad_requests(api: Any, kwargs: dict[str, Any], needle: str) -> None:
    _, client = api
    params = {"propertyAlias": TEMP, "resolution": "1m", "aggregateTypes": ["COUNT"], "startDate": BASE,
              "endDate": BASE + 600, **kwargs}
    code, message = await error_code(call(client, "get_asset_property_aggregates", **params))
    assert code == "InvalidRequestException" and needle in message


async def test_unknown_alias_is_not_found(api: Any) -> None:
    _, client = api
    code, _ = await error_code(call(client, "get_asset_property_aggregates", propertyAlias="/no/such",
                                    resolution="1m", aggregateTypes=["COUNT"], startDate=BASE, endDate=BASE + 1))
    assert code == "ResourceNotFoundException"


# --- GetInterpolatedAssetPropertyValues --------------------------------------------------------


async def test_linear_interpolation_pages_with_the_paginator(api: Any) -> None:
    gw, client = api

    def values() -> list[tuple[int, float]]:
        paginator = client.get_paginator("get_interpolated_asset_property_values")
        out: list[tuple[int, float]] = []
        for page in paginator.paginate(propertyAlias=TEMP, startTimeInSeconds=BASE, startTimeOffsetInNanos=500_000_000,
                                       endTimeInSeconds=BASE + 600, quality="GOOD", intervalInSeconds=25,
                                       type="LINEAR_INTERPOLATION", PaginationConfig={"PageSize": 7}):
            assert len(page["interpolatedAssetPropertyValues"]) <= 7
            out += [(v["timestamp"]["timeInSeconds"], v["value"]["doubleValue"])
                    for v in page["interpolatedAssetPropertyValues"]]
        return out

    got = await asyncio.to_thread(values)
    # t_k = start + 25 k s; the value at t is t - BASE (a ramp), interpolated between the seconds around it
    assert got == [(BASE + 25 * k, pytest.approx(25 * k + 0.5)) for k in range(1, 24)]
    raw = await http_get(gw, "/properties/interpolated", {
        "propertyAlias": TEMP, "startTimeInSeconds": BASE, "endTimeInSeconds": BASE + 100, "quality": "GOOD",
        "intervalInSeconds": 30, "type": "LINEAR_INTERPOLATION", "maxResults": 2})
    body = assert_valid_output("GetInterpolatedAssetPropertyValues", raw.json())
    assert len(body["interpolatedAssetPropertyValues"]) == 2 and body["nextToken"]


async def test_linear_window_leaves_gaps_and_locf_carries_strings(api: Any) -> None:
    _, client = api
    # STATUS changes every 30 s: LOCF at 20 s steps carries the last value; a 5 s LINEAR window around
    # each t_k finds no TEMP value after the data ends at BASE + 600
    locf = await call(client, "get_interpolated_asset_property_values", propertyAlias=STATUS,
                      startTimeInSeconds=BASE, endTimeInSeconds=BASE + 100, quality="GOOD", intervalInSeconds=20,
                      type="LOCF_INTERPOLATION", maxResults=10)
    assert [(v["timestamp"]["timeInSeconds"] - BASE, v["value"]["stringValue"])
            for v in locf["interpolatedAssetPropertyValues"]] == [(20, "idle"), (40, "run"), (60, "idle"),
                                                                  (80, "idle"), (100, "run")]
    linear = await call(client, "get_interpolated_asset_property_values", propertyAlias=TEMP,
                        startTimeInSeconds=BASE + 590, endTimeInSeconds=BASE + 640, quality="GOOD",
                        intervalInSeconds=5, intervalWindowInSeconds=2, type="LINEAR_INTERPOLATION")
    assert [v["timestamp"]["timeInSeconds"] - BASE for v in linear["interpolatedAssetPropertyValues"]] == [595, 600]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"type": "CUBIC"}, "type"),
        ({"type": "LOCF_INTERPOLATION", "intervalWindowInSeconds": 5}, "intervalWindowInSeconds"),
        ({"propertyAlias": STATUS}, "LINEAR_INTERPOLATION needs a number"),
        ({"maxResults": 251}, "maxResults"),
        ({"startTimeInSeconds": BASE + 700}, "start time"),
    ],
    ids=["unknown-type", "window-with-locf", "linear-on-string", "max-results", "start-after-end"],
)
async def test_interpolation_refuses_bad_requests(api: Any, kwargs: dict[str, Any], needle: str) -> None:
    _, client = api
    params = {"propertyAlias": TEMP, "startTimeInSeconds": BASE, "endTimeInSeconds": BASE + 600,
              "quality": "GOOD", "intervalInSeconds": 10, "type": "LINEAR_INTERPOLATION", **kwargs}
    code, message = await error_code(call(client, "get_interpolated_asset_property_values", **params))
    assert code == "InvalidRequestException" and needle in message


# --- batch reads -------------------------------------------------------------------------------


async def test_batch_latest_reports_each_entry(api: Any) -> None:
    gw, client = api
    asset = next(a for a in gw.registry.assets() if a.name == "Press1")
    prop = gw.registry.property_by_alias(TEMP)
    resp = await call(client, "batch_get_asset_property_value", entries=[
        {"entryId": "alias", "propertyAlias": TEMP},
        {"entryId": "ids", "assetId": asset.id, "propertyId": prop.property_id},
        {"entryId": "nodata", "propertyAlias": STATE},
        {"entryId": "unknown", "propertyAlias": "/no/such/stream"},
        {"entryId": "half", "assetId": asset.id},
    ])
    success = {e["entryId"]: e.get("assetPropertyValue") for e in resp["successEntries"]}
    assert success["alias"]["value"] == {"doubleValue": 600.0} and success["ids"] == success["alias"]
    assert success["nodata"] is None
    errors = {e["entryId"]: e["errorCode"] for e in resp["errorEntries"]}
    assert errors == {"unknown": "ResourceNotFoundException", "half": "InvalidRequestException"}
    assert resp["skippedEntries"] == [] and "nextToken" not in resp
    raw = await http_post(gw, "/properties/batch/latest", {"entries": [{"entryId": "a", "propertyAlias": TEMP},
                                                                      {"entryId": "b", "propertyAlias": "/x"}]})
    assert_valid_output("BatchGetAssetPropertyValue", raw.json())


async def test_batch_history_pages_across_entries(api: Any) -> None:
    gw, client = api
    entries = [
        {"entryId": "temp", "propertyAlias": TEMP, "startDate": BASE + 100, "endDate": BASE + 130},
        {"entryId": "missing", "propertyAlias": "/no/such"},
        {"entryId": "status", "propertyAlias": STATUS, "startDate": BASE, "endDate": BASE + 600,
         "timeOrdering": "DESCENDING"},
        {"entryId": "bad", "propertyAlias": TEMP, "qualities": ["GOOD", "BAD"]},
    ]
    got: dict[str, list[Any]] = {}
    skipped: list[list[tuple[str, str]]] = []
    errors: list[str] = []
    token = None
    for _ in range(20):
        kwargs = {"nextToken": token} if token else {}
        resp = await call(client, "batch_get_asset_property_value_history", entries=entries, maxResults=12, **kwargs)
        assert sum(len(e["assetPropertyValueHistory"]) for e in resp["successEntries"]) <= 12
        for e in resp["successEntries"]:
            got.setdefault(e["entryId"], []).extend(v["value"] for v in e["assetPropertyValueHistory"])
        errors += [e["entryId"] for e in resp["errorEntries"]]
        skipped.append([(e["entryId"], e["completionStatus"]) for e in resp["skippedEntries"]])
        token = resp.get("nextToken")
        if not token:
            break
    assert got["temp"] == [{"doubleValue": float(s)} for s in range(101, 131)]
    assert got["status"] == [{"stringValue": "run" if k % 2 else "idle"} for k in reversed(range(1, 20))]
    assert sorted(errors) == ["bad", "missing"]  # each reported once, when reached
    assert skipped[0] == [] and ("temp", "SUCCESS") in skipped[-1] and ("missing", "ERROR") in skipped[-1]
    raw = await http_post(gw, "/properties/batch/history", {"entries": entries, "maxResults": 5})
    assert_valid_output("BatchGetAssetPropertyValueHistory", raw.json())
    later = await http_post(gw, "/properties/batch/history",
                            {"entries": entries, "maxResults": 5, "nextToken": raw.json()["nextToken"]})
    assert_valid_output("BatchGetAssetPropertyValueHistory", later.json())
    other = await http_post(gw, "/properties/batch/history",
                            {"entries": entries[:1], "nextToken": raw.json()["nextToken"]})
    assert other.status_code == 400 and "another request body" in other.json()["message"]


async def test_batch_aggregates_page_and_report_bad_entries(api: Any) -> None:
    gw, client = api
    gw.api_config = gw.api_config.model_copy(update={"any_resolution": True})  # for the 5m entry
    start, end = datetime.fromtimestamp(BASE, UTC), datetime.fromtimestamp(BASE + 600, UTC)
    entries = [
        {"entryId": "m", "propertyAlias": TEMP, "aggregateTypes": ["AVERAGE"], "resolution": "1m",
         "startDate": start, "endDate": end},
        {"entryId": "five", "propertyAlias": TEMP, "aggregateTypes": ["COUNT"], "resolution": "5m",
         "startDate": start, "endDate": end, "timeOrdering": "DESCENDING"},
        {"entryId": "res", "propertyAlias": TEMP, "aggregateTypes": ["COUNT"], "resolution": "1w",
         "startDate": start, "endDate": end},
        {"entryId": "str", "propertyAlias": STATUS, "aggregateTypes": ["SUM"], "resolution": "1m",
         "startDate": start, "endDate": end},
    ]
    got: dict[str, list[Any]] = {}
    errors: dict[str, str] = {}
    token = None
    pages = 0
    while True:
        kwargs = {"nextToken": token} if token else {}
        resp = await call(client, "batch_get_asset_property_aggregates", entries=entries, maxResults=4, **kwargs)
        pages += 1
        for e in resp["successEntries"]:
            got.setdefault(e["entryId"], []).extend((epoch(v["timestamp"]), v["value"]) for v in e["aggregatedValues"])
        errors.update({e["entryId"]: e["errorCode"] for e in resp["errorEntries"]})
        token = resp.get("nextToken")
        if not token:
            break
    assert pages == 4  # 11 + 3 buckets, 4 a page
    assert [t for t, _ in got["m"]] == [BASE + 60 * k for k in range(11)]
    assert got["five"] == [(BASE + 600, {"count": 1.0}), (BASE + 300, {"count": 300.0}), (BASE, {"count": 299.0})]
    assert errors == {"res": "InvalidRequestException", "str": "InvalidRequestException"}
    raw = await http_post(gw, "/properties/batch/aggregates", {"entries": [
        {**entries[0], "startDate": BASE, "endDate": BASE + 600}], "maxResults": 3})
    assert_valid_output("BatchGetAssetPropertyAggregates", raw.json())


@pytest.mark.parametrize(
    ("op", "entries", "needle"),
    [
        ("batch_get_asset_property_value", [{"entryId": f"e{i}", "propertyAlias": TEMP} for i in range(129)],
         "at most 128"),
        ("batch_get_asset_property_value_history", [{"entryId": f"e{i}", "propertyAlias": TEMP} for i in range(17)],
         "at most 16"),
        ("batch_get_asset_property_aggregates",
         [{"entryId": f"e{i}", "propertyAlias": TEMP, "aggregateTypes": ["COUNT"], "resolution": "1m",
           "startDate": BASE, "endDate": BASE + 1} for i in range(17)], "at most 16"),
        ("batch_get_asset_property_value", [{"entryId": "a", "propertyAlias": TEMP},
                                            {"entryId": "a", "propertyAlias": STATE}], "duplicate"),
        ("batch_get_asset_property_value", [], "at least 1 entry"),
    ],
    ids=["latest-129", "history-17", "aggregates-17", "duplicate-id", "no-entries"],
)
async def test_batch_structural_problems_fail_the_request(api: Any, op: str, entries: list[Any], needle: str) -> None:
    _, client = api
    code, message = await error_code(call(client, op, entries=entries))
    assert code == "InvalidRequestException" and needle in message


async def test_batch_max_results_limits(api: Any) -> None:
    gw, _ = api
    entry = {"entryId": "a", "propertyAlias": TEMP, "aggregateTypes": ["COUNT"], "resolution": "1m",
             "startDate": BASE, "endDate": BASE + 1}
    too_many = await http_post(gw, "/properties/batch/aggregates", {"entries": [entry], "maxResults": 4001})
    assert too_many.status_code == 400 and "maxResults" in too_many.json()["message"]
    too_many = await http_post(gw, "/properties/batch/history", {"entries": [entry], "maxResults": 20001})
    assert too_many.status_code == 400 and "maxResults" in too_many.json()["message"]


# --- GetAssetPropertyValueHistory keyset paging ------------------------------------------------------


async def test_history_pages_stay_right_when_data_arrives_between_pages(api: Any) -> None:
    gw, client = api
    first = await call(client, "get_asset_property_value_history", propertyAlias=TEMP, startDate=BASE,
                       endDate=BASE + 600, qualities=["GOOD"], maxResults=5)
    assert [v["value"]["doubleValue"] for v in first["assetPropertyValueHistory"]] == [1.0, 2.0, 3.0, 4.0, 5.0]
    # older values arrive (they sort before the page boundary), and a value is replaced after it
    await gw.ingest(from_columns([TEMP] * 2, [BASE * NS_PER_S + 1, (BASE + 6) * NS_PER_S], double=[-1.0, 66.0]))
    second = await call(client, "get_asset_property_value_history", propertyAlias=TEMP, startDate=BASE,
                        endDate=BASE + 600, qualities=["GOOD"], maxResults=5, nextToken=first["nextToken"])
    assert [v["value"]["doubleValue"] for v in second["assetPropertyValueHistory"]] == [66.0, 7.0, 8.0, 9.0, 10.0]


# --- ExecuteQuery --------------------------------------------------------------------------------


async def test_execute_query_joins_the_views(api: Any) -> None:
    gw, client = api
    sql = ("SELECT a.asset_name, p.property_name, r.event_timestamp, r.double_value, r.quality "
           "FROM asset a, asset_property p, raw_time_series r "
           "WHERE a.asset_id = p.asset_id AND p.property_id = r.property_id AND a.asset_id = r.asset_id "
           f"AND p.property_alias = '{TEMP}' AND r.quality = 'GOOD' ORDER BY r.event_timestamp LIMIT 3")
    resp = await call(client, "execute_query", queryStatement=sql)
    assert [(c["name"], c["type"]["scalarType"]) for c in resp["columns"]] == [
        ("asset_name", "STRING"), ("property_name", "STRING"), ("event_timestamp", "TIMESTAMP"),
        ("double_value", "DOUBLE"), ("quality", "STRING")]
    first = [d["scalarValue"] for d in resp["rows"][0]["data"]]
    assert first[:2] == ["Press1", "Temperature"] and first[3:] == ["1.0", "GOOD"]
    assert first[2] == datetime.fromtimestamp(BASE + 1, UTC).strftime("%Y-%m-%d %H:%M:%S") + ".000000"
    raw = await http_post(gw, "/queries/execution", {"queryStatement": (
        "SELECT property_alias, int_value, string_value, boolean_value FROM latest_value_time_series "
        "WHERE property_alias IS NOT NULL ORDER BY property_alias")})
    body = assert_valid_output("ExecuteQuery", raw.json())
    assert [r["data"][0]["scalarValue"] for r in body["rows"]] == [STATUS, TEMP]
    assert body["rows"][0]["data"][1] == {"nullValue": True}


async def test_execute_query_pages_with_the_paginator(api: Any) -> None:
    _, client = api

    def rows() -> list[str]:
        paginator = client.get_paginator("execute_query")
        out: list[str] = []
        for page in paginator.paginate(
                queryStatement=f"SELECT double_value FROM raw_time_series WHERE property_alias = '{TEMP}' "
                               "AND quality = 'GOOD' ORDER BY event_timestamp",
                PaginationConfig={"PageSize": 250}):
            assert len(page["rows"]) <= 250
            out += [r["data"][0]["scalarValue"] for r in page["rows"]]
        return out

    assert await asyncio.to_thread(rows) == [f"{float(s)}" for s in range(1, 601)]


async def test_execute_query_precomputed_aggregates_and_attributes(api: Any) -> None:
    _, client = api
    resp = await call(client, "execute_query", queryStatement=(
        "SELECT resolution, count_value, average_value FROM precomputed_aggregates "
        f"WHERE property_alias = '{TEMP}' AND quality = 'GOOD' AND resolution IN ('15m', '1h') ORDER BY 1"))
    assert [[d["scalarValue"] for d in r["data"]] for r in resp["rows"]] == [["15m", "600", "300.5"],
                                                                             ["1h", "600", "300.5"]]
    attrs = await call(client, "execute_query", queryStatement=(
        "SELECT property_type, count(*) FROM asset_property GROUP BY property_type ORDER BY 1"))
    assert {r["data"][0]["scalarValue"] for r in attrs["rows"]} >= {"attribute", "measurement"}


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM '/etc/passwd'", "unknown table"),
        ("SELECT * FROM asset WHERE asset_id IN (SELECT * FROM glob('/*'))", "glob"),
        ("COPY (SELECT * FROM asset) TO '/tmp/out.csv'", "only SELECT"),
        ("ATTACH '/tmp/other.db'", "only SELECT"),
        ("SELECT 1; SELECT 2", "exactly one"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
        ("SELECT * FROM information_schema.tables", "unknown table"),
        ("SELECT * FROM __sw_raw", "unknown table"),
        ("SELECT * FROM assets", "unknown table assets"),
        ("SELEC 1", "syntax error"),
        ("SELECT no_such_column FROM asset", "no_such_column"),
    ],
    ids=["read_csv", "file-as-table", "glob-in-subquery", "copy", "attach", "two-statements", "table-function",
         "catalog", "internal-table", "not-a-view", "syntax", "binder"],
)
async def test_execute_query_refuses_what_is_not_a_select_over_the_views(api: Any, sql: str, needle: str) -> None:
    _, client = api
    code, message = await error_code(call(client, "execute_query", queryStatement=sql))
    assert code == "ValidationException" and needle in message


async def test_execute_query_times_out(api: Any) -> None:
    gw, client = api
    gw.api_config = gw.api_config.model_copy(update={"query": QueryLimits(timeout=0.2)})
    code, _ = await error_code(call(client, "execute_query", queryStatement=(
        "SELECT count(*) FROM raw_time_series a, raw_time_series b, raw_time_series c, raw_time_series d "
        "WHERE a.double_value + b.double_value + c.double_value + d.double_value = -1")))
    assert code == "QueryTimeoutException"
