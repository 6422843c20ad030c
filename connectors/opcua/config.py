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
SecurityPolicy = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]

PATH_FIELDS = ("certificate", "private_key", "server_certificate")
"""The fields that name files: relative paths are taken from the configuration file's folder."""

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

    @model_validator(mode="after")
    def _security(self) -> OpcUaSource:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError("security_policy and security_mode must both be None or both be set")
        if self.security_policy != "None" and not (self.certificate and self.private_key):
            raise ValueError(f"security policy {self.security_policy} needs certificate and private_key")
        return self

    def aliased_items(self) -> tuple[str, Sequence[Aliased]]:
        return "nodes", self.nodes

    def resolve_paths(self, base: Path) -> OpcUaSource:
        """The certificate and key files taken from ``base`` when relative; absolute ones stay as written."""
        update = {k: resolve_path(p, base) for k in PATH_FIELDS if (p := getattr(self, k)) is not None}
        return self.model_copy(update=update)
