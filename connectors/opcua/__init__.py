"""OPC UA connector: subscribe to or poll an OPC UA server's variables. See README.md.

``CONNECTOR`` registers ``type: opcua`` (entry point ``sitewise_edge.connectors``). The
connector classes and conversions are imported on first use: validating a configuration
needs the config model alone, not asyncua.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.base import Connector, ConnectorType, lazy_exports
from connectors.opcua.config import OpcUaNode, OpcUaSource
from sitewise_edge.clock import Clock

if TYPE_CHECKING:
    from connectors.opcua.connector import (
        OpcUaConnector,
        OpcUaPollingConnector,
        OpcUaStreamingConnector,
        make_opcua_connector,
    )
    from connectors.opcua.convert import ConversionError, Tqv, convert, quality_of


def _make(config: OpcUaSource, clock: Clock) -> Connector:
    from connectors.opcua.connector import make_opcua_connector

    return make_opcua_connector(config, clock)


CONNECTOR = ConnectorType("opcua", OpcUaSource, _make)

__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("OpcUaConnector", "OpcUaPollingConnector", "OpcUaStreamingConnector", "make_opcua_connector"),
                    "connectors.opcua.connector"),
    **dict.fromkeys(("ConversionError", "Tqv", "convert", "quality_of"), "connectors.opcua.convert"),
})

__all__ = [
    "CONNECTOR",
    "ConversionError",
    "OpcUaConnector",
    "OpcUaNode",
    "OpcUaPollingConnector",
    "OpcUaSource",
    "OpcUaStreamingConnector",
    "Tqv",
    "convert",
    "make_opcua_connector",
    "quality_of",
]
