"""The one small interface every connector implements.

A connector reads one device and hands over sample batches. It knows nothing of
asset models, storage or the cloud. The runtime owns everything around it:
the poll interval, reconnects with back-off, shutdown timeouts.

Two shapes, by how the device delivers data:

* :class:`PollingConnector` — the runtime calls :meth:`~PollingConnector.poll` every
  ``interval`` seconds (Modbus, OPC UA read mode).
* :class:`StreamingConnector` — the runtime iterates :meth:`~StreamingConnector.stream`
  (an OPC UA subscription).

Life cycle, driven by the runtime: ``await open()`` (connect; may raise
:class:`~sitewise_edge.errors.ConnectorError`), then poll or stream until an error or
shutdown, then ``await close()`` (never raises). After an error the runtime closes,
waits, and opens again. A connector whose individual tags fail (a missing node, a
Modbus exception on one register) keeps going: it emits BAD-quality rows for those
tags and records the error in its :class:`ConnectorStatus`.
"""

from __future__ import annotations

import abc
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pyarrow as pa


@dataclass
class ConnectorStatus:
    """What the API and the logs show of a source."""

    state: str = "starting"  # starting | connected | error | stopped
    last_error: str | None = None
    values_read: int = 0
    batches_read: int = 0
    last_read: float | None = None  # wall-clock seconds
    reconnects: int = 0
    tag_errors: dict[str, str] = field(default_factory=dict)  # alias -> last error of that tag

    def record_batch(self, batch: pa.RecordBatch) -> None:
        self.values_read += batch.num_rows
        self.batches_read += 1
        self.last_read = time.time()

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "lastError": self.last_error,
            "valuesRead": self.values_read,
            "batchesRead": self.batches_read,
            "lastRead": self.last_read,
            "reconnects": self.reconnects,
            "tagErrors": dict(self.tag_errors),
        }


class Connector(abc.ABC):
    """Common part of both shapes."""

    name: str
    status: ConnectorStatus

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and prepare (subscribe, check nodes). Raises ConnectorError."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect. Never raises."""


class PollingConnector(Connector):
    interval: float

    @abc.abstractmethod
    async def poll(self) -> pa.RecordBatch:
        """Read every configured tag once. Raises ConnectorError when the device is gone."""


class StreamingConnector(Connector):
    @abc.abstractmethod
    def stream(self) -> AsyncIterator[pa.RecordBatch]:
        """Batches as the device reports them. Raises ConnectorError when the connection is lost."""
