"""The gateway's configuration: one YAML file validated into typed models.

    cfg = load_config("gateway.yaml")        # raises ConfigError listing every issue
    cfg.sources[0].name

Every issue names its key path (``sources[1].tags[3].type``) and what was expected.
``${VAR}`` (or ``${VAR:-default}``) in any string is replaced from the environment
after parsing, so secrets never have to be written in the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- sections -------------------------------------------------------------------------


class GatewayConfig(_Model):
    name: str = "sitewise-edge"
    data_dir: Path = Path("./data")


class ApiConfig(_Model):
    host: str = "127.0.0.1"
    port: Port = 8080
    token: str | None = Field(default=None, repr=False)
    """Bearer token required by write routes. Required when ``host`` is not a loopback address."""

    @model_validator(mode="after")
    def _token_when_exposed(self) -> ApiConfig:
        if not _is_loopback(self.host) and not self.token:
            raise ValueError(
                f"host {self.host!r} exposes the API beyond this machine: set token "
                "(for example token: ${SITEWISE_EDGE_TOKEN})"
            )
        return self


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


class ModelsEntry(_Model):
    path: Path


OPCUA_VALUE_TYPES = ("double", "integer", "string", "boolean")
SECURITY_POLICIES = ("None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss")
SECURITY_MODES = ("None", "Sign", "SignAndEncrypt")


class OpcUaNode(_Model):
    node_id: str
    alias: str
    type: str | None = None
    """Force the stored value type (double, integer, string, boolean); default: from the OPC UA variant."""

    @field_validator("type")
    @classmethod
    def _type(cls, v: str | None) -> str | None:
        return None if v is None else _one_of("value type", v, OPCUA_VALUE_TYPES)

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, v: str) -> str:
        if not re.match(r"^(ns=\d+;)?[isgb]=.+$", v) and not v.startswith("nsu="):
            raise ValueError(f"malformed node id {v!r}; expected a form such as ns=2;s=Press1.Temperature or i=2258")
        return v


class OpcUaSource(_Model):
    name: str
    type: Literal["opcua"]
    endpoint: str
    nodes: list[OpcUaNode] = Field(min_length=1)
    mode: str = "subscribe"
    """``subscribe`` (monitored items: report by exception) or ``poll`` (read every ``interval``)."""
    interval: Duration = 1.0
    """Publishing interval of the subscription, or the poll period."""
    timestamp: str = "source"
    """``source`` (the device's timestamp) or ``server`` (the server's)."""
    timeout: Duration = 5.0
    security_policy: str = "None"
    security_mode: str = "None"
    certificate: Path | None = None
    private_key: Path | None = None
    server_certificate: Path | None = None
    username: str | None = None
    password: str | None = Field(default=None, repr=False)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not v.startswith("opc.tcp://"):
            raise ValueError(f"endpoint {v!r} must start with opc.tcp://")
        return v

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        return _one_of("mode", v, ("subscribe", "poll"))

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, v: str) -> str:
        return _one_of("timestamp", v, ("source", "server"))

    @field_validator("security_policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        return _one_of("security policy", v, SECURITY_POLICIES)

    @field_validator("security_mode")
    @classmethod
    def _smode(cls, v: str) -> str:
        return _one_of("security mode", v, SECURITY_MODES)

    @model_validator(mode="after")
    def _security(self) -> OpcUaSource:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError("security_policy and security_mode must both be None or both be set")
        if self.security_policy != "None" and not (self.certificate and self.private_key):
            raise ValueError(f"security policy {self.security_policy} needs certificate and private_key")
        return self


MODBUS_TABLES = ("holding", "input", "coil", "discrete")
MODBUS_TYPES = ("int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "bool", "string")
WORD_ORDERS = ("big", "little")


class ModbusTag(_Model):
    alias: str
    table: str
    address: int = Field(ge=0, le=65535)
    type: str = "uint16"
    word_order: str = "big"
    """Order of the 16-bit words of a multi-register value: ``big`` (ABCD) or ``little`` (CDAB)."""
    length: int | None = Field(default=None, ge=1, le=123)
    """Registers holding a ``string`` tag."""
    scale: float | None = None
    """Multiply the raw value (the result is stored as a double)."""

    @field_validator("table")
    @classmethod
    def _table(cls, v: str) -> str:
        return _one_of("register table", v, MODBUS_TABLES)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        return _one_of("data type", v, MODBUS_TYPES)

    @field_validator("word_order", mode="before")
    @classmethod
    def _word_order(cls, v: Any) -> str:
        v = {"ABCD": "big", "CDAB": "little", "big-endian": "big", "little-endian": "little"}.get(v, v)
        return _one_of("word order", v, WORD_ORDERS)

    @model_validator(mode="after")
    def _fits_table(self) -> ModbusTag:
        bit_table = self.table in ("coil", "discrete")
        if bit_table and self.type != "bool":
            raise ValueError(f"table {self.table} holds bits: type must be bool, not {self.type}")
        if not bit_table and self.type == "bool":
            raise ValueError(f"type bool needs table coil or discrete, not {self.table}")
        if self.type == "string" and not self.length:
            raise ValueError("type string needs length (the number of registers)")
        return self


class ModbusSource(_Model):
    name: str
    type: Literal["modbus"]
    host: str
    port: Port = 502
    unit_id: int = Field(default=1, ge=0, le=255)
    interval: Duration = 1.0
    timeout: Duration = 3.0
    tags: list[ModbusTag] = Field(min_length=1)


SourceConfig = Annotated[OpcUaSource | ModbusSource, Field(discriminator="type")]


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
    max_in_flight: int = Field(default=4, ge=1, le=64)
    """Requests in flight at once; each data stream keeps to one of them (time order per stream)."""
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
    sources: list[SourceConfig] = []
    publishers: list[PublisherConfig] = []
    storage: StorageConfig = StorageConfig()

    @model_validator(mode="after")
    def _unique(self) -> Config:
        _unique_names("sources", [s.name for s in self.sources])
        _unique_names("publishers", [p.name for p in self.publishers])
        seen: dict[str, str] = {}
        for i, src in enumerate(self.sources):
            items = src.nodes if isinstance(src, OpcUaSource) else src.tags
            key = "nodes" if isinstance(src, OpcUaSource) else "tags"
            for j, item in enumerate(items):
                where = f"sources[{i}].{key}[{j}]"
                if item.alias in seen:
                    raise ValueError(f"{where}.alias: alias {item.alias!r} is already used by {seen[item.alias]}")
                seen[item.alias] = where
        return self


def _unique_names(section: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise ValueError(f"{section}[{i}].name: duplicate name {n!r}")
        seen.add(n)


# --- loading --------------------------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DISCRIMINATORS = {"opcua", "modbus", "sitewise", "s3"}


def substitute_env(data: Any, env: dict[str, str], path: str = "") -> tuple[Any, list[ConfigIssue]]:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed document."""
    issues: list[ConfigIssue] = []
    if isinstance(data, str):
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
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
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(prev, int) and part in _DISCRIMINATORS:
            pass  # the discriminated union's tag, not a key the user wrote
        elif isinstance(part, str) and part.startswith("function-"):
            pass
        else:
            out += f".{part}" if out else str(part)
        prev = part
    return out


def _issue_from_error(err: dict[str, Any]) -> ConfigIssue:
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


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate a configuration file. Relative paths inside are taken from the file's folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read the file: {exc.strerror}")], str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigIssue(where, f"not valid YAML: {problem}")], str(path)) from None
    cfg = parse_config(data, env, str(path))
    return resolve_paths(cfg, path.parent)


def resolve_paths(cfg: Config, base: Path) -> Config:
    """Make the file-relative paths of a configuration absolute."""

    def fix(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else (base / p).resolve()

    gateway = cfg.gateway.model_copy(update={"data_dir": fix(cfg.gateway.data_dir) or cfg.gateway.data_dir})
    models = [m.model_copy(update={"path": fix(m.path) or m.path}) for m in cfg.models]
    sources: list[Any] = []
    for s in cfg.sources:
        if isinstance(s, OpcUaSource):
            s = s.model_copy(update={k: fix(getattr(s, k)) for k in ("certificate", "private_key",
                                                                       "server_certificate")})
        sources.append(s)
    return cfg.model_copy(update={"gateway": gateway, "models": models, "sources": sources})
