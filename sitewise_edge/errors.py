"""The exception tree of sitewise-edge.

    SitewiseEdgeError
    ├── ConfigError            a configuration file that does not validate (carries every issue)
    ├── ModelError             an asset model or asset that does not load (names the file and property)
    │   ├── ExpressionError    a transform or metric expression that does not compile (expression, position)
    │   ├── ModelInvalid*      documents or a control-plane request that do not check (one line per problem)
    │   ├── ModelNotFound*     no model, asset, property or hierarchy by that reference (the reference)
    │   └── ModelConflict*     the operation clashes with an existing object (its id and type)
    │       ├── ModelExists*   an id, external id, name or link already used
    │       └── ModelInUse*    a delete refused while the object is associated or used
    ├── ConnectorError         a device could not be read; the runtime restarts the source with back-off
    │   └── NodeError          a configured node that cannot be used (malformed id, unknown namespace): a tag error
    ├── StoreError             the data directory cannot be used (layout version, disk); path, segment, seq
    │   ├── DiskFull           writes refused: the file system is full or under storage.disk_reserve; free, reserve
    │   └── FrameError†        a WAL frame that cannot be read (bad length, checksum, sequence); offset, reason
    │       └── IncompleteFrame†  the segment ends inside a frame (a torn tail)
    ├── PublishError           a destination failed a whole pass for good (publisher, endpoint, kind); the
    │                          SiteWise publisher retries or dead-letters instead, so only the S3 export raises it
    └── ApiError               a request the SiteWise-compatible API refuses (code, HTTP status, body members)
        └── InvalidValue       one TQV that cannot be accepted (InvalidRequestException)

* the model layer's own, in ``asset_models/errors.py``; ``api/sitewise/errors.py`` maps every
  ModelError to its SiteWise error (code, HTTP status, ``resourceId``/``resourceArn``), in one place.
† the write-ahead log's own, in ``storage/wal.py``.

Errors carry their context as attributes (``ConnectorError.source``/``endpoint``, ``NodeError.node``,
``StoreError.path``/``segment``/``seq``, ``PublishError.publisher``/``endpoint``/``kind``), not only as text:
code decides on types and attributes, never on the words of a message.

Only the runtime's supervisor catches broadly; everything else catches these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
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
    """An asset model or asset file that does not load, or a model operation that is refused."""


class ExpressionError(ModelError):
    """An expression that does not compile (raised by ``asset_models.expressions``).

    ``expression`` is the full text, ``position`` a 0-based character offset into it and ``message`` what is
    wrong there. ``str()`` renders a caret under the column::

        unknown function 'foo' at column 8:
          9/5 * foo(x)
                ^
    """

    def __init__(self, expression: str, position: int, message: str) -> None:
        self.expression = expression
        self.position = max(0, min(position, len(expression)))
        self.message = message
        super().__init__(self.render())

    @property
    def column(self) -> int:
        """1-based column of the problem."""
        return self.position + 1

    def render(self) -> str:
        line = self.expression.replace("\n", " ").replace("\t", " ")
        return f"{self.message} at column {self.column}:\n  {line}\n  {' ' * self.position}^"


class ConnectorError(SitewiseEdgeError):
    """A source failed; the message names the source and the endpoint, the attributes carry them."""

    def __init__(self, message: str, *, source: str | None = None, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.endpoint = endpoint


class NodeError(ConnectorError):
    """One configured node cannot be used. The connector records it as that tag's error (BAD rows)
    and goes on with the others: it never ends the source."""

    def __init__(self, message: str, *, node: str, source: str | None = None, endpoint: str | None = None) -> None:
        super().__init__(message, source=source, endpoint=endpoint)
        self.node = node


class StoreError(SitewiseEdgeError):
    """The store cannot open or write its data directory; ``path``, ``segment`` (a WAL segment's name)
    and ``seq`` (a record's sequence number) say where, when known."""

    def __init__(self, message: str, *, path: Path | None = None, segment: str | None = None,
                 seq: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.segment = segment
        self.seq = seq


class DiskFull(StoreError):
    """The store refuses writes: its file system is full (``free`` 0) or has less than ``reserve`` bytes free
    (``storage.disk_reserve``) once the old history it may delete is gone. Nothing of the batch is kept."""

    def __init__(self, message: str, *, path: Path, segment: str | None = None, seq: int | None = None,
                 free: int | None = None, reserve: int | None = None) -> None:
        super().__init__(message, path=path, segment=segment, seq=seq)
        self.free = free
        self.reserve = reserve


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
    """An error the SiteWise-compatible API returns: ``code`` is the botocore error shape name.

    ``fields`` are the members of the error body besides ``message`` (``resourceId`` and
    ``resourceArn`` of ``ResourceAlreadyExistsException``, for example).
    """

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
        "NotImplementedException": 501,
        "ServiceUnavailableException": 503,
        # AWS's own, before any service sees the request (api/auth.py), and SiteWise Edge's Authenticate
        "UnrecognizedClientException": 403,
        "InvalidSignatureException": 403,
        "IncompleteSignatureException": 400,
        "IllegalArgumentException": 400,
    }

    def __init__(self, code: str, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields: Mapping[str, str] = fields or {}

    @property
    def status(self) -> int:
        return self.STATUS.get(self.code, 400)


class InvalidValue(ApiError):
    """One TQV that cannot be accepted."""

    def __init__(self, message: str, code: str = "InvalidRequestException") -> None:
        super().__init__(code, message)
