"""Checks of single values, shared by the document loader and the control-plane operations.

Each ``*_problem`` function returns why a value is not valid (a message part such as ``alias is
2049 characters long; at most 2048 are allowed``) or None; the callers add where the value was.
:func:`expression_problems` compiles a model's transforms and metrics with the expression engine.
Pure functions: no I/O.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from asset_models.expressions import ExpressionError, VarInfo, compile_expression
from asset_models.model import MAX_ALIAS, AssetModel, PropertyKind

# Seeds uuid5 for ids a file leaves out, so that a restart gives the same ids.
ID_NAMESPACE = uuid.UUID("6f1c1d2e-3b7a-4c59-9a43-0d6a2f5e8b11")

ID_RE = re.compile(r"^(?!00000000-0000-0000-0000-000000000000)"
                   r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EXTERNAL_ID_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z_\-0-9.:]*[a-zA-Z0-9_]+$")
VARIABLE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def generated_id(*parts: str) -> str:
    """A stable UUID for an object a file gives no id: the same names give the same id on every start."""
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(parts)))


def is_id(value: Any) -> bool:
    """A SiteWise ``ID``: a lower-case UUID, not all zero."""
    return isinstance(value, str) and ID_RE.match(value) is not None


def is_external_id(value: Any) -> bool:
    """A SiteWise ``ExternalId``: 2-128 characters of letters, digits, ``_ - . :``."""
    return isinstance(value, str) and 2 <= len(value) <= 128 and EXTERNAL_ID_RE.match(value) is not None


def alias_problem(alias: Any) -> str | None:
    """Why ``alias`` is not a valid property alias (1–2048 characters, no control characters), or None."""
    if not isinstance(alias, str) or not alias:
        return f"alias must be a non-empty string, got {alias!r}"
    if len(alias) > MAX_ALIAS:
        return f"alias is {len(alias)} characters long; at most {MAX_ALIAS} are allowed"
    if _CONTROL_RE.search(alias):
        return f"alias {alias!r} contains a control character"
    return None


def text_problem(value: Any, what: str, *, max_len: int = 256) -> str | None:
    """Why ``value`` is not a valid SiteWise ``Name``-like string, or None."""
    if not isinstance(value, str) or not value:
        return f"{what} must be a non-empty string, got {value!r}"
    if len(value) > max_len:
        return f"{what} is longer than {max_len} characters"
    if _CONTROL_RE.search(value):
        return f"{what} {value!r} contains a control character"
    return None


def default_problem(default: str, data_type: str | None) -> str | None:
    """An attribute default must read as its data type (SiteWise stores defaults as strings)."""
    try:
        if data_type == "INTEGER":
            int(default)
        elif data_type == "DOUBLE":
            float(default)
        elif data_type == "BOOLEAN" and default not in ("true", "false"):
            raise ValueError(default)
    except ValueError:
        return f"defaultValue {default!r} is not a {data_type}"
    return None


def parse_date(value: Any) -> float | None:
    """A SiteWise timestamp as files hold it (epoch seconds, or ISO-8601 as the AWS CLI prints) -> epoch seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def expression_problems(model: AssetModel, models: Mapping[str, AssetModel], where: str) -> list[str]:
    """Compile every transform and metric of ``model`` with the expression engine; one line per failure.

    ``models`` (by id) holds the child models that hierarchy variables reach.
    """
    out: list[str] = []
    for prop in model.properties:
        if prop.kind not in (PropertyKind.TRANSFORM, PropertyKind.METRIC) or not prop.expression:
            continue
        variables: dict[str, VarInfo] = {}
        for var in prop.variables:
            target: AssetModel | None = model
            if var.hierarchy_id is not None:
                hierarchy = model.hierarchy(var.hierarchy_id)
                target = models.get(hierarchy.child_model_id) if hierarchy else None
            found = target.property(var.property_id) if target and var.property_id else None
            if found is None:
                continue  # reported by the reference checks
            variables[var.name] = VarInfo(variable_type(found.data_type),
                                          attribute=found.kind is PropertyKind.ATTRIBUTE,
                                          hierarchy=var.hierarchy_id is not None,
                                          metric=found.kind is PropertyKind.METRIC)
        kind: Literal["transform", "metric"] = "transform" if prop.kind is PropertyKind.TRANSFORM else "metric"
        output: Literal["DOUBLE", "STRING"] | None = (
            "DOUBLE" if prop.data_type == "DOUBLE" else "STRING" if prop.data_type == "STRING" else None)
        try:
            compile_expression(prop.expression, variables, kind, output_type=output)
        except ExpressionError as exc:
            out.append(f"{where} property '{prop.name}': expression: {exc}")
    return out


def variable_type(data_type: str) -> Literal["DOUBLE", "INTEGER", "BOOLEAN", "STRING"]:
    """The expression type of a property's data type (a STRUCT reads as a STRING)."""
    if data_type == "DOUBLE":
        return "DOUBLE"
    if data_type == "INTEGER":
        return "INTEGER"
    if data_type == "BOOLEAN":
        return "BOOLEAN"
    return "STRING"
