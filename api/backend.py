"""What the API needs of the gateway, as one small interface the runtime implements.

The API never imports the store, the connectors or the runtime: the runtime hands
``create_app`` an object of this shape (``sitewise_edge.runtime.Gateway``), and every route
gets it through one FastAPI dependency::

    @router.get("/assets/{assetId}")
    async def describe_asset(backend: BackendDep, assetId: str) -> dict[str, Any]:
        return render.describe_asset(backend.registry, assetId)

The asset models are the one sibling package the API knows (``Registry`` and ``Change``, to
render them); the store is reached through :class:`Reader`, the methods the API calls on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol, TypeVar

import pyarrow as pa
from fastapi import Depends, Request

from asset_models.registry import Change, Registry
from sitewise_edge.clock import Clock
from sitewise_edge.config import ApiConfig, Config
from sitewise_edge.samples import Sample

T = TypeVar("T")


class Reader(Protocol):
    """The store's queries the API runs (in a worker thread, on one consistent snapshot).

    Times are nanoseconds since the epoch; windows are (start, end]; ``limit`` rows at most.
    """

    def history(self, stream: str, start_ns: int | None, end_ns: int | None, *, quality: int | None = ...,
                descending: bool = ..., limit: int = ..., after: tuple[int, int] | None = ...) -> pa.Table:
        """Values ordered by time then quality, from just after the keyset ``after`` (time_ns, quality)."""
        ...

    def aggregates(self, streams: list[str] | None, start_ns: int, end_ns: int, resolution_ns: int, *,
                   quality: int | None = ..., descending: bool = ..., limit: int = ...) -> pa.Table:
        """Per stream, bucket and quality: count, sum, avg, min, max, stddev (``streams=None``: all)."""
        ...

    def interpolated(self, stream: str, start_ns: int, end_ns: int, interval_ns: int, *, kind: str,
                     quality: int = ..., window_ns: int | None = ..., first_k: int = ...,
                     limit: int = ...) -> pa.Table:
        """LINEAR or LOCF values at start + k * interval (columns k, time_ns and the value columns)."""
        ...

    def current_rows(self) -> pa.Table:
        """Every current row (stream as string, time as int64 ns): what ExecuteQuery's views read."""
        ...

    def points(self, streams: list[str] | None, start_ns: int, end_ns: int, *,
               quality: int | None = ...) -> pa.Table:
        """Sample rows of ``streams`` (None: all) in (start, end], of ``quality`` (None: any): the rows an
        ExecuteQuery's filters can reach."""
        ...


class Backend(Protocol):
    name: str
    api_config: ApiConfig
    """The ``api`` section: token, auth, limits (``api/guard.py``, the routes' limits)."""
    clock: Clock
    """The gateway's clock: creation dates of models and assets, the age of a paging token."""
    registry: Registry
    """The asset models and assets now (immutable; replaced whole by :meth:`change_models`)."""
    config: Config
    """The effective configuration (the dashboard shows it, secrets redacted)."""

    @property
    def started_at(self) -> float:
        """Wall-clock seconds since the epoch when the gateway was made (uptime)."""
        ...

    def resolve_stream(self, asset_id: str | None, property_id: str | None, alias: str | None) -> str:
        """The data stream an API call names; raises ModelInvalid or ModelNotFound (asset_models.errors)."""
        ...

    def property_data_type(self, stream: str) -> tuple[str, str, str] | None:
        """(dataType, description, kind) of the property behind a stream, or None for a disassociated stream."""
        ...

    async def change_models(self, change: Callable[[Registry], Change], client_token: str | None,
                            request: str) -> dict[str, Any]:
        """Apply a control-plane operation: ``change(registry)`` returns a ``Change``; answer its ``response``.

        One change at a time: persisted, then the registry is swapped whole. A ``client_token`` seen
        before with the same ``request`` (a fingerprint) answers the first response again; with
        another request it is an ApiError (InvalidRequestException). Model errors pass through.
        """
        ...

    async def ingest(self, batch: pa.RecordBatch) -> None:
        """Accept a batch: returns once it is durable."""
        ...

    async def delete_stream(self, stream: str, client_token: str | None) -> None:
        """Delete the values of a stream written so far (durable on return; storage/tombstones.py)."""
        ...

    def deleted_by(self, client_token: str) -> str | None:
        """The stream an earlier delete with this ``clientToken`` deleted, if any."""
        ...

    def latest(self, stream: str) -> pa.Table:
        """The latest value of a stream (0 or 1 row), from memory."""
        ...

    def latest_value(self, stream: str) -> Sample | None:
        """The latest value of a stream as Python scalars (None without one), from memory, no table built:
        GetAssetPropertyValue's hot path. The same value, quality and staleness as :meth:`latest`."""
        ...

    def latest_all(self) -> pa.Table:
        """The latest value of every stream, from memory."""
        ...

    async def query(self, fn: Callable[[Reader], T]) -> T:
        """Run ``fn(reader)`` on a store reader in a worker thread."""
        ...

    async def run_query(self, fn: Callable[[Reader], T]) -> T:
        """Run ``fn(reader)`` on ExecuteQuery's own threads (``api.query.concurrency``, never the worker
        threads that store and forward); ThrottlingException when ``api.query.queue`` more already wait."""
        ...

    def status(self) -> dict[str, Any]:
        """Sources, store and publishers, for /health and the dashboard."""
        ...

    def verdict(self) -> dict[str, Any]:
        """``{"status": "ok" | "degraded" | "unavailable", "reasons": [...]}`` (sitewise_edge/health.py)."""
        ...

    def ready(self) -> bool:
        """Whether the gateway accepts data now (started, not stopping, nothing blocks ingest)."""
        ...

    async def dead_letters(self, publisher: str | None, reason: str | None, alias: str | None,
                           state: str | None) -> list[dict[str, Any]]:
        """The dead letters of one SiteWise publisher (or all) matching the filter, as JSON records."""
        ...

    async def replay_dead_letters(self, publisher: str | None, reason: str | None, alias: str | None,
                                  state: str | None, ids: list[str] | None,
                                  rewrite_alias: str | None) -> dict[str, Any]:
        """Mark the matching dead letters for sending again; ``{"records": n, "values": m}``."""
        ...


async def get_backend(request: Request) -> Backend:
    """The backend ``create_app`` was given (the FastAPI dependency behind :data:`BackendDep`). Async on
    purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop on every request."""
    backend: Backend = request.app.state.backend
    return backend


BackendDep = Annotated[Backend, Depends(get_backend)]
"""A route parameter ``backend: BackendDep`` receives the gateway."""
