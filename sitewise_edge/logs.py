"""The gateway process's log: text for a terminal, or JSON lines for a log shipper (journald, Loki, Fluent Bit).

    setup_logging("info", "json")      # sitewise-edge --log-format json run -c gateway.yaml

A JSON line holds ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and, for an exception,
``exception`` (the traceback as text). In both formats a password inside a URL
(``opc.tcp://user:pass@host``) is shown as ``user:***@``, whoever logs it (asyncua too).
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Literal

from sitewise_edge.config import redact

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
NOISY = ("asyncua", "pymodbus", "botocore", "urllib3", "uvicorn.error")
"""Libraries whose INFO lines drown the gateway's own: WARNING and up only (DEBUG shows them all)."""


class Redacting(logging.Filter):
    """Passwords inside URLs leave no log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message:
            record.msg, record.args = redact(message), None
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def setup_logging(level: str, fmt: LogFormat = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(Redacting())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
