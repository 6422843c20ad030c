"""Modbus TCP connector: configuration (``config``), checks and request planning (``plan``),
pure converters (``decode``) and the I/O loop (``connector``). See README.md for a sample.

``CONNECTOR`` registers ``type: modbus`` (entry point ``sitewise_edge.connectors``); the
connector itself (and pymodbus) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.base import Connector, ConnectorType, lazy_exports
from connectors.modbus.config import ModbusSource, ModbusTag
from sitewise_edge.clock import Clock

if TYPE_CHECKING:
    from connectors.modbus.connector import ModbusConnector


def _make(config: ModbusSource, clock: Clock) -> Connector:
    from connectors.modbus.connector import ModbusConnector

    return ModbusConnector(config, clock)


CONNECTOR = ConnectorType("modbus", ModbusSource, _make)


__getattr__ = lazy_exports(__name__, {"ModbusConnector": "connectors.modbus.connector"})

__all__ = ["CONNECTOR", "ModbusConnector", "ModbusSource", "ModbusTag"]
