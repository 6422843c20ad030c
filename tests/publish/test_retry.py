"""The retry policy of both publishers (pure): classification of whole-request errors and of 200 answers
with ``errorEntries``, back-off with jitter, the back-off pressure a success partly undoes."""

from __future__ import annotations

import random
from typing import Any

import boto3.exceptions
import botocore.exceptions
import pytest

from sitewise_edge.publish.retry import (
    Backoff,
    Decision,
    Failure,
    FailureStreak,
    RetryPolicy,
    s3_policy,
    sitewise_policy,
)

SITEWISE = sitewise_policy(min_interval=0.5, max_interval=60.0)
S3 = s3_policy(interval=300.0)


def client_error(code: str, status: int, operation: str = "BatchPutAssetPropertyValue") -> Exception:
    error = {"Code": code, "Message": "m"} if code else {}
    return botocore.exceptions.ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}},
                                           operation)


def upload_failed(code: str, status: int) -> Exception:
    outer = boto3.exceptions.S3UploadFailedError("Failed to upload x to b/k: ...")
    outer.__context__ = client_error(code, status, "PutObject")
    return outer


RETRY, GIVE_UP = Decision.RETRY, Decision.GIVE_UP
CASES: list[tuple[str, RetryPolicy, Exception, str, Decision, bool, bool]] = [
    # id, policy, error, kind, decision, throttled, auth
    ("sw-throttling", SITEWISE, client_error("ThrottlingException", 429), "ThrottlingException", RETRY, True, False),
    ("sw-bare-429", SITEWISE, client_error("", 429), "HTTP 429", RETRY, True, False),
    ("sw-limit", SITEWISE, client_error("LimitExceededException", 410), "LimitExceededException", RETRY, True,
     False),
    ("sw-unavailable", SITEWISE, client_error("ServiceUnavailableException", 503), "ServiceUnavailableException",
     RETRY, False, False),
    ("sw-bare-502", SITEWISE, client_error("", 502), "HTTP 502", RETRY, False, False),
    ("sw-denied", SITEWISE, client_error("AccessDeniedException", 403), "AccessDeniedException", RETRY, False,
     True),
    ("sw-bare-401", SITEWISE, client_error("", 401), "HTTP 401", RETRY, False, False),
    ("sw-invalid", SITEWISE, client_error("InvalidRequestException", 400), "InvalidRequestException", GIVE_UP,
     False, False),
    ("sw-not-found", SITEWISE, client_error("ResourceNotFoundException", 404), "ResourceNotFoundException",
     GIVE_UP, False, False),
    ("sw-network", SITEWISE, botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"),
     "EndpointConnectionError", RETRY, False, False),
    ("sw-read-timeout", SITEWISE, botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"),
     "ReadTimeoutError", RETRY, False, False),
    ("sw-reset", SITEWISE, ConnectionResetError(), "ConnectionResetError", RETRY, False, False),
    ("sw-no-credentials", SITEWISE, botocore.exceptions.NoCredentialsError(), "NoCredentialsError", RETRY, False,
     False),
    ("sw-param-validation", SITEWISE, botocore.exceptions.ParamValidationError(report="bad entries"),
     "ParamValidationError", GIVE_UP, False, False),
    ("s3-slow-down", S3, client_error("SlowDown", 503, "PutObject"), "SlowDown", RETRY, True, False),
    ("s3-bare-429", S3, client_error("", 429, "PutObject"), "HTTP 429", RETRY, True, False),
    ("s3-denied", S3, client_error("AccessDenied", 403, "PutObject"), "AccessDenied", GIVE_UP, False, False),
    ("s3-denied-in-upload", S3, upload_failed("AccessDenied", 403), "AccessDenied", GIVE_UP, False, False),
    ("s3-5xx-in-upload", S3, upload_failed("InternalError", 500), "InternalError", RETRY, False, False),
    ("s3-upload-without-cause", S3, boto3.exceptions.S3UploadFailedError("x"), "S3UploadFailedError", RETRY,
     False, False),
    ("s3-no-bucket", S3, client_error("NoSuchBucket", 404, "PutObject"), "NoSuchBucket", GIVE_UP, False, False),
    ("s3-no-credentials", S3, botocore.exceptions.NoCredentialsError(), "NoCredentialsError", GIVE_UP, False,
     False),
    ("s3-network", S3, botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"),
     "EndpointConnectionError", RETRY, False, False),
]


@pytest.mark.parametrize(("policy", "exc", "kind", "decision", "throttled", "auth"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_whole_request_errors(policy: RetryPolicy, exc: Exception, kind: str, decision: Decision,
                              throttled: bool, auth: bool) -> None:
    failure = policy.classify_error(exc)
    assert (failure.kind, failure.decision, failure.throttled, failure.auth) == (kind, decision, throttled, auth)
    assert failure.retryable is (decision is RETRY)


def test_error_messages_name_the_code_and_keep_what_the_service_said() -> None:
    assert SITEWISE.classify_error(client_error("InvalidRequestException", 400)).message == \
        "InvalidRequestException: m"
    invalid = SITEWISE.classify_error(botocore.exceptions.ParamValidationError(report="bad entries"))
    assert invalid.message.startswith("InvalidRequestException: ") and "bad entries" in invalid.message
    assert "(environment, profile or instance role)" in S3.classify_error(
        botocore.exceptions.NoCredentialsError()).message


def test_an_error_that_is_no_failed_request_is_raised() -> None:
    with pytest.raises(ValueError, match="a bug"):
        SITEWISE.classify_error(ValueError("a bug"))


# --- 200 answers ---------------------------------------------------------------------------------


def entry(entry_id: str, alias: str, seconds: list[int]) -> dict[str, Any]:
    return {"entryId": entry_id, "propertyAlias": alias, "propertyValues": [
        {"value": {"doubleValue": 1.0}, "timestamp": {"timeInSeconds": s, "offsetInNanos": 0}, "quality": "GOOD"}
        for s in seconds]}


def error(entry_id: str, code: str, seconds: list[int] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"errorCode": code, "errorMessage": f"about {entry_id}"}
    if seconds is not None:
        err["timestamps"] = [{"timeInSeconds": s, "offsetInNanos": 0} for s in seconds]
    return {"entryId": entry_id, "errors": [err]}


SENT = [entry("e0", "/a", [1, 2, 3]), entry("e1", "/b", [1, 2]), entry("e2", "/c", [5])]


def test_a_200_without_errors_is_a_success() -> None:
    outcome = SITEWISE.classify_response(SENT, {"errorEntries": []})
    assert outcome.decision is Decision.SUCCESS and outcome.delivered == 6
    assert outcome.retry == [] and outcome.failures == [] and outcome.codes == []


def test_retryable_entry_errors_send_only_their_values_again() -> None:
    outcome = SITEWISE.classify_response(SENT, {"errorEntries": [error("e0", "ThrottlingException", [2, 3]),
                                                                 error("e2", "InternalFailureException")]})
    assert outcome.decision is Decision.RETRY_PARTIAL and outcome.delivered == 3
    assert [(e["entryId"], e["propertyAlias"], [v["timestamp"]["timeInSeconds"] for v in e["propertyValues"]])
            for e in outcome.retry] == [("r0", "/a", [2, 3]), ("r1", "/c", [5])]
    assert outcome.throttled == 1 and outcome.codes == ["ThrottlingException", "InternalFailureException"]


def test_permanent_entry_errors_are_given_up_with_their_reason() -> None:
    outcome = SITEWISE.classify_response(SENT, {"errorEntries": [error("e1", "InvalidRequestException"),
                                                                 error("nope", "InvalidRequestException")]})
    assert outcome.decision is Decision.GIVE_UP and outcome.delivered == 4 and outcome.retry == []
    (failure,) = outcome.failures
    assert failure == Failure({**SENT[1]}, "InvalidRequestException", "InvalidRequestException: about e1")


def test_mixed_entry_errors_retry_some_and_give_up_the_rest() -> None:
    outcome = SITEWISE.classify_response(SENT, {"errorEntries": [error("e0", "ResourceNotFoundException", [1]),
                                                                 error("e1", "ThrottlingException")]})
    assert outcome.decision is Decision.RETRY_PARTIAL and outcome.delivered == 3
    assert [f.code for f in outcome.failures] == ["ResourceNotFoundException"]
    assert [len(f.entry["propertyValues"]) for f in outcome.failures] == [1]
    assert [e["propertyAlias"] for e in outcome.retry] == ["/b"]


# --- back-off ------------------------------------------------------------------------------------


def test_backoff_doubles_from_the_minimum_to_the_maximum_with_jitter() -> None:
    backoff = Backoff(0.5, 5.0)
    assert [backoff.delay(n, jitter=1.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.delay(3, jitter=0.5) == 1.0
    assert all(1.0 <= backoff.delay(3) <= 2.0 for _ in range(100))
    assert backoff.delay(10_000, jitter=1.0) == 5.0  # no overflow after a long outage


@pytest.mark.parametrize(("interval", "delays"), [(300.0, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]),
                                                  (10.0, [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0])],
                         ids=["capped-at-a-minute", "capped-at-the-interval"])
def test_the_s3_backoff(interval: float, delays: list[float]) -> None:
    assert [s3_policy(interval).backoff.delay(n, jitter=1.0) for n in range(1, 8)] == delays


def test_the_back_off_grows_in_an_outage_and_a_success_partly_undoes_it() -> None:
    streak = FailureStreak(Backoff(1.0, 8.0))
    assert not streak.worth_logging
    logged, delays = [], []
    for _ in range(9):  # an outage: every sender fails
        delays.append(streak.failed())
        logged.append(streak.worth_logging)
    assert logged == [True, True, False, True, False, False, False, True, False]  # 1, 2, 4, 8
    assert 0.5 <= delays[0] <= 1.0 and 4.0 <= delays[-1] <= 8.0
    assert streak.succeeded() == 9 and streak.succeeded() == 0  # the streak that ended, for the log
    assert streak.pressure < 9 / 2  # one answer halves the pressure: the back-off is not reset...
    assert streak.failed() >= 2.0  # ...so a failure right after waits longer than the first did
    shared = FailureStreak(Backoff(1.0, 8.0))
    steps = [shared.failed(senders=4) for _ in range(8)]  # 4 requests in flight: a round of 4 failures is a step
    assert all(d <= 1.0 for d in steps[:4]) and all(1.0 <= d <= 2.0 for d in steps[4:])


@pytest.mark.parametrize(("share", "median"), [(0.1, 1.0), (0.3, 1.0), (0.4, 1.0), (0.5, 1.0)],
                         ids=["10%", "30%", "40%", "50%"])
def test_a_steady_share_of_failures_keeps_the_back_off_short(share: float, median: float) -> None:
    """Failures that do not depend on the load (a share of requests refused at random) do not build the
    back-off up to the maximum as an outage does: most waits stay at the first steps."""
    streak = FailureStreak(Backoff(1.0, 60.0))
    rng = random.Random(7)
    delays = []
    for _ in range(10_000):
        if rng.random() < share:
            delays.append(streak.failed(senders=4))
        else:
            streak.succeeded()
    delays.sort()
    assert delays[len(delays) // 2] <= median  # the first step: 0.5-1 s
    assert sum(delays) / len(delays) < 1.5 and max(delays) <= 16.0  # an outage waits 30-60 s
