"""The S3 export against moto's S3 server on 127.0.0.1: layout, values, idempotence, late data, failures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import boto3.exceptions
import botocore.config
import botocore.exceptions
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from moto.server import ThreadedMotoServer

from sitewise_edge.config import S3Export, StorageConfig, parse_config
from sitewise_edge.errors import ConfigError, PublishError
from sitewise_edge.publish import s3
from sitewise_edge.publish.retry import s3_policy
from sitewise_edge.publish.s3 import (
    EXPORT_SCHEMA,
    S3ExportTask,
    build_day_file,
    normalize_prefix,
    object_key,
    sealed,
    stream_allowed,
)
from sitewise_edge.samples import QUALITY_NAMES, from_columns
from storage.store import Store
from tests.conftest import eventually, free_port, gateway_config

NS = 10**9
TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=d) for d in (4, 3, 2)]  # sealed with any seal_after below a day


def day_ns(d: date, seconds: float = 0.0) -> int:
    return int(datetime.combine(d, datetime.min.time(), UTC).timestamp()) * NS + int(seconds * NS)


def day_batch(d: date, n: int = 40, salt: int = 0) -> pa.RecordBatch:
    """Every value type, every quality, nanosecond times, an unaliased property, a BAD null value."""
    streams = ["/plant/line1/temp", "/plant/line1/count", "/plant/line1/state", "/plant/line1/on",
               "asset:a1b2/p3c4", "/lab/probe"]
    rows: dict[str, list[Any]] = {"s": [], "t": [], "d": [], "i": [], "str": [], "b": [], "q": []}
    for k in range(n):
        s = streams[k % len(streams)]
        rows["s"].append(s)
        rows["t"].append(day_ns(d, 3600 + k * 7.25) + 123)  # not on a microsecond: precision is checked
        rows["q"].append(k % 3 if s != "/plant/line1/temp" else 0)
        rows["d"].append(float(k + salt) + 0.5 if s in ("/plant/line1/temp", "asset:a1b2/p3c4", "/lab/probe")
                         else None)
        rows["i"].append(k * 1000 + salt if s == "/plant/line1/count" else None)
        rows["str"].append(f"state-{k + salt}" if s == "/plant/line1/state" else None)
        rows["b"].append(bool(k % 2) if s == "/plant/line1/on" else None)
    rows["s"].append("/plant/line1/temp")  # a null value (BAD): no value column set
    rows["t"].append(day_ns(d, 80_000))
    rows["q"].append(1)
    for c in ("d", "i", "str", "b"):
        rows[c].append(None)
    return from_columns(rows["s"], rows["t"], double=rows["d"], integer=rows["i"], string=rows["str"],
                        boolean=rows["b"], quality=rows["q"])


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials for moto from the environment (the standard chain); no profile or IMDS lookups."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class Moto:
    """moto's S3 server on 127.0.0.1; can be taken down and brought back on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            assert self.server._server is not None
            self.server._server.server_close()  # stop() leaves the socket listening: connections would hang
            self.server = None


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    server = Moto()
    server.start()
    yield server
    server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=botocore.config.Config(s3={"addressing_style": "path"}))


_buckets = iter(range(10**6))


@pytest.fixture
def bucket(moto: Moto) -> str:
    name = f"export-{next(_buckets)}-{int(time.time() * 1000) % 10**6}"
    s3_client(moto.endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """Three sealed days and today, each written by two compactions."""
    s = Store(tmp_path / "data", StorageConfig(compact_interval="1h"))
    await s.open()
    for d in [*DAYS, TODAY]:
        await s.append(day_batch(d))
    await s.compact()
    await s.append(day_batch(DAYS[1], n=12, salt=500))  # same keys again, later: these values win
    await s.compact()
    yield s
    await s.close()


def export_cfg(endpoint: str, bucket: str, **kw: Any) -> S3Export:
    data = {"name": "lake", "type": "s3", "bucket": bucket, "endpoint_url": endpoint, "prefix": "site1/data",
            "interval": "1s", **kw}
    return S3Export.model_validate(data)


# --- helpers: the store's rows and the exported rows, in one comparable form -------------------


def store_rows(store: Store, d: date, allowed: Any = None) -> list[tuple[Any, ...]]:
    with store.reader() as r:  # every value of the day [d, d + 1): intervals are (start, end]
        found = r.points(None, day_ns(d) - 1, day_ns(d, 86400) - 1, quality=None)
    columns = [found.column("stream").cast(pa.string()), found.column("time").cast(pa.int64()),
               *(found.column(c) for c in ("double", "integer", "string", "boolean", "quality"))]
    rows = list(zip(*(c.to_pylist() for c in columns), strict=True))
    return [r for r in rows if allowed is None or allowed(r[0])]


def exported_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    assert table.schema.remove_metadata().equals(EXPORT_SCHEMA), table.schema
    out = []
    for r in table.to_pylist():
        stream = r["alias"] if r["alias"] is not None else f"asset:{r['asset_id']}/{r['property_id']}"
        t_ns = r["timestamp_seconds"] * NS + r["timestamp_nano_offset"]
        assert r["time"] == datetime.fromtimestamp(t_ns // 1000 / 10**6, UTC)  # the query column, to the µs
        value_cols = [c for c in ("double_value", "integer_value", "string_value", "boolean_value")
                      if r[c] is not None]
        assert r["data_type"] == (value_cols[0].split("_")[0].upper() if value_cols else None)
        out.append((stream, t_ns, r["double_value"], r["integer_value"], r["string_value"], r["boolean_value"],
                    QUALITY_NAMES.index(r["quality"])))
    return sorted(out, key=lambda r: (r[0], r[1], r[6]))


def get_table(client: Any, bucket: str, key: str) -> pa.Table:
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pq.read_table(pa.BufferReader(body))


def list_objects(client: Any, bucket: str) -> dict[str, dict[str, Any]]:
    return {o["Key"]: o for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def key_of(d: date) -> str:
    return f"site1/data/date={d.isoformat()}/test-gw.parquet"


# --- end to end ---------------------------------------------------------------------------------


async def test_sealed_days_are_exported_with_every_value_and_read_as_hive_partitions(
        moto: Moto, bucket: str, store: Store, tmp_path: Path) -> None:
    task = S3ExportTask(export_cfg(moto.endpoint, bucket), store, "test-gw")
    done = await task.export_once()
    assert done == [d.isoformat() for d in DAYS]  # oldest first; today is not sealed
    client = s3_client(moto.endpoint)
    objects = list_objects(client, bucket)
    assert sorted(objects) == [key_of(d) for d in DAYS]
    total = 0
    for d in DAYS:
        got = exported_rows(get_table(client, bucket, key_of(d)))
        assert got == store_rows(store, d)
        total += len(got)
    # the later write of a (stream, time, quality) won: day 2 holds the salted values
    later = [r for r in exported_rows(get_table(client, bucket, key_of(DAYS[1]))) if r[0] == "/plant/line1/count"]
    assert later and all(r[3] % 1000 == 500 for r in later[:2])

    stats = task.stats.as_dict()
    assert stats["filesExported"] == 3 and stats["valuesSent"] == total and stats["backlogDays"] == 0
    assert stats["bytesExported"] == sum(o["Size"] for o in objects.values())
    assert stats["lastExport"] == DAYS[-1].isoformat() and stats["errors"] == {}
    head = client.head_object(Bucket=bucket, Key=key_of(DAYS[0]))
    assert head["Metadata"]["gateway"] == "test-gw" and int(head["Metadata"]["rows"]) > 0

    # DuckDB reads a copy of the bucket as it is, with the Hive partition as a column
    mirror = tmp_path / "mirror"
    for key in objects:
        (mirror / key).parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(mirror / key))
    con = duckdb.connect()
    per_day = con.sql(
        f"SELECT date, count(*) AS n, count(DISTINCT alias) AS aliases FROM read_parquet("
        f"'{mirror}/site1/data/date=*/*.parquet', hive_partitioning=true) GROUP BY date ORDER BY date").fetchall()
    con.close()
    assert [(str(r[0]), r[1]) for r in per_day] == [(d.isoformat(), len(store_rows(store, d))) for d in DAYS]

    # a second pass finds nothing to do and touches nothing: keys are deterministic
    requests = task.stats.requests_sent
    assert await task.export_once() == []
    assert task.stats.requests_sent == requests
    assert list_objects(client, bucket) == objects
    # ...also after a restart, from the durable record
    again = S3ExportTask(export_cfg(moto.endpoint, bucket), store, "test-gw")
    assert await again.export_once() == []
    record = json.loads((store.data_dir / "cursors" / "s3" / "lake.json").read_text())
    assert record["destination"] == f"s3://{bucket}/site1/data/"
    assert all(len(v["files"]) >= 1 and len(v["sha256"]) == 64 for v in record["days"].values())


async def test_late_data_re_exports_its_day_to_the_same_key(moto: Moto, bucket: str, store: Store) -> None:
    task = S3ExportTask(export_cfg(moto.endpoint, bucket), store, "test-gw")
    await task.export_once()
    client = s3_client(moto.endpoint)
    before = list_objects(client, bucket)
    late = from_columns(["/plant/line1/temp", "/plant/line1/late"], [day_ns(DAYS[0], 3600) + 123,
                                                                    day_ns(DAYS[0], 7200)], double=[-1.0, 42.0])
    await store.append(late)
    assert await task.export_once() == []  # still in the WAL: the day waits for its compaction
    await store.compact()
    assert await task.export_once() == [DAYS[0].isoformat()]
    after = list_objects(client, bucket)
    assert sorted(after) == sorted(before)  # replaced in place: no second object for the day
    assert after[key_of(DAYS[0])]["ETag"] != before[key_of(DAYS[0])]["ETag"]
    assert after[key_of(DAYS[1])]["ETag"] == before[key_of(DAYS[1])]["ETag"]
    rows = exported_rows(get_table(client, bucket, key_of(DAYS[0])))
    assert rows == store_rows(store, DAYS[0])
    assert ("/plant/line1/late", day_ns(DAYS[0], 7200), 42.0, None, None, None, 0) in rows
    assert [r[2] for r in rows if r[0] == "/plant/line1/temp" and r[1] == day_ns(DAYS[0], 3600) + 123] == [-1.0]


async def test_the_same_content_makes_the_same_file(store: Store, tmp_path: Path) -> None:
    files = [f for f in store.snapshot().files if f.parent.name == f"day={DAYS[1].isoformat()}"]
    assert len(files) == 2
    a = build_day_file("d", files, tmp_path / "a.parquet", ["*"], [], Store.decode_file)
    b = build_day_file("d", list(reversed(files)), tmp_path / "b.parquet", ["*"], [], Store.decode_file)
    assert a.sha256 == b.sha256 and a.rows == b.rows and a.sources == b.sources


async def test_alias_filters(moto: Moto, bucket: str, store: Store) -> None:
    cfg = export_cfg(moto.endpoint, bucket, include=["/plant/*", "asset:*"], exclude=["*/state"])
    task = S3ExportTask(cfg, store, "test-gw")
    await task.export_once()
    client = s3_client(moto.endpoint)

    def allowed(s: str) -> bool:
        return (s.startswith("/plant/") or s.startswith("asset:")) and not s.endswith("/state")

    for d in DAYS:
        rows = exported_rows(get_table(client, bucket, key_of(d)))
        assert rows == store_rows(store, d, allowed)
        assert {r[0] for r in rows} == {"/plant/line1/temp", "/plant/line1/count", "/plant/line1/on",
                                        "asset:a1b2/p3c4"}
    # filters that change re-export; a day with nothing left after them leaves no object behind
    nothing = S3ExportTask(export_cfg(moto.endpoint, bucket, include=["/nowhere/*"]), store, "test-gw")
    assert len(await nothing.export_once()) == 3
    assert list_objects(client, bucket) == {}
    assert nothing.stats.files_exported == 0 and nothing.stats.backlog_days == 0


async def test_large_files_go_in_multipart_uploads(moto: Moto, bucket: str, store: Store) -> None:
    task = S3ExportTask(export_cfg(moto.endpoint, bucket, multipart_threshold="1KiB"), store, "test-gw")
    await task.export_once()
    client = s3_client(moto.endpoint)
    for d in DAYS:
        etag = client.head_object(Bucket=bucket, Key=key_of(d))["ETag"]
        assert etag.strip('"').endswith("-1"), etag  # an S3 multipart ETag: <md5 of part md5s>-<parts>
        assert exported_rows(get_table(client, bucket, key_of(d))) == store_rows(store, d)


async def test_a_missing_bucket_is_a_clear_error_and_nothing_is_recorded(moto: Moto, store: Store) -> None:
    task = S3ExportTask(export_cfg(moto.endpoint, "no-such-bucket-here"), store, "test-gw")
    with pytest.raises(PublishError, match="NoSuchBucket"):
        await task.export_once()
    stats = task.stats.as_dict()
    assert stats["state"] == "error" and stats["errors"] == {"NoSuchBucket": 1} and stats["retries"] == 0
    assert "s3://no-such-bucket-here/site1/data/date=" in str(stats["lastError"])
    assert stats["backlogDays"] == 3 and stats["filesExported"] == 0
    assert not (store.data_dir / "cursors" / "s3" / "lake.json").exists()
    s3_client(moto.endpoint).create_bucket(Bucket="no-such-bucket-here")  # the operator fixes it
    assert len(await task.export_once()) == 3


async def test_an_unreachable_endpoint_is_retried_until_it_is_back(bucket: str, store: Store, moto: Moto) -> None:
    down = Moto()  # nothing listens on its port yet
    task = S3ExportTask(export_cfg(down.endpoint, bucket), store, "test-gw")
    run = asyncio.create_task(task.export_once())
    try:
        await eventually(lambda: task.stats.retries >= 2, within=10)
        assert task.stats.state == "retrying" and "EndpointConnectionError" in task.stats.errors
        assert task.stats.backlog_days == 3
        down.start()  # moto keeps its buckets in the process: the bucket is there
        assert len(await asyncio.wait_for(run, 15)) == 3
    finally:
        run.cancel()
        down.stop()
    assert task.stats.state == "idle" and task.stats.files_exported == 3 and task.stats.backlog_days == 0
    client = s3_client(moto.endpoint)
    assert sorted(list_objects(client, bucket)) == [key_of(d) for d in DAYS]


async def test_gateway_runs_the_export_and_shows_it_in_health(moto: Moto, bucket: str, tmp_path: Path,
                                                              start_gateway: Any) -> None:
    cfg = gateway_config(tmp_path, publishers=[{"name": "lake", "type": "s3", "bucket": bucket,
                                                "endpoint_url": moto.endpoint, "interval": "1h"}])
    gw = await start_gateway(cfg)
    health = await eventually(lambda: gw.status()["publishers"].get("lake", {}).get("state") == "idle"
                              and gw.status())
    lake = health["publishers"]["lake"]
    assert lake["backlogDays"] == 0 and lake["valuesSent"] == 0 and lake["errors"] == {}
    assert gw.publishers == []  # no SiteWise cursor for an export: it holds no WAL back


async def test_both_kinds_of_publisher_run_and_show_alike(moto: Moto, bucket: str, tmp_path: Path,
                                                          start_gateway: Any) -> None:
    cfg = gateway_config(tmp_path, publishers=[
        {"name": "lake", "type": "s3", "bucket": bucket, "endpoint_url": moto.endpoint, "interval": "1h"},
        {"name": "cloud", "type": "sitewise", "endpoint_url": f"http://127.0.0.1:{free_port()}"}])
    gw = await start_gateway(cfg)
    assert [p.name for p in gw.destinations] == ["cloud", "lake"]  # one list; dead letters: gw.publishers
    assert [p.name for p in gw.publishers] == ["cloud"]
    shown = await eventually(lambda: gw.status()["publishers"].get("lake", {}).get("state") == "idle"
                             and gw.status()["publishers"])
    common = {"state", "valuesSent", "requestsSent", "retries", "valuesRejected", "throttled", "errors",
              "lastSuccess", "lastError"}
    assert common <= set(shown["cloud"]) and common <= set(shown["lake"])
    assert shown["cloud"]["backlogRecords"] == 0 and "backlogDays" in shown["lake"]


# --- pure parts ---------------------------------------------------------------------------------


def test_config_defaults_and_errors() -> None:
    cfg = parse_config({"publishers": [{"name": "lake", "type": "s3", "bucket": "my-bucket"}]}, env={})
    (pub,) = cfg.publishers
    assert isinstance(pub, S3Export)
    assert (pub.prefix, pub.seal_after, pub.interval, pub.multipart_threshold) == ("sitewise-edge/", 3600, 300,
                                                                                   64 * 2**20)
    assert pub.include == ["*"] and pub.exclude == [] and pub.endpoint_url is None
    with pytest.raises(ConfigError, match=r"publishers\[0\]\.seal_after: .*duration"):
        parse_config({"publishers": [{"name": "l", "type": "s3", "bucket": "b-1", "seal_after": "soon"}]}, env={})
    with pytest.raises(ConfigError, match=r"publishers\[0\]\.bucket: required key is missing"):
        parse_config({"publishers": [{"name": "l", "type": "s3"}]}, env={})
    with pytest.raises(ConfigError, match=r"publishers\[0\]\.access_key: unknown key"):
        parse_config({"publishers": [{"name": "l", "type": "s3", "bucket": "b-1", "access_key": "x"}]}, env={})


@pytest.mark.parametrize(("prefix", "key"), [
    ("sitewise-edge/", "sitewise-edge/date=2026-01-31/gw.parquet"),
    ("/a/b", "a/b/date=2026-01-31/gw.parquet"),
    ("", "date=2026-01-31/gw.parquet"),
], ids=["default", "slashes-normalised", "bucket-root"])
def test_object_keys(prefix: str, key: str) -> None:
    assert object_key(prefix, "2026-01-31", "gw") == key
    assert normalize_prefix(prefix) + "date=2026-01-31/gw.parquet" == key
    assert object_key(prefix, "2026-01-31", "plant 1/gw").endswith("/plant_1_gw.parquet")


def test_a_day_is_sealed_after_its_grace() -> None:
    end = datetime(2026, 2, 1, tzinfo=UTC).timestamp()
    assert not sealed("2026-01-31", end, 3600)
    assert not sealed("2026-01-31", end + 3599, 3600)
    assert sealed("2026-01-31", end + 3600, 3600)


@pytest.mark.parametrize(("stream", "include", "exclude", "expected"), [
    ("/plant/a/temp", ["*"], [], True),
    ("/plant/a/temp", ["/plant/*"], ["*/temp"], False),
    ("/plant/a/temp", ["/lab/*"], [], False),
    ("/Plant/a/temp", ["/plant/*"], [], False),
    ("asset:1/2", ["asset:*"], [], True),
], ids=["all", "excluded", "not-included", "case-sensitive", "unaliased"])
def test_stream_filters(stream: str, include: list[str], exclude: list[str], expected: bool) -> None:
    assert stream_allowed(stream, include, exclude) is expected


def _client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


def _wrapped(code: str, status: int) -> Exception:
    """What ``upload_file`` raises: S3UploadFailedError, raised while handling the ClientError."""
    outer = boto3.exceptions.S3UploadFailedError("Failed to upload x to b/k: ...")
    outer.__context__ = _client_error(code, status)
    return outer


@pytest.mark.parametrize(("exc", "kind", "retryable"), [
    (_client_error("NoSuchBucket", 404), "NoSuchBucket", False),
    (_client_error("AccessDenied", 403), "AccessDenied", False),
    (_wrapped("AccessDenied", 403), "AccessDenied", False),
    (_client_error("SlowDown", 503), "SlowDown", True),
    (_wrapped("InternalError", 500), "InternalError", True),
    (_client_error("", 502), "HTTP 502", True),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), "EndpointConnectionError", True),
    (botocore.exceptions.NoCredentialsError(), "NoCredentialsError", False),
    (ConnectionResetError(), "ConnectionResetError", True),
], ids=["no-bucket", "denied", "denied-in-upload", "slow-down", "5xx-in-upload", "bare-5xx", "network",
        "no-credentials", "reset"])
def test_error_classes(exc: BaseException, kind: str, retryable: bool) -> None:
    failure = s3_policy(interval=300.0).classify_error(exc)  # the S3 export's retry policy
    assert (failure.kind, failure.retryable) == (kind, retryable)


def test_the_readme_documents_every_setting_and_its_example_validates() -> None:
    readme = (Path(__file__).resolve().parents[2] / "sitewise_edge" / "publish" / "README.md").read_text()
    missing = [f for f in S3Export.model_fields if f not in ("name", "type") and f"`{f}`" not in readme]
    assert not missing, f"sitewise_edge/publish/README.md does not document {missing}"
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    (pub,) = parse_config(yaml.safe_load(example), env={}).publishers
    assert isinstance(pub, S3Export) and pub.include == ["/plant1/*"]


def test_long_uploads_log_their_progress(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(s3, "PROGRESS_EVERY", 0.0)
    progress = s3._Progress("uploading k", 4 * 2**20)
    with caplog.at_level("INFO", logger="sitewise_edge.publish.s3"):
        progress(2**20)
        progress(3 * 2**20)  # done: the upload's own line says so
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["uploading k: 25%"]
