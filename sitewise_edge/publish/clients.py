"""One boto3 client factory for both publishers, and the client methods they use, as protocols.

    client = sitewise_client(config)       # SitewiseClient: batch_put_asset_property_value
    client = s3_client(config)             # S3Client: upload_file, delete_object
    client = make_client(ClientOptions("iotsitewise", "eu-west-1", endpoint_url="http://gw:8080"), "cloud")

Every client gets the gateway's botocore options: botocore's retries off (the publishers retry,
with :mod:`sitewise_edge.publish.retry`), bounded timeouts, no host prefix for a given endpoint
(a local one has no ``data.`` subdomain), and the optional ``x-api-token`` header of a
sitewise-edge endpoint that requires one. Credentials come from the standard AWS chain, never
from the configuration. Creating a client reads the credentials: call it from a worker thread.

**The request body without botocore's per-value work.** botocore validates every parameter against
the service model and serialises a request value by value (~50 µs per value for
``BatchPutAssetPropertyValue``, ten times what building the values costs). The publisher's entries
are already checked (:func:`~sitewise_edge.publish.requests.sitewise_rejections`), so the SiteWise
client runs with ``parameter_validation`` off and :func:`fast_batch_put` encodes the body with the C
``json`` encoder, exactly as botocore's rest-json serialiser would (the same JSON, ``"NaN"`` for a
NaN double); botocore still resolves the endpoint, builds, signs (SigV4 over this body) and sends
the request and parses the answer.

Tests pass a real boto3 client (or anything with these methods) to the publishers instead.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import boto3
import botocore.config
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED

from sitewise_edge.config import S3Export, SitewisePublisher
from sitewise_edge.publish.requests import Entry

log = logging.getLogger(__name__)


class SitewiseClient(Protocol):
    """What the SiteWise publisher calls on a boto3 ``iotsitewise`` client."""

    def batch_put_asset_property_value(self, *, entries: list[Entry],
                                       enablePartialEntryProcessing: bool) -> dict[str, Any]: ...


class S3Client(Protocol):
    """What the S3 export calls on a boto3 ``s3`` client (``upload_file`` does the multipart calls)."""

    def upload_file(self, Filename: str, Bucket: str, Key: str,
                    ExtraArgs: dict[str, Any] | None = None, Callback: Callable[[int], None] | None = None,
                    Config: TransferConfig | None = None) -> None: ...

    def delete_object(self, *, Bucket: str, Key: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ClientOptions:
    """How to reach one destination. ``token``: sent as ``x-api-token``; ``unsigned_locally``: with an
    ``endpoint_url`` and no credentials in the chain, send unsigned requests (a gateway without auth)."""

    service: Literal["iotsitewise", "s3"]
    region: str | None
    endpoint_url: str | None = None
    token: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_pool_connections: int = 10
    validate: bool = True
    """botocore's parameter validation (off where the caller checked the parameters itself)."""
    unsigned_locally: bool = False
    path_style: bool = False
    """S3: ``http://host/bucket/key`` instead of a bucket subdomain (MinIO, moto and IP endpoints)."""


_BODY = "sitewise_edge.body"
_OPERATION = "iotsitewise.BatchPutAssetPropertyValue"


def encode_batch_put(params: dict[str, Any]) -> bytes:
    """The JSON body botocore's rest-json serialiser makes of these ``BatchPutAssetPropertyValue``
    parameters, in one C ``json`` call (a NaN or infinite double becomes a string, as botocore does)."""
    try:
        return json.dumps(params, allow_nan=False).encode()
    except ValueError:  # a NaN double: rare, so the walk is only on this path
        return json.dumps({**params, "entries": [
            {**e, "propertyValues": [_special_double(v) for v in e["propertyValues"]]} for e in params["entries"]]},
            allow_nan=False).encode()


def _special_double(v: dict[str, Any]) -> dict[str, Any]:
    d = v["value"].get("doubleValue")
    if isinstance(d, float) and not math.isfinite(d):
        return {**v, "value": {**v["value"], "doubleValue": "NaN" if math.isnan(d) else
                               ("Infinity" if d > 0 else "-Infinity")}}
    return v


def _stash_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[_BODY] = encode_batch_put(params)
    params["entries"] = []  # what botocore serialises itself: nothing per value


def _use_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    body = context.pop(_BODY, None)
    if body is not None:
        params["body"] = body  # before the request is built and signed


def fast_batch_put(client: Any) -> None:
    """Let ``client`` (an ``iotsitewise`` client made with ``parameter_validation=False``) send
    ``batch_put_asset_property_value`` with a body encoded at once; see the module's docstring."""
    client.meta.events.register(f"before-parameter-build.{_OPERATION}", _stash_body)
    client.meta.events.register(f"before-call.{_OPERATION}", _use_body)


def make_client(opts: ClientOptions, name: str) -> Any:
    """A boto3 client for ``opts`` (blocking: it reads credentials). ``name`` is the publisher's, for the log."""
    session = boto3.session.Session()
    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": 1},  # we retry, not botocore
                               "connect_timeout": opts.connect_timeout, "read_timeout": opts.read_timeout,
                               "max_pool_connections": opts.max_pool_connections,
                               "parameter_validation": opts.validate}
    if opts.endpoint_url:
        options["inject_host_prefix"] = False
        if opts.unsigned_locally and session.get_credentials() is None:
            log.info("publisher %s: no AWS credentials found; sending unsigned requests to %s",
                     name, opts.endpoint_url)
            options["signature_version"] = UNSIGNED
    if opts.path_style:
        options["s3"] = {"addressing_style": "path"}
    client = session.client(opts.service, region_name=opts.region, endpoint_url=opts.endpoint_url,
                            config=botocore.config.Config(**options))
    if opts.token:
        token = opts.token

        def add_token(request: Any, **_: Any) -> None:
            request.headers["x-api-token"] = token

        client.meta.events.register(f"before-sign.{client.meta.service_model.service_id.hyphenize()}.*", add_token)
    return client


def endpoint_name(service: str, endpoint_url: str | None, region: str) -> str:
    """Where a destination sends, for messages: its endpoint, or the AWS service of its region."""
    return endpoint_url or f"AWS {service} in {region}"


def sitewise_client(config: SitewisePublisher) -> SitewiseClient:
    """The SiteWise publisher's client: a pool for every request in flight, unsigned to a local endpoint
    when no credentials are found, the body encoded at once (:func:`fast_batch_put`)."""
    opts = ClientOptions("iotsitewise", config.region, config.endpoint_url, config.token,
                         max_pool_connections=max(10, 2 * config.max_in_flight), validate=False,
                         unsigned_locally=True)
    client = make_client(opts, config.name)
    fast_batch_put(client)
    typed: SitewiseClient = client
    return typed


def s3_client(config: S3Export) -> S3Client:
    """The S3 export's client: a longer read timeout (large parts), path-style addressing for an endpoint."""
    opts = ClientOptions("s3", config.region, config.endpoint_url, read_timeout=60.0,
                         path_style=bool(config.endpoint_url))
    client: S3Client = make_client(opts, config.name)
    return client
