"""The one small interface every connector implements.

A connector reads one device and hands over sample batches. It knows nothing of
asset models, storage or the cloud. The runtime owns everything around it:
the poll interval, reconnects with back-off, shutdown timeouts.

Two shapes, by how the device delivers data:

* :class:`PollingConnector` — the runtime calls :meth:`~PollingConnector.poll` every
  ``interval`` seconds (OPC UA read mode).
* :class:`StreamingConnector` — the runtime iterates :meth:`~StreamingConnector.stream`
  (an OPC UA subscription; Modbus, which schedules the poll groups of the devices behind one
  connection itself, each on its own interval, and backs off a failing device alone).

Life cycle, driven by the runtime: ``await open()`` (connect; may raise
:class:`~sitewise_edge.errors.ConnectorError`), then poll or stream until an error or
shutdown, then ``await close()`` (never raises). After an error the runtime closes,
waits, and opens again. A connector whose individual tags fail (a missing node, a
Modbus exception on one register) keeps going: it emits BAD-quality rows for those
tags and records the error in its :class:`ConnectorStatus`. The runtime alone sets
``status.state``; a connector records its errors, reads and dropped values.

Adding a connector touches no file outside its folder and ``pyproject.toml``:

1. ``connectors/<name>/config.py``: its source model, a :class:`~sitewise_edge.config.SourceConfig`
   with ``type: Literal["<name>"]``, ``aliased_items()`` (and ``resolve_paths()`` if it has file paths);
2. the connector: a :class:`PollingConnector` or :class:`StreamingConnector` built from that model
   without I/O;
3. the registration, in ``connectors/<name>/__init__.py``::

       CONNECTOR = ConnectorType("<name>", MySource, make_my_connector)

   and in ``pyproject.toml``::

       [project.entry-points."sitewise_edge.connectors"]
       <name> = "connectors.<name>:CONNECTOR"

4. ``sample.yaml`` (a complete source section, shown in the folder's README) and the README.

``sitewise_edge.config`` then validates ``type: <name>`` sources with that model, and the runtime
builds them with that factory.
"""

from __future__ import annotations

import abc
import builtins
import enum
import importlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sitewise_edge.clock import Clock
from sitewise_edge.config import SourceConfig, source_types

if TYPE_CHECKING:
    import pyarrow as pa

C = TypeVar("C", bound=SourceConfig)


class ConnectorState(enum.StrEnum):
    """A source's state in ``/health``; set by the runtime, which drives the life cycle."""

    STARTING = "starting"
    CONNECTED = "connected"
    ERROR = "error"
    STOPPED = "stopped"


@dataclass
class ConnectorStatus:
    """What the API and the logs show of a source."""

    state: ConnectorState = ConnectorState.STARTING
    last_error: str | None = None
    values_read: int = 0
    batches_read: int = 0
    last_read: float | None = None  # wall-clock seconds
    reconnects: int = 0
    tag_errors: dict[str, str] = field(default_factory=dict)  # alias -> last error of that tag
    values_dropped: int = 0
    """Values read from the device and never handed over (a full buffer, a notification for no node...)."""
    connection: dict[str, object] = field(default_factory=dict)
    """What the connector says of its link (endpoint, security, certificates); JSON-ready values."""

    def record_batch(self, batch: pa.RecordBatch, now: float) -> None:
        """Count a batch handed over at ``now`` (wall-clock seconds)."""
        self.values_read += batch.num_rows
        self.batches_read += 1
        self.last_read = now

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "lastError": self.last_error,
            "valuesRead": self.values_read,
            "batchesRead": self.batches_read,
            "lastRead": self.last_read,
            "reconnects": self.reconnects,
            "tagErrors": dict(self.tag_errors),
            "valuesDropped": self.values_dropped,
            "connection": dict(self.connection),
        }


class Connector(abc.ABC):
    """Common part of both shapes."""

    name: str
    status: ConnectorStatus
    clock: Clock
    """Where the connector reads the time (receive times, ``last_read``); the runtime passes its own."""

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


@dataclass(frozen=True)
class ConnectorType(Generic[C]):
    """A connector's registration: the ``type:`` it serves, its config model, and its factory.

    The factory builds a connector from a validated source and the runtime's clock, without I/O (the
    runtime opens it).
    """

    type: str
    config: builtins.type[C]  # builtins: ``type`` is the field above
    factory: Callable[[C, Clock], Connector]


def registered(type_name: str) -> ConnectorType[Any]:
    """The registration of the connector serving ``type:`` ``type_name``; KeyError when there is none
    (a validated configuration only has registered types)."""
    spec = source_types()[type_name]
    if not isinstance(spec, ConnectorType):
        raise TypeError(f"connector {type_name!r} is registered with a {type(spec).__name__}, not a ConnectorType")
    return spec


def lazy_exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names`` (name -> module) on first use.

    A connector package exports its classes this way so that validating a configuration,
    which imports every registered package for its config model, does not import every
    protocol library (asyncua alone takes a second).
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
