"""Which botocore ``iotsitewise`` operation a request is, so an operation the gateway does not serve says so.

    operation_for("PUT", "/asset-models/0b4e...")     # -> "UpdateAssetModel"
    not_supported("PUT", "/asset-models/0b4e...")     # -> ApiError("NotImplementedException", ...) or None

A request that no route answers but that is one of SiteWise's operations (by method and URI
template of botocore's service model) is answered 501 ``NotImplementedException`` naming the
operation, so a script learns "this gateway does not do DescribeGateway" rather than "not
found". Anything else stays 404. :func:`operations` also lists every operation of the model,
for the README's table (``python -m api.operations_table``, checked by ``tests/api/test_unserved.py``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import botocore.loaders

from sitewise_edge.errors import ApiError

_PLACEHOLDER = re.compile(r"\{([^}+]+)(\+?)\}")


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    method: str
    uri: str  # botocore's requestUri, without its query part
    host_prefix: str
    pattern: re.Pattern[str]


def _pattern(uri: str) -> re.Pattern[str]:
    parts, end = [], 0
    for m in _PLACEHOLDER.finditer(uri):
        parts += [re.escape(uri[end:m.start()]), ".+" if m.group(2) else "[^/]+"]
        end = m.end()
    parts.append(re.escape(uri[end:].rstrip("/")))
    return re.compile("".join(parts) + "/?")


@functools.cache
def operations() -> tuple[Operation, ...]:
    """Every operation of the installed botocore ``iotsitewise`` model, literal URIs before templates."""
    model = botocore.loaders.Loader().load_service_model("iotsitewise", "service-2")
    out = []
    for name, op in model["operations"].items():
        uri = op["http"]["requestUri"].split("?", 1)[0]
        out.append(Operation(name, op["http"]["method"], uri, op.get("endpoint", {}).get("hostPrefix", ""),
                             _pattern(uri)))
    return tuple(sorted(out, key=lambda o: (o.uri.count("{"), -len(o.uri), o.name)))


def operation_for(method: str, path: str) -> str | None:
    """The operation ``method path`` is in SiteWise's API, or None."""
    return next((o.name for o in operations() if o.method == method and o.pattern.fullmatch(path)), None)


def not_supported(method: str, path: str) -> ApiError | None:
    """The 501 answer for a SiteWise operation that no route serves (None: not a SiteWise operation)."""
    name = operation_for(method, path)
    if name is None:
        return None
    return ApiError("NotImplementedException", f"{name} is not supported by this sitewise-edge gateway "
                    f"({method} {path}); the README lists the operations it serves")


def table(served: set[str]) -> str:
    """The README's Markdown table: every operation of the model, served or not."""
    lines = ["| Operation | HTTP | Served |", "| --- | --- | --- |"]
    for op in sorted(operations(), key=lambda o: o.name):
        lines.append(f"| `{op.name}` | `{op.method} {op.uri}` | {'yes' if op.name in served else 'no (501)'} |")
    return "\n".join(lines)
