"""The stats shape both publishers share, and the one-rewrite settle of the dead-letter store."""

from __future__ import annotations

import time
from pathlib import Path

import botocore.exceptions

from sitewise_edge.publish.deadletter import DeadLetterStore
from sitewise_edge.publish.retry import s3_policy
from sitewise_edge.publish.stats import ExportStats, PublishStats, SitewiseStats

COMMON = {"state", "valuesSent", "requestsSent", "retries", "valuesRejected", "errors", "lastSuccess", "lastError"}
SITEWISE_BEFORE = COMMON | {"valuesParked", "valuesToS3", "valuesReplayed", "throttled", "valuesPerSecond",
                            "oldestUnsentAgeSeconds", "liveLane", "rateLimitWaitSeconds"}
EXPORT_BEFORE = COMMON | {"filesExported", "bytesExported", "lastExport", "backlogDays", "oldestBacklogDay"}


def test_every_key_shown_before_is_still_shown() -> None:
    assert set(SitewiseStats().as_dict()) >= SITEWISE_BEFORE
    assert set(ExportStats().as_dict()) >= EXPORT_BEFORE
    assert set(PublishStats().as_dict()) == COMMON | {"throttled"}  # what the dashboard shows alike


def test_a_failed_request_is_counted_by_kind_with_its_message() -> None:
    stats = ExportStats()
    slow = botocore.exceptions.ClientError({"Error": {"Code": "SlowDown", "Message": "easy"},
                                            "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject")
    stats.failed(s3_policy(300.0).classify_error(slow), "uploading s3://b/k")
    stats.failed(s3_policy(300.0).classify_error(slow))
    shown = stats.as_dict()
    assert shown["errors"] == {"SlowDown": 2} and shown["throttled"] == 2
    assert shown["lastError"] == "SlowDown: easy"
    stats.failed(s3_policy(300.0).classify_error(slow), "deleting s3://b/k")
    assert stats.last_error == "deleting s3://b/k: SlowDown: easy"


def test_oldest_unsent_age_is_shown_in_seconds() -> None:
    stats = SitewiseStats(oldest_unsent_ns=time.time_ns() - 90 * 10**9)
    assert 89 <= float(stats.as_dict()["oldestUnsentAgeSeconds"]) <= 95  # type: ignore[arg-type]


def value(second: int) -> dict[str, object]:
    return {"value": {"doubleValue": 1.0}, "timestamp": {"timeInSeconds": second, "offsetInNanos": 0},
            "quality": "GOOD"}


def test_settle_removes_what_was_sent_and_adds_what_was_refused_in_one_rewrite(tmp_path: Path) -> None:
    store = DeadLetterStore(tmp_path / "dl.jsonl", "cloud")
    sent = store.append([{"propertyAlias": f"/r/{i}", "propertyValues": [value(i)]} for i in range(5)], "replay me")
    kept = store.append([{"propertyAlias": "/kept", "propertyValues": [value(9)]}], "InvalidRequestException: x")
    refused = store.new([{"propertyAlias": "/r/3", "propertyValues": [value(3)]}], "InvalidRequestException: again")
    assert store.list() and not any(r.id == refused[0].id for r in store.list())  # new() writes nothing
    inode = (tmp_path / "dl.jsonl").stat().st_ino
    assert store.settle({r.id for r in sent}, refused) == 5
    assert (tmp_path / "dl.jsonl").stat().st_ino != inode  # replaced atomically, once
    assert [(r.target, r.reason) for r in store.list()] == [("/kept", kept[0].reason),
                                                            ("/r/3", "InvalidRequestException: again")]
    assert store.settle(set(), []) == 0


def test_settle_keeps_the_file_within_its_budget(tmp_path: Path) -> None:
    store = DeadLetterStore(tmp_path / "dl.jsonl", "cloud", max_bytes=3000)
    first = store.append([{"propertyAlias": "/a", "propertyValues": [value(1)]}], "r")
    many = store.new([{"propertyAlias": f"/b/{i}", "propertyValues": [value(i)]} for i in range(40)], "again")
    store.settle({first[0].id}, many)
    assert (tmp_path / "dl.jsonl").stat().st_size <= 3000 and store.dropped > 0
    assert store.list()[-1].target == "/b/39"  # the oldest went
