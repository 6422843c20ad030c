"""Modbus TCP connector: configuration checks and request planning (``plan``), pure converters
(``decode``) and the I/O loop (``connector``). See README.md for a sample configuration."""

from connectors.modbus.connector import ModbusConnector

__all__ = ["ModbusConnector"]
