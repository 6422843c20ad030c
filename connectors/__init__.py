"""Sources: one package per protocol behind the small interface of ``connectors/base.py``.

A connector registers its ``type:`` with an entry point (group ``sitewise_edge.connectors``): see
connectors/base.py for how to add one. The built-in ones: ``opcua``, ``modbus``.
"""

from connectors.base import (
    Connector,
    ConnectorState,
    ConnectorStatus,
    ConnectorType,
    PollingConnector,
    StreamingConnector,
    registered,
)

__all__ = ["Connector", "ConnectorState", "ConnectorStatus", "ConnectorType", "PollingConnector",
           "StreamingConnector", "registered"]
