"""ExecuteQuery speaks SiteWise's query language: the user guide's own examples, through boto3 over HTTP.

A wind farm of 12 windmills (Wind Speed, RPM, Location) and 3 stations (one property each): 15 assets, 39
properties. Each example states the rows it must return, and what DuckDB's cross join returned before.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
import duckdb
import pytest

from api.sitewise.sql import build_sandbox, scan_streams
from api.sitewise.sql_dialect import parse, scan_of, translate
from sitewise_edge.samples import NS_PER_S, from_columns
from tests.conftest import gateway_config, sitewise_client

WINDMILL, STATION = str(uuid.uuid4()), str(uuid.uuid4())
SPEED, RPM, LOCATION, POWER = (str(uuid.uuid4()) for _ in range(4))
MILLS = [str(uuid.uuid4()) for _ in range(12)]
STATIONS = [str(uuid.uuid4()) for _ in range(3)]


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * NS_PER_S


def farm() -> dict[str, Any]:
    def prop(pid: str, name: str, data_type: str, kind: dict[str, Any]) -> dict[str, Any]:
        return {"id": pid, "name": name, "dataType": data_type, "type": kind}

    models = [
        {"assetModelId": WINDMILL, "assetModelName": "Windmill", "assetModelProperties": [
            prop(SPEED, "Wind Speed", "DOUBLE", {"measurement": {}}),
            prop(RPM, "RPM", "INTEGER", {"measurement": {}}),
            prop(LOCATION, "Location", "STRING", {"attribute": {"defaultValue": "  north ridge "}})]},
        {"assetModelId": STATION, "assetModelName": "Station", "assetModelProperties": [
            prop(POWER, "power@grid.main", "DOUBLE", {"measurement": {}})]},
    ]
    assets = [{"assetId": a, "assetName": f"Windmill {i + 1}", "assetModelId": WINDMILL,
               "assetDescription": "a windmill of the north ridge",
               "assetProperties": [{"id": SPEED, "name": "Wind Speed", "alias": f"/farm/mill{i + 1}/speed"},
                                   {"id": RPM, "name": "RPM", "alias": f"/farm/mill{i + 1}/rpm"},
                                   {"id": LOCATION, "name": "Location"}]}
              for i, a in enumerate(MILLS)]
    assets += [{"assetId": a, "assetName": f"Station {i + 1}", "assetModelId": STATION,
                "assetProperties": [{"id": POWER, "name": "power@grid.main", "alias": f"/farm/station{i + 1}/power"}]}
               for i, a in enumerate(STATIONS)]
    return {"assetModels": models, "assets": assets, "associations": []}


@pytest.fixture
async def farm_api(tmp_path: Path, start_gateway: Any) -> Any:
    models = tmp_path / "models"
    models.mkdir()
    (models / "farm.json").write_text(json.dumps(farm()))
    gw = await start_gateway(gateway_config(tmp_path, models=[{"path": str(models)}]))
    # RPM of windmills 1 and 2 at 12:16, 12:17, 12:18 (40, 20, 35); windmill 3 at 12:25 (outside the window)
    times = [ts("2022-01-05T12:16:00"), ts("2022-01-05T12:17:00"), ts("2022-01-05T12:18:00")]
    for mill in (1, 2):
        await gw.ingest(from_columns([f"/farm/mill{mill}/rpm"] * 3, times, integer=[40, 20, 35]))
    await gw.ingest(from_columns(["/farm/mill3/rpm"], [ts("2022-01-05T12:25:00")], integer=[50]))
    await gw.ingest(from_columns(["/farm/mill1/speed"], [ts("2022-01-05T12:16:30")], double=[7.5]))
    return gw, sitewise_client(gw.api_port)


async def rows(client: Any, sql: str) -> list[list[str | None]]:
    resp = await asyncio.to_thread(client.execute_query, queryStatement=sql)
    return [[d.get("scalarValue") for d in r["data"]] for r in resp["rows"]]


async def test_metadata_filtering_joins_asset_and_property(farm_api: Any) -> None:
    """UG "Example queries": 36 rows (12 windmills × 3 properties); the cross join gave 12 × 39 = 468."""
    _, client = farm_api
    got = await rows(client, "SELECT a.asset_name, p.property_name FROM asset a, asset_property p "
                             "WHERE a.asset_name LIKE 'Windmill%'")
    assert sorted(map(tuple, got)) == sorted((f"Windmill {i}", n) for i in range(1, 13)
                                             for n in ("Wind Speed", "RPM", "Location"))


async def test_value_filtering_joins_asset_and_raw_data(farm_api: Any) -> None:
    """UG "Example queries": 4 rows (two windmills, two values > 30 each); the cross join gave 15 × 4 = 60."""
    _, client = farm_api
    got = await rows(client, "SELECT a.asset_name, r.int_value FROM asset a, raw_time_series r "
                             "WHERE r.int_value > 30 AND r.event_timestamp > TIMESTAMP '2022-01-05 12:15:00' "
                             "AND r.event_timestamp < TIMESTAMP '2022-01-05 12:20:00'")
    assert sorted(map(tuple, got)) == [("Windmill 1", "35"), ("Windmill 1", "40"), ("Windmill 2", "35"),
                                       ("Windmill 2", "40")]


async def test_implicit_join_of_three_views(farm_api: Any) -> None:
    """UG "Supported clauses": the named asset's property's data, 3 rows (the cross join gave 1 × 12 × 8 = 96)."""
    _, client = farm_api
    got = await rows(client, "SELECT a.asset_name, p.property_name, r.event_timestamp "
                             "FROM asset a, asset_property p, raw_time_series r "
                             "WHERE a.asset_name='Windmill 2' AND p.property_name='RPM'")
    assert sorted(got) == [["Windmill 2", "RPM", f"2022-01-05 12:1{m}:00.000000"] for m in (6, 7, 8)]


async def test_date_time_functions(farm_api: Any) -> None:
    """UG "Date time functions": DATE_ADD/DATE_SUB/TIMESTAMP_ADD/TIMESTAMP_SUB(unit, n, ts) and NOW()."""
    gw, client = farm_api
    got = await rows(client, (
        "SELECT r.asset_id, r.int_value, date_add(DAY, 7, r.event_timestamp) AS date_in_future, "
        "date_sub(YEAR, 2, r.event_timestamp) AS date_in_past, timestamp_add(DAY, 2, r.event_timestamp) AS "
        "timestamp_in_future, timestamp_sub(DAY, 2, r.event_timestamp) AS timestamp_in_past, now() AS time_now "
        "FROM raw_time_series AS r WHERE r.property_alias = '/farm/mill3/rpm'"))
    assert len(got) == 1
    asset, value, future, past, ts_future, ts_past, now = got[0]
    assert (asset, value) == (MILLS[2], "50")
    assert [future, past, ts_future, ts_past] == [t + ".000000" for t in (
        "2022-01-12 12:25:00", "2020-01-05 12:25:00", "2022-01-07 12:25:00", "2022-01-03 12:25:00")]
    assert now is not None
    taken = datetime.fromisoformat(now).replace(tzinfo=UTC).timestamp()
    assert abs(taken - gw.clock.time()) < 60
    everything = await rows(client, "SELECT count(*) FROM raw_time_series AS r")
    assert everything == [["8"]]
    code, message = await query_error(client, "SELECT date_add(WEEK, 1, event_timestamp) FROM raw_time_series")
    assert code == "ValidationException" and "YEAR, MONTH, DAY, HOUR, MINUTE, SECOND, got WEEK" in message


async def test_string_functions(farm_api: Any) -> None:
    """UG "String functions", each example."""
    _, client = farm_api
    one = f"a.asset_id = '{STATIONS[0]}'"
    assert await rows(client, f"SELECT LENGTH(a.asset_id) AS asset_id_length FROM asset AS a WHERE {one}") == [
        ["36"]]
    assert await rows(client, "SELECT CONCAT(p.property_id, p.property_name) FROM asset_property AS p "
                              f"WHERE p.asset_id = '{STATIONS[0]}'") == [[POWER + "power@grid.main"]]
    assert await rows(client, f"SELECT SUBSTR(a.asset_name, 1, 3) AS substr_val FROM asset AS a WHERE {one}") == [
        ["Sta"]]
    station = f"p.asset_id = '{STATIONS[0]}'"
    assert await rows(client, f"SELECT SUBSTR(p.property_name, 3) AS substr_val1 FROM asset_property AS p "
                              f"WHERE {station}") == [["wer@grid.main"]]
    assert await rows(client, "SELECT SUBSTR(p.property_name, '@[^.]*') AS substr_val2 FROM asset_property AS p "
                              f"WHERE {station}") == [["@grid"]]
    attr = f"p.property_name = 'Location' AND p.asset_id = '{MILLS[0]}'"
    assert await rows(client, "SELECT UPPER(p.string_attribute_value), TRIM(p.string_attribute_value), "
                              "LTRIM(p.string_attribute_value), RTRIM(p.string_attribute_value), "
                              "STR_REPLACE(p.string_attribute_value, 'north', 'south') "
                              f"FROM asset_property AS p WHERE {attr}") == [
        ["  NORTH RIDGE ", "north ridge", "north ridge ", "  north ridge", "  south ridge "]]


async def test_property_type_is_lower_case_as_the_guide_filters(farm_api: Any) -> None:
    _, client = farm_api
    got = await rows(client, "SELECT p.property_type, count(*) FROM asset_property p "
                             "WHERE p.property_type IN ('attribute', 'measurement') GROUP BY p.property_type "
                             "ORDER BY 1")
    assert got == [["attribute", "12"], ["measurement", "27"]]


async def test_subquery_in_in_and_aggregates(farm_api: Any) -> None:
    """The shape of the UG's "Supported clauses" example: IN (SELECT ... GROUP BY ... HAVING)."""
    _, client = farm_api
    got = await rows(client, (
        "SELECT a.asset_name, count(*) FROM asset a, asset_property p WHERE p.property_id IN ("
        "SELECT property_id FROM raw_time_series WHERE event_timestamp BETWEEN TIMESTAMP '2022-01-05 00:00:00' "
        "AND TIMESTAMP '2022-01-06 00:00:00' GROUP BY asset_id, property_id HAVING COUNT(*) > 2) "
        "GROUP BY a.asset_name HAVING COUNT(*) > 0 ORDER BY a.asset_name ASC LIMIT 5"))
    # RPM is the one property with more than 2 values of an asset that day: one row per windmill
    assert got == [[f"Windmill {i}", "1"] for i in (1, 10, 11, 12, 2)]
    avg = await rows(client, "SELECT a.asset_name, avg(r.int_value), STDDEV(r.int_value) FROM asset a, "
                             "raw_time_series r WHERE r.int_value IS NOT NULL GROUP BY a.asset_name ORDER BY 1")
    assert [r[:2] for r in avg] == [["Windmill 1", "31.666666666666668"], ["Windmill 2", "31.666666666666668"],
                                    ["Windmill 3", "50.0"]]
    assert avg[2][2] is None


async def query_error(client: Any, sql: str) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        await asyncio.to_thread(client.execute_query, queryStatement=sql)
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


@pytest.mark.parametrize(("sql", "needle"), [
    pytest.param("SELECT * FROM asset a LEFT JOIN asset_property p ON a.asset_id = p.asset_id",
                 "LEFT JOIN is not supported: SiteWise supports JOIN and INNER JOIN", id="left-join"),
    pytest.param("SELECT * FROM asset CROSS JOIN asset_property", "CROSS JOIN is not supported", id="cross-join"),
    pytest.param("SELECT asset_id FROM asset UNION SELECT asset_id FROM asset_property", "UNION is not supported",
                 id="union"),
    pytest.param("WITH x AS (SELECT 1) SELECT * FROM x", "WITH is not supported", id="with"),
    pytest.param("SELECT * FROM (SELECT * FROM asset)", "a subquery in FROM is not supported", id="from-subquery"),
    pytest.param("SELECT CAST('x' AS TIMESTAMP FORMAT asset_name) FROM asset", "FORMAT",
                 id="cast-format-not-literal"),
])
async def test_what_the_dialect_does_not_allow_is_refused(farm_api: Any, sql: str, needle: str) -> None:
    _, client = farm_api
    code, message = await query_error(client, sql)
    assert code == "ValidationException" and needle in message


async def test_cast_with_a_java_format(farm_api: Any) -> None:
    _, client = farm_api
    assert await rows(client, "SELECT CAST('2023-12-25 14:30:00' AS TIMESTAMP FORMAT 'yyyy-MM-dd HH:mm:ss') "
                              "AS converted_timestamp") == [["2023-12-25 14:30:00.000000"]]
    assert await rows(client, "SELECT a.asset_name FROM asset a ORDER BY a.parent_asset_id, a.asset_name "
                              "LIMIT 1") == [["Station 1"]]


# --- push-down: what the sandbox loads -------------------------------------------------------------------


def scan(sql: str, view: str = "raw_time_series") -> Any:
    tree = parse(sql)
    translate(tree, 0)
    return scan_of(tree, view)


def test_filters_bound_the_rows_loaded() -> None:
    s = scan("SELECT a.asset_name, r.int_value FROM asset a, raw_time_series r WHERE r.int_value > 30 "
             "AND r.event_timestamp > TIMESTAMP '2022-01-05 12:15:00' "
             "AND r.event_timestamp < TIMESTAMP '2022-01-05 12:20:00'")
    assert (s.start_ns, s.end_ns) == (ts("2022-01-05T12:15:00") - 2000, ts("2022-01-05T12:20:00") + 1000)
    s = scan("SELECT * FROM raw_time_series r WHERE r.property_alias IN ('/a', '/b') AND r.property_alias = '/a'")
    assert s.streams == {"/a"}
    s = scan("SELECT a.asset_name, p.property_name, r.event_timestamp FROM asset a, asset_property p, "
             "raw_time_series r WHERE a.asset_name='my_asset' AND p.property_name='my_property'")
    assert s.metadata_sql is not None and "my_asset" in s.metadata_sql and "my_property" in s.metadata_sql


@pytest.mark.parametrize("sql", [
    pytest.param("SELECT * FROM raw_time_series r WHERE r.event_timestamp > TIMESTAMP '2022-01-01 00:00:00' "
                 "OR r.int_value = 1", id="or"),
    pytest.param("SELECT * FROM asset a JOIN raw_time_series r ON true WHERE a.asset_name = 'x'",
                 id="explicit-join-condition"),
    pytest.param("SELECT * FROM raw_time_series r, raw_time_series s WHERE r.property_alias = '/a'",
                 id="two-uses"),
])
def test_what_cannot_be_bounded_reads_the_whole_view(sql: str) -> None:
    s = scan(sql)
    assert (s.streams, s.start_ns, s.end_ns, s.metadata_sql) == (None, None, None, None)


async def test_metadata_filters_load_only_their_streams(farm_api: Any) -> None:
    """The implicit join bounds raw_time_series by the metadata conditions: one stream loaded, not all."""
    gw, _ = farm_api
    con = duckdb.connect(":memory:")
    try:
        s = scan("SELECT r.int_value FROM asset a, asset_property p, raw_time_series r "
                 "WHERE a.asset_name = 'Windmill 2' AND p.property_name = 'RPM'")
        build_sandbox(con, {"asset", "asset_property"}, None, gw)  # type: ignore[arg-type]  # metadata only
        assert scan_streams(con, s) == ["/farm/mill2/rpm"]
    finally:
        con.close()


async def test_computed_time_bounds_are_folded(farm_api: Any) -> None:
    """DATE_SUB(HOUR, 1, NOW()) bounds the scan like a literal (NOW() is the gateway's clock)."""
    gw, client = farm_api
    await gw.ingest(from_columns(["/farm/mill4/rpm"], [gw.clock.time_ns() - 60 * NS_PER_S], integer=[7]))
    got = await rows(client, "SELECT a.asset_name, r.int_value FROM asset a, raw_time_series r "
                             "WHERE r.event_timestamp > DATE_SUB(HOUR, 1, NOW())")
    assert got == [["Windmill 4", "7"]]
    tree = parse("SELECT * FROM raw_time_series r WHERE r.event_timestamp > DATE_SUB(HOUR, 1, NOW())")
    translate(tree, 3_600_000 * 5)
    s = scan_of(tree, "raw_time_series", lambda e: 4 * 3600 * NS_PER_S if "INTERVAL (1) HOUR" in e else None)
    assert s.start_ns == 4 * 3600 * NS_PER_S - 2000


async def test_aggregate_functions_of_the_guide(farm_api: Any) -> None:
    """UG "Aggregate functions": each example over the farm's 7 integer values (RPM 40, 20, 35 twice; 50)."""
    _, client = farm_api
    values = [40, 20, 35, 40, 20, 35, 50]
    for fn, expected in (("COUNT", "7"), ("MAX", "50"), ("MIN", "20"), ("SUM", "240")):
        assert await rows(client, f"SELECT {fn}(d.int_value) FROM raw_time_series AS d") == [[expected]], fn
    (sd,), = await rows(client, "SELECT STDDEV(d.int_value) FROM raw_time_series AS d")
    assert float(sd or "nan") == pytest.approx(statistics.stdev(values))
    got = await rows(client, "SELECT MAX(d.int_value) AS max_int_value, d.asset_id FROM raw_time_series AS d "
                             "GROUP BY d.asset_id HAVING MAX(d.int_value) > 5")
    assert sorted(got) == sorted([["40", MILLS[0]], ["40", MILLS[1]], ["50", MILLS[2]]])
    # the guide's AVG example has no GROUP BY for its other columns: refused, saying what is missing
    code, message = await query_error(client, "SELECT d.asset_id, d.property_id, AVG(d.int_value) "
                                              "FROM raw_time_series AS d")
    assert code == "ValidationException" and "GROUP BY" in message
