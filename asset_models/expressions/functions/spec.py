"""What the checker and the evaluator need to know about a function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..columns import OBJ, Col


class Family(Enum):
    COMMON = "common"
    COMPARISON = "comparison"
    CONDITIONAL = "conditional"
    STRING = "string"
    DATETIME = "date and time"
    PRETRIGGER = "temporal (transforms)"
    TEMPORAL = "temporal (metrics)"
    AGGREGATION = "aggregation"


@dataclass(frozen=True, slots=True)
class Spec:
    """One function: arity, family, and its implementations.

    ``row`` computes one row from row values (raising ``NoOutput``); ``vector`` computes a whole column when
    every argument is numeric; functions with neither are handled by the evaluator itself (``if``, temporal
    and aggregation functions, ``timestamp``, ``now``). ``out`` is the column kind ``row`` results form.
    """

    name: str
    family: Family
    min_args: int
    max_args: int | None  # None: any number
    row: Callable[..., Any] | None = None
    vector: Callable[..., Col] | None = None
    out: int = OBJ

    def arity_text(self) -> str:
        if self.max_args == self.min_args:
            n = self.min_args
            return f"{n} argument{'s' if n != 1 else ''}"
        if self.max_args is None:
            return f"at least {self.min_args} argument{'s' if self.min_args != 1 else ''}"
        return f"{self.min_args} to {self.max_args} arguments"
