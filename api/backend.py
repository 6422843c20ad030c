"""What the API needs of the gateway, as one small interface the runtime implements.

The API never imports the store, the models or the connectors: the runtime hands it
an object of this shape (see ``sitewise_edge.runtime.Gateway``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import pyarrow as pa

T = TypeVar("T")


class Backend(Protocol):
    name: str
    api_token: str | None
    registry: Any
    """The asset registry: describe_asset, list_assets, describe_asset_model, list_asset_models, ..."""

    def resolve_stream(self, asset_id: str | None, property_id: str | None, alias: str | None) -> str:
        """The data stream an API call names; raises ApiError (InvalidRequest, ResourceNotFound)."""

    def property_data_type(self, stream: str) -> tuple[str, str, str] | None:
        """(dataType, description, kind) of the property behind a stream, or None for a disassociated stream."""

    async def change_models(self, change: Callable[[Any], Any], client_token: str | None,
                            request: str) -> dict[str, Any]:
        """Apply a control-plane operation: ``change(registry)`` returns a ``Change`` (new registry, response).

        One change at a time: persisted, then the registry is swapped whole. A ``client_token`` seen
        before with the same ``request`` (a fingerprint) answers the first response again.
        Raises ApiError.
        """

    async def ingest(self, batch: pa.RecordBatch) -> None:
        """Accept a batch: returns once it is durable."""

    def latest(self, stream: str) -> pa.Table:
        """The latest value of a stream (0 or 1 row), from memory."""

    def latest_all(self) -> pa.Table:
        """The latest value of every stream, from memory."""

    async def query(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(reader)`` on a store reader in a worker thread."""

    def status(self) -> dict[str, Any]:
        """Sources, store and publishers, for /health and the dashboard."""
