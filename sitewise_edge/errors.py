"""The exception tree of sitewise-edge.

    SitewiseEdgeError
    ├── ConfigError            a configuration file that does not validate (carries every issue)
    ├── ModelError             an asset model or asset that does not load (names the file and property)
    ├── ConnectorError         a device could not be read; the runtime restarts the source with back-off
    │   └── NodeError          a configured OPC UA node or Modbus register is missing or unreadable
    ├── StoreError             the data directory cannot be used (layout version, disk)
    ├── PublishError           a destination rejected a request as a whole
    └── ApiError               a request the SiteWise-compatible API refuses (carries code and HTTP status)
        └── InvalidValue       one TQV that cannot be accepted (InvalidRequestException)

Only the runtime's supervisor catches broadly; everything else catches these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class SitewiseEdgeError(Exception):
    """Base of every error this project raises on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration: where (a key path such as ``sources[1].tags[3].type``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(SitewiseEdgeError):
    def __init__(self, issues: list[ConfigIssue], source: str = "") -> None:
        self.issues = issues
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "; ".join(str(i) for i in issues))


class ModelError(SitewiseEdgeError):
    """An asset model or asset file that does not load."""


class ConnectorError(SitewiseEdgeError):
    """A source failed; the message names the source and the endpoint."""


class NodeError(ConnectorError):
    """A configured node or register does not exist or cannot be read."""


class StoreError(SitewiseEdgeError):
    """The store cannot open or write its data directory."""


class PublishError(SitewiseEdgeError):
    """A destination rejected or failed a whole request; ``publisher``, ``endpoint`` and ``kind`` (the
    error code or exception class, as in the publisher's error counters) say which, when known."""

    def __init__(self, message: str, *, retryable: bool, publisher: str | None = None,
                 endpoint: str | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.publisher = publisher
        self.endpoint = endpoint
        self.kind = kind


class ApiError(SitewiseEdgeError):
    """An error the SiteWise-compatible API returns: ``code`` is the botocore error shape name."""

    STATUS: ClassVar[dict[str, int]] = {
        "InvalidRequestException": 400,
        "ValidationException": 400,
        "UnauthorizedException": 401,
        "AccessDeniedException": 403,
        "ResourceNotFoundException": 404,
        "ConflictingOperationException": 409,
        "ResourceAlreadyExistsException": 409,
        "LimitExceededException": 410,
        "ThrottlingException": 429,
        "InternalFailureException": 500,
        "ServiceUnavailableException": 503,
    }

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return self.STATUS.get(self.code, 400)


class InvalidValue(ApiError):
    """One TQV that cannot be accepted."""

    def __init__(self, message: str, code: str = "InvalidRequestException") -> None:
        super().__init__(code, message)
