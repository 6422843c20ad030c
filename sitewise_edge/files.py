"""Durable file writes shared by every component that keeps state on disk, and bounded JSON reading.

A file is replaced whole or not at all: written to a temporary file beside it, fsynced, renamed
over the old one, and the folder fsynced so the rename itself survives a power cut.

JSON from outside (a model file, a request body) is read with :func:`loads_bounded`: nesting deeper
than a limit, or a key written twice in one object, is a ``ValueError`` that says where, never a
``RecursionError`` deep inside a parser or a value silently replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MAX_JSON_DEPTH = 64
"""Default nesting limit of :func:`loads_bounded` (SiteWise documents nest about 8 deep)."""


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Replace ``path`` with ``data``: never a half-written file, durable on return. ``mode`` (less the umask)
    is the new file's from its creation on (``0o600`` for a private key: never readable by others, not even
    for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # one a crash left keeps its mode: the new file gets ``mode``
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: Path, data: Any, **dumps: Any) -> None:
    """Replace ``path`` with ``data`` as JSON (``dumps``: options of :func:`json.dumps`)."""
    write_bytes_atomic(path, json.dumps(data, **dumps).encode("utf-8"))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"the key {twice!r} is written twice in one object")
    return out


def json_depth(value: Any, stop_after: int | None = None) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (a scalar: 0), counted level by level
    (no recursion); past ``stop_after`` levels it stops counting."""
    depth = 0
    level: list[Any] = [value]
    while stop_after is None or depth <= stop_after:
        containers = [v for v in level if isinstance(v, dict | list)]
        if not containers:
            break
        depth += 1
        level = [c for v in containers for c in (v.values() if isinstance(v, dict) else v)]
    return depth


def loads_bounded(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses (``ValueError``, a ``json.JSONDecodeError`` for bad syntax) nesting deeper
    than ``max_depth`` and duplicate keys. A ``UnicodeDecodeError`` passes through for bytes not UTF-8."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError(f"nested deeper than {max_depth} levels") from None
    if json_depth(value, max_depth) > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels")
    return value
