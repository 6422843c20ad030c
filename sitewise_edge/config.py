"""The gateway's configuration: one YAML file validated into typed models.

    config = load_config("gateway.yaml")        # raises ConfigError listing every issue
    config.sources[0].name

Every issue names its key path (``sources[1].tags[3].type``) and what was expected.
``${VAR}`` (or ``${VAR:-default}``) in any string is replaced from the environment
after parsing, so secrets never have to be written in the file.

The ``sources[]`` entries are not defined here: each connector owns its model (a subclass of
:class:`SourceConfig`) and registers it under the ``sitewise_edge.connectors`` entry point group
(see ``connectors/base.py``). :func:`source_types` discovers them when a configuration is first
validated, so this module imports no connector.
"""

from __future__ import annotations

import builtins
import functools
import importlib.metadata
import operator
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, Self, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sitewise_edge.errors import ConfigError, ConfigIssue

# --- scalar types ---------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_SIZE_UNITS = {
    None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}


def parse_duration(value: Any) -> float:
    """``500ms``, ``5s``, ``1m``, ``2h``, ``30d``, ``1w`` (or a number of seconds) -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 500ms, 5s, 1m, 30d; got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"expected a duration such as 500ms, 5s, 1m, 30d; got {value!r}")
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"expected a positive duration; got {value!r}")
    return seconds


def parse_size(value: Any) -> int:
    """``512MiB``, ``20GiB``, ``10GB`` (or a number of bytes) -> bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 512MiB or 20GiB; got {value!r}")
    if isinstance(value, int | float):
        size = int(value)
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise ValueError(f"expected a size such as 512MiB or 20GiB; got {value!r}")
        size = int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
    if size <= 0:
        raise ValueError(f"expected a positive size; got {value!r}")
    return size


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Port = Annotated[int, Field(ge=0, le=65535)]


def _one_of(kind: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {kind} {value!r}; expected one of {', '.join(allowed)}")
    return str(value)


def closed(kind: str, literal: Any, *, optional: bool = False) -> BeforeValidator:
    """The check of a field typed with a ``Literal``, with this project's messages.

        mode: Annotated[Literal["subscribe", "poll"], closed("mode", Literal["subscribe", "poll"])]

    refuses ``"push"`` with ``unknown mode 'push'; expected one of subscribe, poll`` (pydantic's
    own literal error reads less well) and a value that is not a string as a string field does.
    ``optional``: ``None`` is allowed (the field is ``Literal[...] | None``).
    """
    allowed = tuple(str(a) for a in get_args(literal))

    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "Input should be a valid string")
        return _one_of(kind, value, allowed)

    return BeforeValidator(check)


def resolve_path(path: Path, base: Path) -> Path:
    """``path`` as written in a file in folder ``base``: absolute paths stay, relative ones join ``base``."""
    return path if path.is_absolute() else (base / path).resolve()


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        # pydantic reads ``true`` as 1 for a number field (``port: true`` would listen on port 1): handed on
        # as the text ``true``, it fails that field's own check, which names the key
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {k: str(v).lower() if isinstance(v, bool) and k in fields
                and _is_number_annotation(fields[k].annotation) else v for k, v in data.items()}


def _is_number_annotation(annotation: Any) -> bool:
    """int, float, or an optional one (the fields a YAML ``true`` must not fill)."""
    if annotation in (int, float):
        return True
    args = get_args(annotation)
    return bool(args) and all(a in (int, float, type(None)) for a in args) and type(None) in args


# --- sources: the shared base; each connector defines (and registers) its own model ------

CONNECTORS_ENTRY_POINTS = "sitewise_edge.connectors"
"""The entry point group where a connector registers itself (``[project.entry-points."sitewise_edge.connectors"]``)."""


class Aliased(Protocol):
    """An item of a source (an OPC UA node, a Modbus tag) that writes one data stream."""

    @property
    def alias(self) -> str: ...


class SourceConfig(_Model):
    """What every ``sources[]`` entry has; a connector's model extends it.

        class OpcUaSource(SourceConfig):
            type: Literal["opcua"]          # the ``type:`` it serves (the discriminator)
            nodes: list[OpcUaNode]
            def aliased_items(self): return "nodes", self.nodes
    """

    name: str
    type: str

    def aliased_items(self) -> tuple[str, Sequence[Aliased]]:
        """The key of the list whose items carry the aliases (``nodes``, ``tags``), and those items."""
        raise NotImplementedError(f"{type(self).__name__} does not say which of its items carry aliases")

    def aliases(self) -> list[str]:
        """Every alias this source writes, in configuration order."""
        return [item.alias for item in self.aliased_items()[1]]

    def resolve_paths(self, base: Path) -> Self:
        """This source with its file-relative paths made absolute (see :func:`resolve_path`); none by default."""
        return self

    def with_data_dir(self, data_dir: Path) -> Self:
        """This source with its defaults under the gateway's data directory filled in; none by default."""
        return self

    def exclusive_line(self) -> str | None:
        """A line only one source may use at a time (a serial port); none by default."""
        return None

    def plan_lines(self) -> list[str]:
        """What ``sitewise-edge validate`` prints of this source's read plan (Modbus requests); none by default."""
        return []


class SourceType(Protocol):
    """What the configuration needs of a registered connector (``connectors.base.ConnectorType`` is one)."""

    @property
    def type(self) -> str: ...

    @property
    def config(self) -> builtins.type[SourceConfig]: ...  # builtins: ``type`` is the property above


@functools.cache
def source_types() -> Mapping[str, SourceType]:
    """Every registered connector by the ``type:`` it serves, sorted by type.

    Read once from the installed entry points: a connector is added by a package that declares
    one, without a change here. Raises TypeError for a registration that does not fit.
    """
    found: dict[str, SourceType] = {}
    for ep in sorted(importlib.metadata.entry_points(group=CONNECTORS_ENTRY_POINTS), key=lambda e: e.name):
        spec = ep.load()
        model = getattr(spec, "config", None)
        if not (isinstance(model, type) and issubclass(model, SourceConfig)):
            raise TypeError(f"connector entry point {ep.name} = {ep.value}: its config is not a SourceConfig")
        tags = get_args(model.model_fields["type"].annotation)
        if getattr(spec, "type", None) != ep.name or tags != (ep.name,):
            raise TypeError(f"connector entry point {ep.name} = {ep.value}: type and config.type must be "
                            f"Literal[{ep.name!r}], not {getattr(spec, 'type', None)!r} and {tags}")
        if ep.name in found:
            raise TypeError(f"connector type {ep.name!r} is registered twice ({ep.value})")
        found[ep.name] = spec
    return found


@functools.cache
def _sources_adapter() -> TypeAdapter[list[SourceConfig]] | None:
    """``sources`` as a union of the registered models, told apart by ``type`` (None: no connector)."""
    models = [t.config for t in source_types().values()]
    if not models:
        return None
    union: Any = functools.reduce(operator.or_, models)
    return TypeAdapter(list[Annotated[union, Field(discriminator="type")]])


# --- sections -------------------------------------------------------------------------


class GatewayConfig(_Model):
    name: str = "sitewise-edge"
    data_dir: Path = Path("./data")
    stale_after: Duration = 60.0
    """A source down for longer than this: its streams' latest values read as UNCERTAIN (history stays)."""


class QueryLimits(_Model):
    """ExecuteQuery's limits. Each query runs in a DuckDB of its own on the query threads (never on the
    worker threads that storing and forwarding use), so a hostile query costs at most these."""

    concurrency: int = Field(default=2, ge=1, le=64)
    """Queries that run at once, each on a thread of its own."""
    queue: int = Field(default=8, ge=0, le=1024)
    """Queries that wait for a thread; past that a query is refused at once (ThrottlingException)."""
    memory_limit: Size = 256 * 2**20
    """DuckDB's ``memory_limit`` of each query; a query that grows the process by more is stopped too
    (ValidationException)."""
    threads: int = Field(default=1, ge=1, le=64)
    """DuckDB's ``threads`` of each query."""
    timeout: Duration = 30.0
    """A query running longer is interrupted (QueryTimeoutException)."""
    max_page_bytes: Size = 4 * 2**20
    """A page of results holds at most about this many bytes of JSON; the rest comes with ``nextToken``.
    A single row larger than this is refused (ValidationException)."""


Access = Annotated[Literal["read", "write"], closed("access", Literal["read", "write"])]


class AccessKey(_Model):
    """An AWS-style access key the API verifies SigV4 signatures with (boto3, the AWS CLI, Grafana).

        access_keys:
          - {id: EDGEREADER0000000001, secret: ${EDGE_READER_SECRET}, access: read}
    """

    id: str = Field(min_length=16, max_length=128, pattern=r"^\w+$")
    secret: str = Field(min_length=16, repr=False)
    access: Access = "read"
    """``read``: the reads (GET and the read-only POSTs); ``write``: every route."""


class ApiUser(_Model):
    """A user of the dashboard's sign-in and of the edge ``Authenticate`` operation."""

    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=8, repr=False)
    access: Access = "read"


class TlsConfig(_Model):
    """HTTPS: a PEM certificate (chain) and its key; ``sitewise-edge tls generate`` makes a self-signed pair."""

    cert: Path
    key: Path


class CorsConfig(_Model):
    """Cross-origin reads for web apps served elsewhere (Grafana in the browser, a plant portal)."""

    origins: list[str] = []
    """Origins allowed to call the API from a browser (``https://grafana.plant``); ``*`` allows any (then
    without cookies)."""
    max_age: Duration = 600.0
    """How long a browser may keep a preflight's answer."""


class ApiConfig(_Model):
    host: str = "127.0.0.1"
    port: Port = 8080
    token: str | None = Field(default=None, repr=False)
    """Bearer token required by write routes (and by reads with ``auth: read``). Required when ``host`` is
    not a loopback address."""
    auth: Annotated[Literal["write", "read"], closed("auth", Literal["write", "read"])] = "write"
    """``write``: the token guards writes; ``read``: every route but ``/health`` needs it."""
    allowed_hosts: list[str] = []
    """Host names the API answers to besides the loopback ones (``localhost``, ``*.localhost``, 127.x.x.x,
    ``::1``); ``*.example.com`` allows the subdomains. Checked when ``host`` is a loopback address (DNS
    rebinding) or when this list is not empty."""
    allowed_origins: list[str] = []
    """Origins (``https://grafana.example.com``) whose pages may write besides the API's own."""
    max_body_size: Size = 4 * 2**20
    """Largest request body accepted (413 past it), counted as it arrives."""
    max_json_depth: int = Field(default=32, ge=4, le=256)
    """Deepest nesting of a JSON request body (SiteWise documents nest about 8 deep)."""
    future_limit: Duration = 600.0
    """BatchPutAssetPropertyValue refuses a value stamped further ahead of the gateway's clock
    (TimestampOutOfRangeException for that value, as SiteWise does beyond +10 minutes)."""
    query: QueryLimits = QueryLimits()
    access_keys: list[AccessKey] = []
    """Keys SigV4 signatures are verified with; a signed request with another key or a wrong signature is
    refused (UnrecognizedClientException, InvalidSignatureException)."""
    users: list[ApiUser] = []
    """Who signs in to the dashboard (a session cookie) or calls ``Authenticate`` (temporary SigV4 keys)."""
    session_timeout: Duration = 8 * 3600.0
    """Lifetime of a dashboard session and of the keys ``Authenticate`` hands out."""
    tls: TlsConfig | None = None
    cors: CorsConfig = CorsConfig()

    @property
    def credentials(self) -> bool:
        """Whether any credential is configured (token, access keys or users)."""
        return bool(self.token or self.access_keys or self.users)
    any_resolution: bool = False
    """GetAssetPropertyAggregates takes any whole ``<n>s|m|h|d`` resolution besides SiteWise's 1m, 15m, 1h and
    1d (an extension: a script written for it fails against SiteWise)."""

    @model_validator(mode="after")
    def _token_when_exposed(self) -> ApiConfig:
        if not is_loopback(self.host) and not self.credentials:
            raise ValueError(
                f"host {self.host!r} exposes the API beyond this machine: set token, access_keys or users "
                "(for example token: ${SITEWISE_EDGE_TOKEN})"
            )
        if self.auth == "read" and not self.credentials:
            raise ValueError("auth: read needs a token, access_keys or users (for example token: "
                             "${SITEWISE_EDGE_TOKEN})")
        listed = (("access_keys", [k.id for k in self.access_keys]), ("users", [u.name for u in self.users]))
        for field, names in listed:
            seen: set[str] = set()
            for i, name in enumerate(names):
                if name in seen:
                    raise ValueError(f"{field}[{i}]: {name!r} is listed twice")
                seen.add(name)
        return self


def is_loopback(host: str) -> bool:
    """A host name or address that only this machine reaches."""
    return host in ("localhost", "::1") or host.startswith("127.")


class ModelsEntry(_Model):
    path: Path


class SitewisePublisher(_Model):
    name: str
    type: Literal["sitewise"]
    region: str = "us-east-1"
    endpoint_url: str | None = None
    """A SiteWise-compatible endpoint (e.g. another gateway); none: the AWS endpoint of ``region``."""
    batch_interval: Duration = 1.0
    """How long to wait for more values before sending a partly filled request."""
    max_retry_interval: Duration = 60.0
    token: str | None = Field(default=None, repr=False)
    """API token of a sitewise-edge endpoint that requires one (sent as ``x-api-token``); use ``${VAR}``."""
    min_retry_interval: Duration = 0.5
    """First back-off after a failure; doubles (with jitter) up to ``max_retry_interval``."""
    probe_interval: Duration = Field(default=5.0, gt=0)
    """In an outage, one waiting request tries again at least this often (a probe); when it is answered,
    every request waiting out a back-off goes at once, instead of at the end of its own (up to
    ``max_retry_interval``)."""
    max_in_flight: int = Field(default=16, ge=1, le=64)
    """Requests in flight at once, at most (throttling lowers it); each data stream keeps to one of them (time
    order per stream). 16 covers a 100 ms round trip at 16,000 values/s."""
    publishing_order: Literal["oldest_first", "newest_first"] = "oldest_first"
    """``newest_first``: fresh data goes first whenever a backlog waits; the backlog gets what is left."""
    live_after: Duration = 60.0
    """When the oldest unsent value is older than this and more is waiting, a live lane sends fresh data
    alongside the backlog (``oldest_first``)."""
    rate_limit_values: float = Field(default=1000.0, ge=0)
    """Values (TQVs) per second for the account ("Rate of data points ingested"); 0: no limit."""
    rate_limit_requests: float = Field(default=1000.0, ge=0)
    """BatchPutAssetPropertyValue requests per second for the account; 0: no limit."""
    rate_limit_entries_per_property: float = Field(default=10.0, ge=0)
    """Entries per second per asset property (SiteWise: 10, not adjustable); 0: no limit."""
    cutoff: Duration | None = None
    """Values older than this are not sent to SiteWise: an S3 export covering them takes them, else they
    are dead-lettered. SiteWise itself refuses values older than 7 days."""
    park_unknown_for: Duration = 600.0
    """How long values refused with ResourceNotFoundException (unknown alias) are retried before they are
    dead-lettered: a mapping may appear meanwhile."""
    park_retry_interval: Duration = 30.0
    """How often parked values are tried again."""
    deadletter_max_size: Size = 256 * 2**20
    """Budget of the dead-letter file; past it the oldest dead letters are deleted (counted, logged)."""
    status_log_interval: Duration = 60.0
    """How often a summary line (sent, backlog, errors) is logged."""
    include: list[str] = ["*"]
    """Glob patterns (fnmatch) on the stream alias; a stream is forwarded when one matches..."""
    exclude: list[str] = []
    """...and none of these does."""


class S3Export(_Model):
    """Sealed days of the store exported to S3 as one Parquet file each (see sitewise_edge/publish/README.md)."""

    name: str
    type: Literal["s3"]
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = "sitewise-edge/"
    """Key prefix; objects go to ``<prefix>date=YYYY-MM-DD/<gateway name>.parquet``."""
    region: str = "us-east-1"
    endpoint_url: str | None = None
    """An S3-compatible store (MinIO, moto); none: the AWS endpoint of ``region``."""
    seal_after: Duration = 3600.0
    """Grace after the end of a UTC day for late data; then the day is sealed and exported."""
    interval: Duration = 300.0
    """How often to look for sealed days not yet exported."""
    multipart_threshold: Size = 64 * 2**20
    include: list[str] = ["*"]
    """Glob patterns (fnmatch) on the stream alias; a stream is exported when one matches..."""
    exclude: list[str] = []
    """...and none of these does."""


PublisherConfig = Annotated[SitewisePublisher | S3Export, Field(discriminator="type")]


class StorageConfig(_Model):
    retention: Duration = 30 * 86400.0
    max_disk: Size = 20 * 2**30
    fsync: str = "batch"
    """``batch``: fsync every accepted batch before acknowledging it; or a duration such as ``100ms``."""
    segment_size: Size = 64 * 2**20
    compact_interval: Duration = 60.0
    disk_reserve: int = 256 * 2**20
    """Free space the store leaves on its file system: below it, old history goes, then writes are refused."""

    @field_validator("disk_reserve", mode="before")
    @classmethod
    def _reserve(cls, v: Any) -> int:
        return 0 if v in (0, "0") else parse_size(v)

    @field_validator("fsync")
    @classmethod
    def _fsync(cls, v: str) -> str:
        if v != "batch":
            try:
                parse_duration(v)
            except ValueError:
                raise ValueError(f"unknown fsync policy {v!r}; expected batch or a duration such as 100ms") from None
        return v

    @property
    def fsync_interval(self) -> float | None:
        return None if self.fsync == "batch" else parse_duration(self.fsync)


class Config(_Model):
    gateway: GatewayConfig = GatewayConfig()
    api: ApiConfig = ApiConfig()
    models: list[ModelsEntry] = []
    sources: list[SerializeAsAny[SourceConfig]] = []
    publishers: list[PublisherConfig] = []
    storage: StorageConfig = StorageConfig()

    @field_validator("sources", mode="before")
    @classmethod
    def _sources(cls, value: Any) -> Any:
        adapter = _sources_adapter()
        if adapter is None:
            if value:
                raise ValueError(f"no connector is registered (entry points {CONNECTORS_ENTRY_POINTS!r}): "
                                 "install sitewise-edge, for example pip install -e .")
            return value
        return adapter.validate_python(value)  # its errors keep their key paths (sources[1].tags[3].type)

    @model_validator(mode="after")
    def _unique(self) -> Config:
        _unique_names("sources", [s.name for s in self.sources])
        _unique_names("publishers", [p.name for p in self.publishers])
        seen: dict[str, str] = {}
        for i, src in enumerate(self.sources):
            key, items = src.aliased_items()
            for j, item in enumerate(items):
                where = f"sources[{i}].{key}[{j}]"
                if item.alias in seen:
                    raise ValueError(f"{where}.alias: alias {item.alias!r} is already used by {seen[item.alias]}")
                seen[item.alias] = where
        lines: dict[str, int] = {}
        for i, src in enumerate(self.sources):
            line = src.exclusive_line()
            if line is not None and line in lines:
                raise ValueError(f"sources[{i}]: {line} is already used by sources[{lines[line]}]: one source per "
                                 "line (put its devices into that source)")
            if line is not None:
                lines[line] = i
        return self


def _unique_names(section: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise ValueError(f"{section}[{i}].name: duplicate name {n!r}")
        seen.add(n)


# --- secrets in text -------------------------------------------------------------------

_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")


def redact(text: str) -> str:
    """``opc.tcp://operator:s3cret@plc:4840`` -> ``opc.tcp://operator:***@plc:4840``: the password inside
    any URL of ``text`` (an endpoint, an error naming it) never reaches a log or ``/health``."""
    return _URL_PASSWORD.sub(r"\1:***@", text) if "@" in text else text


def redact_all(value: Any) -> Any:
    """:func:`redact` applied to every string of a JSON-like value (a status document)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_all(v) for v in value]
    return value


# --- loading --------------------------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PUBLISHER_TYPES = {"sitewise", "s3"}


def substitute_env(data: Any, env: dict[str, str], path: str = "") -> tuple[Any, list[ConfigIssue]]:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed document."""
    issues: list[ConfigIssue] = []
    if isinstance(data, str):
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if default is not None and not env.get(name):
                return default  # as the shell: ``${VAR:-default}`` also when VAR is set but empty
            if name in env:
                return env[name]
            issues.append(ConfigIssue(path, f"environment variable {name} is not set"))
            return ""
        return _VAR.sub(repl, data), issues
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            out[k], sub = substitute_env(v, env, f"{path}.{k}" if path else str(k))
            issues += sub
        return out, issues
    if isinstance(data, list):
        items = []
        for i, v in enumerate(data):
            item, sub = substitute_env(v, env, f"{path}[{i}]")
            items.append(item)
            issues += sub
        return items, issues
    return data, issues


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    prev: Any = None
    discriminators = _PUBLISHER_TYPES | set(source_types())
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(prev, int) and part in discriminators:
            pass  # the discriminated union's tag, not a key the user wrote
        elif isinstance(part, str) and part.startswith("function-"):
            pass
        else:
            out += f".{part}" if out else str(part)
        prev = part
    return out


SECRET_KEYS = frozenset({"secret", "password", "token"})
"""Keys whose values an error message never quotes."""


def _issue_from_error(err: Mapping[str, Any]) -> ConfigIssue:
    path = _loc_to_path(tuple(err["loc"]))
    kind = err["type"]
    msg = err["msg"]
    if kind == "value_error":
        msg = str(err.get("ctx", {}).get("error", msg.removeprefix("Value error, ")))
        # a model-level check that names its own key path
        m = re.match(r"^([A-Za-z_][\w.\[\]]*): (.*)$", msg)
        if m and ("[" in m.group(1) or "." in m.group(1)):
            prefix = f"{path}." if path else ""
            return ConfigIssue(prefix + m.group(1), m.group(2))
    elif kind == "missing":
        msg = "required key is missing"
    elif kind == "extra_forbidden":
        msg = "unknown key"  # its value is not echoed: a misspelt password key must not print the password
    elif kind == "union_tag_invalid":
        tags = err.get("ctx", {}).get("expected_tags", "")
        msg = f"unknown type {err.get('ctx', {}).get('tag')!r}; expected one of {tags.replace(chr(39), '')}"
        path = f"{path}.type" if path else "type"
    elif kind == "union_tag_not_found":
        msg = "required key 'type' is missing"
        path = f"{path}.type" if path else "type"
    elif err["loc"] and err["loc"][-1] in SECRET_KEYS:
        pass  # a secret's value is never echoed
    else:
        msg = f"{msg} (got {err.get('input')!r})" if "input" in err and not isinstance(
            err["input"], dict | list) else msg
    return ConfigIssue(path, msg)


def parse_config(data: Any, env: dict[str, str] | None = None, source: str = "") -> Config:
    """A parsed YAML document -> :class:`Config`; raises :class:`ConfigError` with every issue."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue("", "the configuration must be a mapping of sections")], source)
    data, issues = substitute_env(data, dict(os.environ) if env is None else env)
    if issues:
        raise ConfigError(issues, source)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_issue_from_error(e) for e in exc.errors()], source) from None


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A key written twice in one mapping (valid YAML, refused here)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key written twice in one mapping is an error (PyYAML keeps
    the last value silently: a second ``api:`` section would replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise _DuplicateKey(
                    f"while reading the mapping of line {node.start_mark.line + 1}", node.start_mark,
                    f"the key {key!r} is written twice in one mapping (first at line {first.start_mark.line + 1}): "
                    "the second would silently replace the first", key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate a configuration file. Relative paths inside are taken from the file's folder."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read the file: {exc.strerror}")], str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError([ConfigIssue(f"line {line}, column {column}", f"not UTF-8 text: byte "
                                       f"0x{raw[exc.start]:02x} (save the file as UTF-8)")], str(path)) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if not isinstance(exc, _DuplicateKey):
            problem = f"not valid YAML: {problem}"
        raise ConfigError([ConfigIssue(where, problem)], str(path)) from None
    except RecursionError:
        raise ConfigError([ConfigIssue("", "not valid YAML: nested too deeply")], str(path)) from None
    config = parse_config(data, env, str(path))
    return resolve_paths(config, path.parent)


def resolve_paths(config: Config, base: Path) -> Config:
    """Make the file-relative paths of a configuration absolute (a source resolves its own)."""
    gateway = config.gateway.model_copy(update={"data_dir": resolve_path(config.gateway.data_dir, base)})
    models = [m.model_copy(update={"path": resolve_path(m.path, base)}) for m in config.models]
    if config.api.tls is not None:
        tls = TlsConfig(cert=resolve_path(config.api.tls.cert, base), key=resolve_path(config.api.tls.key, base))
        config = config.model_copy(update={"api": config.api.model_copy(update={"tls": tls})})
    sources = [s.resolve_paths(base).with_data_dir(gateway.data_dir) for s in config.sources]
    return config.model_copy(update={"gateway": gateway, "models": models, "sources": sources})
