"""One retry policy for both publishers, in the shape of Vector's ``RetryLogic``.

    policy = sitewise_policy(min_interval=0.5, max_interval=60.0)     # or s3_policy(interval=300.0)
    try:
        response = client.batch_put_asset_property_value(entries=entries, enablePartialEntryProcessing=True)
    except REQUEST_ERRORS as exc:
        failure = policy.classify_error(exc)        # a whole request: RETRY or GIVE_UP, with kind and message
    else:
        outcome = policy.classify_response(entries, response)   # SUCCESS, RETRY_PARTIAL or GIVE_UP
    delay = policy.backoff.delay(attempt)           # exponential, with jitter, between min and max

Pure: no I/O, no clock, no sleeping; the publishers act on the decisions. :class:`FailureStreak`
is the one piece of state: the back-off pressure of a destination, which failures raise and answers
partly undo; only the sender of the failed request waits (the others go on).

What the two policies decide (the full table is in sitewise_edge/publish/README.md):

    what happened                                  SiteWise publisher            S3 export
    200, no errorEntries                           SUCCESS                       SUCCESS (every answer)
    errorEntries with retryable codes              RETRY_PARTIAL (those values)  -
    errorEntries with other codes only             GIVE_UP (those values)        -
    throttling code, HTTP 429                      RETRY, throttled              RETRY, throttled
    HTTP 5xx, retryable codes                      RETRY                         RETRY
    authentication codes, HTTP 401, 403, 408       RETRY, auth                   GIVE_UP (AccessDenied)
    other 4xx (InvalidRequestException, ...)       GIVE_UP (split the request)   GIVE_UP (the pass ends)
    network errors, timeouts, OSError              RETRY                         RETRY
    ParamValidationError (botocore refuses it)     GIVE_UP, InvalidRequest...    GIVE_UP
    no credentials, no region                      RETRY                         GIVE_UP
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import boto3.exceptions
import botocore.exceptions

from sitewise_edge.publish.requests import Entry

REQUEST_ERRORS: tuple[type[Exception], ...] = (
    botocore.exceptions.ClientError,
    botocore.exceptions.BotoCoreError,
    boto3.exceptions.S3UploadFailedError,  # upload_file wraps a ClientError in it
    OSError,
)
"""What a boto3 call raises when the request fails; :meth:`RetryPolicy.classify_error` takes each."""

SITEWISE_RETRYABLE = frozenset({
    "ThrottlingException", "LimitExceededException", "InternalFailureException",
    "ServiceUnavailableException", "ConflictingOperationException",
})
SITEWISE_THROTTLING = frozenset({"ThrottlingException", "LimitExceededException", "TooManyRequestsException"})
SITEWISE_AUTH = frozenset({
    "AccessDeniedException", "UnauthorizedException", "UnrecognizedClientException", "ExpiredTokenException",
    "InvalidSignatureException", "MissingAuthenticationTokenException", "IncompleteSignature",
})
S3_RETRYABLE = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
    "InternalError", "ServiceUnavailable", "RequestLimitExceeded", "TooManyRequestsException",
    "OperationAborted",
})
S3_THROTTLING = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                           "TooManyRequestsException"})
S3_PERMANENT: Mapping[type[Exception], str] = {
    botocore.exceptions.NoCredentialsError: "NoCredentialsError",
    botocore.exceptions.PartialCredentialsError: "PartialCredentialsError",
    botocore.exceptions.NoRegionError: "NoRegionError",
    botocore.exceptions.ParamValidationError: "ParamValidationError",
}


class Decision(enum.Enum):
    """What to do about a request."""

    SUCCESS = "success"
    """Delivered whole."""
    RETRY = "retry"
    """The whole request again, after back-off."""
    RETRY_PARTIAL = "retry-partial"
    """Some of its values again (a 200 whose ``errorEntries`` have retryable codes)."""
    GIVE_UP = "give-up"
    """It will not pass as it is: split it, dead-letter the values, or stop the pass."""


@dataclass(frozen=True)
class RequestFailure:
    """A whole request that failed, classified."""

    kind: str
    """For the error counters: the error code, ``HTTP <status>`` without one, or the exception's class."""
    message: str
    """``<code>: <what the service or botocore said>``."""
    decision: Decision
    """RETRY or GIVE_UP."""
    throttled: bool = False
    auth: bool = False

    @property
    def retryable(self) -> bool:
        return self.decision is Decision.RETRY


class Failure(NamedTuple):
    """A permanent failure of some values: the entry with only those values, the error code, the reason."""

    entry: Entry
    code: str
    reason: str


@dataclass(frozen=True)
class ResponseOutcome:
    """A 200 answer to ``BatchPutAssetPropertyValue``, classified."""

    decision: Decision
    delivered: int
    """Values accepted."""
    retry: list[Entry] = field(default_factory=list)
    """Entries holding only the values to send again, with fresh entry ids (``r0``, ``r1``, ...)."""
    failures: list[Failure] = field(default_factory=list)
    """Values that will never pass as they are."""
    codes: list[str] = field(default_factory=list)
    """The error code of every failed (entry, error) pair, for the counters."""
    throttled: int = 0
    """How many of the retried entries were throttled."""


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with jitter: ``min_interval`` doubling up to ``max_interval``, times 0.5-1."""

    min_interval: float
    max_interval: float

    def delay(self, attempt: int, jitter: float | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` ≥ 1 failures so far).

        ``jitter`` in [0.5, 1] (a random one by default) spreads the retries of many senders."""
        base = self.min_interval * 2.0 ** min(attempt - 1, 20)
        return min(self.max_interval, base) * (random.uniform(0.5, 1.0) if jitter is None else jitter)


@dataclass(frozen=True, eq=False)
class RetryPolicy:
    """Tells retriable from permanent failures for one kind of destination, and owns its back-off."""

    backoff: Backoff
    retryable_codes: frozenset[str]
    throttling_codes: frozenset[str]
    auth_codes: frozenset[str] = frozenset()
    """Retried, reported as authentication errors (the SiteWise publisher: never dead-letter a backlog for them)."""
    retry_statuses: frozenset[int] = frozenset({429})
    """HTTP statuses retried whatever the code; every 5xx is retried too."""
    permanent: Mapping[type[Exception], str] = field(default_factory=dict)
    """botocore errors that never pass, each with the code its message starts with."""

    def classify_error(self, exc: BaseException) -> RequestFailure:
        """A whole request failed with ``exc`` (one of :data:`REQUEST_ERRORS`): retry it, or give up.

        Raises ``exc`` itself when it is none of them: a bug, not a failed request."""
        client_error = _client_error_in(exc)
        if client_error is not None:
            return self._classify_client_error(client_error)
        for cls, code in self.permanent.items():
            if isinstance(exc, cls):
                return RequestFailure(type(exc).__name__, f"{code}: {exc}{_hint(exc)}", Decision.GIVE_UP)
        if isinstance(exc, REQUEST_ERRORS):
            return RequestFailure(type(exc).__name__, f"{type(exc).__name__}: {exc}{_hint(exc)}", Decision.RETRY)
        raise exc

    def _classify_client_error(self, exc: botocore.exceptions.ClientError) -> RequestFailure:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        kind = code or f"HTTP {status}"
        auth = code in self.auth_codes
        retry = code in self.retryable_codes or auth or status in self.retry_statuses or status >= 500
        throttled = code in self.throttling_codes or (not code and status == 429)
        return RequestFailure(kind, f"{kind}: {err.get('Message') or exc}",
                              Decision.RETRY if retry else Decision.GIVE_UP, throttled=throttled, auth=auth)

    def classify_response(self, sent: Sequence[Entry], response: Mapping[str, Any]) -> ResponseOutcome:
        """A 200 answer: which values passed, which to send again, which never will.

        An error that lists timestamps concerns those values of its entry, one without concerns all."""
        by_id = {e["entryId"]: e for e in sent}
        retry: list[Entry] = []
        failures: list[Failure] = []
        codes: list[str] = []
        failed_values = throttled = 0
        for err_entry in response.get("errorEntries", []):
            entry = by_id.get(err_entry["entryId"])
            if entry is None:
                continue
            for err in err_entry.get("errors", []):
                values = _values_at(entry, err.get("timestamps", []))
                if not values:
                    continue
                failed_values += len(values)
                part = {**entry, "propertyValues": values}
                code = err["errorCode"]
                codes.append(code)
                if code in self.retryable_codes:
                    retry.append(part)
                    throttled += code in self.throttling_codes
                else:
                    failures.append(Failure(part, code, f"{code}: {err.get('errorMessage', '')}"))
        for i, e in enumerate(retry):
            e["entryId"] = f"r{i}"
        decision = Decision.RETRY_PARTIAL if retry else Decision.GIVE_UP if failures else Decision.SUCCESS
        delivered = sum(len(e["propertyValues"]) for e in sent) - failed_values
        return ResponseOutcome(decision, delivered, retry, failures, codes, throttled)


class FailureStreak:
    """Whole-request failures at one destination: how long the sender of a failed request waits.

        streak = FailureStreak(policy.backoff)
        delay = streak.failed(senders=4)  # that sender waits ``delay`` (jittered); the others go on
        streak.succeeded()                # an answer: the pressure halves; the streak that ended (0: none)

    The back-off's step is a *pressure* that every failure raises by ``1 / senders`` (the requests in
    flight at once: a round of failures of all of them is one step) and every answer halves: a success
    partly undoes it. Under a steady share of failures the pressure stays low (a long step needs a long
    run of failures with no answer among them), so the waits stay short and throughput falls with the
    failures alone; an outage (nothing answers) raises it a step per round, up to ``max_interval``.
    ``failures`` counts the failures since the last answer, for the log. Pure: no clock, no sleeping.
    """

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.failures = 0
        self.pressure = 0.0

    def failed(self, senders: int = 1) -> float:
        self.failures += 1
        self.pressure += 1.0 / max(1, senders)
        return self.backoff.delay(max(1, math.ceil(self.pressure - 1e-9)))

    def succeeded(self) -> int:
        self.pressure /= 2.0
        ended, self.failures = self.failures, 0
        return ended

    @property
    def worth_logging(self) -> bool:
        """The first failure, then every power of two: an outage logs a few lines, not one per request."""
        return self.failures == 1 or (self.failures > 0 and math.log2(self.failures).is_integer())


def sitewise_policy(min_interval: float, max_interval: float) -> RetryPolicy:
    """The SiteWise publisher's: authentication errors and missing credentials are retried."""
    return RetryPolicy(
        Backoff(min_interval, max_interval), SITEWISE_RETRYABLE, SITEWISE_THROTTLING, SITEWISE_AUTH,
        retry_statuses=frozenset({401, 403, 408, 429}),
        permanent={botocore.exceptions.ParamValidationError: "InvalidRequestException"},
    )


def s3_policy(interval: float, max_interval: float = 60.0) -> RetryPolicy:
    """The S3 export's: back-off from 1 s up to a minute (or its interval); a denied request ends the pass."""
    return RetryPolicy(Backoff(1.0, min(max_interval, interval)), S3_RETRYABLE, S3_THROTTLING,
                       permanent=S3_PERMANENT)


def _client_error_in(exc: BaseException) -> botocore.exceptions.ClientError | None:
    """``exc`` or the ClientError it was raised from (``upload_file`` wraps one in S3UploadFailedError)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, botocore.exceptions.ClientError):
        cause = cause.__cause__ or cause.__context__
    return cause


def _hint(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return " (environment, profile or instance role)"
    return ""


def _values_at(entry: Entry, timestamps: Sequence[Mapping[str, int]]) -> list[dict[str, Any]]:
    """The values of ``entry`` at ``timestamps``; all of them when none is given."""
    values: list[dict[str, Any]] = entry["propertyValues"]
    if not timestamps:
        return values
    stamps = {(t["timeInSeconds"], t.get("offsetInNanos", 0)) for t in timestamps}
    return [v for v in values if (v["timestamp"]["timeInSeconds"], v["timestamp"]["offsetInNanos"]) in stamps]
