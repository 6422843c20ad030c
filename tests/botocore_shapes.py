"""Check JSON bodies against botocore's ``iotsitewise`` service model, the spec of the wire format.

Two checks, because botocore's parser is lenient (it drops unknown members and never
enforces ``required``): :func:`shape_problems` walks a shape recursively and lists every
missing required member, unknown member, wrong type, enum or length violation; and
:func:`assert_valid_output` also runs the body through botocore's own REST-JSON parser, as
a boto3 client would.

    parsed = assert_valid_output("DescribeAsset", registry.describe_asset(asset_id))
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape
from botocore.parsers import RestJSONParser
from botocore.validate import ParamValidator

SERVICE = "iotsitewise"


@functools.lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model(SERVICE)


def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


def shape_problems(shape: Shape, value: Any, path: str = "$", *, body_only: bool = True) -> list[str]:
    """Every way ``value`` differs from ``shape``, one line each with a JSON path; empty when it conforms.

    With ``body_only`` (the top level of an HTTP body), members bound to headers, the URI or
    the query string are neither required nor allowed in ``value``.
    """
    problems: list[str] = []
    _walk(shape, value, path, problems, body_only)
    return problems


def _walk(shape: Shape, value: Any, path: str, out: list[str], body_only: bool = False) -> None:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            out.append(f"{path}: expected an object ({shape.name}), got {type(value).__name__}")
            return
        members = {n: s for n, s in shape.members.items()
                   if not (body_only and s.serialization.get("location"))}
        for name in shape.required_members:
            if name in members and name not in value:
                out.append(f"{path}: missing required member {name!r} of {shape.name}")
        for name, item in value.items():
            if name not in members:
                out.append(f"{path}: unknown member {name!r} for {shape.name}")
            elif item is not None:
                _walk(members[name], item, f"{path}.{name}", out)
    elif kind == "list":
        if not isinstance(value, list):
            out.append(f"{path}: expected a list ({shape.name}), got {type(value).__name__}")
            return
        _check_length(shape, len(value), path, out)
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]", out)  # type: ignore[attr-defined]
    elif kind == "map":
        if not isinstance(value, dict):
            out.append(f"{path}: expected an object ({shape.name}), got {type(value).__name__}")
            return
        for key, item in value.items():
            _walk(shape.key, key, f"{path}.<key {key!r}>", out)  # type: ignore[attr-defined]
            _walk(shape.value, item, f"{path}.{key}", out)  # type: ignore[attr-defined]
    elif kind == "string":
        if not isinstance(value, str):
            out.append(f"{path}: expected a string ({shape.name}), got {value!r}")
            return
        if shape.enum and value not in shape.enum:
            out.append(f"{path}: {value!r} is not one of {shape.enum} ({shape.name})")
        _check_length(shape, len(value), path, out)
        pattern = _pattern(shape.metadata.get("pattern"))
        if pattern is not None and pattern.search(value) is None:
            out.append(f"{path}: {value!r} does not match the pattern {pattern.pattern!r} of {shape.name}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(f"{path}: expected an integer ({shape.name}), got {value!r}")
        else:
            _check_range(shape, value, path, out)
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            out.append(f"{path}: expected a number ({shape.name}), got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            out.append(f"{path}: expected true or false ({shape.name}), got {value!r}")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            out.append(f"{path}: expected epoch seconds or an ISO-8601 string ({shape.name}), got {value!r}")


@functools.lru_cache(maxsize=256)
def _pattern(source: str | None) -> re.Pattern[str] | None:
    """The model's (Java) pattern compiled for Python; None where Python cannot read it."""
    if not source:
        return None
    try:
        return re.compile(source)
    except re.error:
        return None


def _check_length(shape: Shape, length: int, path: str, out: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and length < low) or (high is not None and length > high):
        out.append(f"{path}: length {length} is outside {low}..{high} ({shape.name})")


def _check_range(shape: Shape, value: int, path: str, out: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        out.append(f"{path}: {value} is outside {low}..{high} ({shape.name})")


def parse_output(operation_name: str, body: dict[str, Any], status: int = 200,
                 headers: dict[str, str] | None = None) -> dict[str, Any]:
    """``body`` as a boto3 client would see it: serialised to JSON and parsed by botocore."""
    response = {"status_code": status, "headers": headers or {}, "body": json.dumps(body).encode()}
    return RestJSONParser().parse(response, operation(operation_name).output_shape)


def assert_valid_output(operation_name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Fail with every problem if ``body`` is not a valid response of the operation; return it parsed."""
    shape = operation(operation_name).output_shape
    assert shape is not None, f"{operation_name} has no output shape"
    problems = shape_problems(shape, body)
    assert not problems, f"{operation_name} response does not match the service model:\n" + "\n".join(problems)
    parsed = parse_output(operation_name, body)
    missing = set(body) - set(parsed)
    assert not missing, f"botocore dropped members {sorted(missing)} of the {operation_name} response"
    return parsed


def input_problems(operation_name: str, params: dict[str, Any]) -> str:
    """botocore's client-side validation report for request ``params`` (empty when valid)."""
    shape = operation(operation_name).input_shape
    return ParamValidator().validate(params, shape).generate_report()
