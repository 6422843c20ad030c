"""Durable file writes shared by every component that keeps state on disk.

A file is replaced whole or not at all: written to a temporary file beside it, fsynced, renamed
over the old one, and the folder fsynced so the rename itself survives a power cut.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: never a half-written file, durable on return."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
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
