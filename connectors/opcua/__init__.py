"""OPC UA connector: subscribe to or poll an OPC UA server's variables. See README.md."""

from connectors.opcua.connector import (
    OpcUaConnector,
    OpcUaPollingConnector,
    OpcUaStreamingConnector,
    make_opcua_connector,
)
from connectors.opcua.convert import ConversionError, Tqv, convert, quality_of

__all__ = [
    "ConversionError",
    "OpcUaConnector",
    "OpcUaPollingConnector",
    "OpcUaStreamingConnector",
    "Tqv",
    "convert",
    "make_opcua_connector",
    "quality_of",
]
