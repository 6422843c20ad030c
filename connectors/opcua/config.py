"""The ``type: opcua`` source section (sample: ``sample.yaml`` next to this file).

    source = OpcUaSource.model_validate({"name": "line1", "type": "opcua",
                                         "endpoint": "opc.tcp://10.0.0.5:4840",
                                         "nodes": [{"node_id": "ns=2;s=Press1.Temperature", "alias": "/t"}]})

Validated by :func:`sitewise_edge.config.load_config` like every section: each issue names
its key path (``sources[0].nodes[2].node_id``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sitewise_edge.config import Aliased, Duration, SourceConfig, _Model, closed, resolve_path

ValueTypeName = Literal["double", "integer", "string", "boolean"]
Mode = Literal["subscribe", "poll"]
Timestamp = Literal["source", "server"]
SecurityPolicy = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss",
                         "Basic128Rsa15", "Basic256"]
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]
DEPRECATED_POLICIES = ("Basic128Rsa15", "Basic256")
"""SHA-1 policies, deprecated by OPC UA 1.04: refused unless ``allow_deprecated_policies: true``."""

PATH_FIELDS = ("certificate", "private_key", "server_certificate", "user_certificate", "user_private_key",
               "trust_list", "pki_dir")
"""The fields that name files or folders: relative paths are taken from the configuration file's folder."""

PKI_SUBDIR = Path("pki") / "opcua"
"""Under the gateway's data directory: the generated client certificate (own/) and the default trust list."""

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

_NODE_ID = re.compile(r"^(ns=\d+;)?[isgb]=.+$")


class OpcUaNode(_Model):
    node_id: str
    alias: str
    type: Annotated[ValueTypeName | None, closed("value type", ValueTypeName, optional=True)] = None
    """Force the stored value type (double, integer, string, boolean); default: from the OPC UA variant."""

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, v: str) -> str:
        if not _NODE_ID.match(v) and not v.startswith("nsu="):
            raise ValueError(f"malformed node id {v!r}; expected a form such as ns=2;s=Press1.Temperature or i=2258")
        return v


class OpcUaBrowse(_Model):
    """Browse-path selection (see ``browse.py``): variables under Objects that ``include`` matches and
    ``exclude`` does not; each one's alias is ``prefix`` + its browse path (``/Plant1/Line1/Press1/Speed``)."""

    include: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    prefix: str = ""
    """Put before every browse path to make the alias (SiteWise Edge's ``measurementDataStreamPrefix``)."""
    interval: Duration = 600.0
    """Browse again this often (and at every reconnect): new variables start flowing, vanished ones get
    one BAD row and a log line. 0: only at connect."""
    type: Annotated[ValueTypeName | None, closed("value type", ValueTypeName, optional=True)] = None
    """Force the stored value type of every browsed variable; default: from the OPC UA variant."""

    @field_validator("include", "exclude")
    @classmethod
    def _rules(cls, rules: list[str]) -> list[str]:
        from connectors.opcua.paths import parse_rule

        for rule in rules:
            parse_rule(rule)
        return rules

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return v.rstrip("/")


class OpcUaSource(SourceConfig):
    type: Literal["opcua"]
    endpoint: str
    nodes: list[OpcUaNode] = Field(default_factory=list)
    """Variables by node id (``ns=2;s=X``, ``i=2258``, ``nsu=<uri>;s=X``), each with its alias."""
    browse: OpcUaBrowse | None = None
    """Variables by browse path; with ``nodes``, a variable configured in both keeps its ``nodes`` alias."""
    mode: Annotated[Mode, closed("mode", Mode)] = "subscribe"
    """``subscribe`` (monitored items: report by exception) or ``poll`` (read every ``interval``)."""
    interval: Duration = 1.0
    """Publishing interval of the subscription, or the poll period."""
    timestamp: Annotated[Timestamp, closed("timestamp", Timestamp)] = "source"
    """``source`` (the device's timestamp) or ``server`` (the server's)."""
    timeout: Duration = 5.0
    """How long a request (and a connect) may take."""
    keepalive: Duration = 1.0
    """Probe the server this often (a read of its state, answered within ``keepalive``): a dead or hung
    session is noticed within 2 x ``keepalive`` even when no request is pending."""
    security_policy: Annotated[SecurityPolicy, closed("security policy", SecurityPolicy)] = "None"
    security_mode: Annotated[SecurityMode, closed("security mode", SecurityMode)] = "None"
    allow_deprecated_policies: bool = False
    """Basic128Rsa15 and Basic256 (SHA-1) are refused at load unless this is true."""
    certificate: Path | None = None
    """The gateway's client certificate (PEM or DER); without it (and ``private_key``) one is generated at
    the first start into ``<pki_dir>/own/`` and reused."""
    private_key: Path | None = None
    application_uri: str | None = None
    """The URI of the generated certificate (default ``urn:<host name>:sitewise-edge``); with ``certificate``,
    the URI in that certificate is presented (a different one here is refused at open)."""
    pki_dir: Path | None = None
    """Default: ``<gateway.data_dir>/pki/opcua`` (own/, and trusted/ and rejected/ of the default trust list)."""
    trust_list: Path | None = None
    """A folder with trusted/ and rejected/: a server certificate is accepted when trusted/ holds it (or the
    CA that issued it); an unknown one is copied to rejected/ and refused. Default ``<pki_dir>``."""
    server_certificate_sha256: str | None = None
    """Or: accept only the server certificate with this SHA-256 fingerprint (hex, colons allowed)."""
    server_certificate: Path | None = None
    """Or: accept only this server certificate (PEM or DER file)."""
    trust_any_server: bool = False
    """Or: accept any server certificate (logged as a warning). Never the default."""
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    user_certificate: Path | None = None
    """X.509 user identity: this certificate and ``user_private_key`` instead of a user name."""
    user_private_key: Path | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not v.startswith("opc.tcp://"):
            raise ValueError(f"endpoint {v!r} must start with opc.tcp://")
        return v

    @field_validator("keepalive", "timeout")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError(f"must be a positive duration, not {v:g}s")
        return v

    @model_validator(mode="after")
    def _selection(self) -> OpcUaSource:
        if not self.nodes and self.browse is None:
            raise ValueError("a source needs nodes (node ids with aliases) or browse (browse-path rules), or both")
        return self

    @field_validator("server_certificate_sha256")
    @classmethod
    def _fingerprint(cls, v: str | None) -> str | None:
        if v is None:
            return None
        hexed = re.sub(r"[\s:]", "", v).lower()
        if not _SHA256.match(hexed):
            raise ValueError(f"{v!r} is not a SHA-256 fingerprint (64 hex digits, colons allowed)")
        return hexed

    @model_validator(mode="after")
    def _security(self) -> OpcUaSource:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError("security_policy and security_mode must both be None or both be set")
        if self.security_policy in DEPRECATED_POLICIES and not self.allow_deprecated_policies:
            raise ValueError(f"security_policy {self.security_policy} is deprecated (SHA-1, broken since OPC UA "
                             "1.04): use Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss, or set "
                             "allow_deprecated_policies: true if the server offers nothing else")
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("certificate and private_key go together: give both, or neither to use the "
                             "certificate generated in the data directory")
        trust = [k for k in ("trust_list", "server_certificate_sha256", "server_certificate") if getattr(self, k)]
        if self.trust_any_server:
            trust.append("trust_any_server")
        if len(trust) > 1:
            raise ValueError(f"{' and '.join(trust)} exclude each other: say how the server certificate is "
                             "checked once")
        if (self.user_certificate is None) != (self.user_private_key is None):
            raise ValueError("user_certificate and user_private_key go together")
        if self.user_certificate is not None and self.username is not None:
            raise ValueError("username and user_certificate exclude each other: one user identity per source")
        if self.user_certificate is not None and self.security_policy == "None":
            raise ValueError("an X.509 user identity (user_certificate) needs a security_policy other than None: "
                             "its proof of possession is signed over the secure channel")
        if self.password is not None and self.username is None:
            raise ValueError("password without username")
        return self

    @property
    def identity(self) -> str:
        """``anonymous``, ``username`` or ``x509``: the user identity the source presents."""
        return "x509" if self.user_certificate else "username" if self.username else "anonymous"

    @property
    def pki_folder(self) -> Path:
        """Where the generated certificate lives (``pki_dir``, else ``./data/pki/opcua`` as the default data_dir)."""
        return self.pki_dir if self.pki_dir is not None else (Path("data") / PKI_SUBDIR).resolve()

    def aliased_items(self) -> tuple[str, Sequence[Aliased]]:
        return "nodes", self.nodes

    def with_data_dir(self, data_dir: Path) -> OpcUaSource:
        """``pki_dir`` defaults to ``<data_dir>/pki/opcua``."""
        return self if self.pki_dir is not None else self.model_copy(update={"pki_dir": data_dir / PKI_SUBDIR})

    def resolve_paths(self, base: Path) -> OpcUaSource:
        """The certificate and key files taken from ``base`` when relative; absolute ones stay as written."""
        update = {k: resolve_path(p, base) for k in PATH_FIELDS if (p := getattr(self, k)) is not None}
        return self.model_copy(update=update)
