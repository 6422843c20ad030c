"""Shared helpers: evaluate an expression over a few rows and read the result as plain Python values."""

from __future__ import annotations

from typing import Any

import numpy as np

from asset_models.expressions import VarInfo, compile_expression

NO = "<no output>"
CLOCK = 1_700_000_000.5


def infos(inputs: dict[str, list[Any]]) -> dict[str, VarInfo]:
    return {name: VarInfo("STRING" if any(isinstance(x, str) for x in vals) else "DOUBLE")
            for name, vals in inputs.items()}


def rows(text: str, output_type: Any = None, timestamps: list[int] | None = None, **inputs: list[Any]) -> list[Any]:
    """One output per row: a float, a str, or NO."""
    c = compile_expression(text, infos(inputs), "transform", output_type=output_type)
    n = len(next(iter(inputs.values()))) if inputs else (len(timestamps) if timestamps else 1)
    r = c.evaluate(inputs, n=n, clock=lambda: CLOCK, timestamps=timestamps)
    return [plain(v) if ok else NO for v, ok in zip(r.values, r.valid, strict=True)]


def one(text: str, output_type: Any = None, **scalars: Any) -> Any:
    """The output of a single row."""
    return rows(text, output_type, **{k: [v] for k, v in scalars.items()})[0]


def plain(v: Any) -> Any:
    if isinstance(v, np.floating | float):
        return float(v)
    return v
