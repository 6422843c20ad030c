"""Compile-time checks: name resolution, limits, function arity and placement, literal arguments.

Everything here raises :class:`ExpressionError` with the position of the offending token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from . import ast as A
from .errors import ExpressionError
from .functions import DATE_READERS, FUNCTIONS, Family, javafmt, jsonpath
from .parser import parse
from .timezones import UnknownZone, zone

MAX_LENGTH = 1024
MAX_VARIABLES = 10
MAX_CALLS = 10
CONSTANTS: dict[str, float | None] = {"pi": 3.141592653589793, "e": 2.718281828459045, "true": 1.0,
                                      "false": 0.0, "none": None}

Kind = Literal["transform", "metric"]
DataType = Literal["DOUBLE", "INTEGER", "BOOLEAN", "STRING"]


@dataclass(frozen=True, slots=True)
class VarInfo:
    """What the engine needs to know about a declared variable.

    ``data_type`` is the data type of the property it names; ``attribute`` marks an attribute (one current
    value, never triggers a transform); ``hierarchy`` a property of child assets reached through a hierarchy
    (metrics only, inside aggregation functions); ``metric`` a metric property (one value per window).
    """

    data_type: DataType = "DOUBLE"
    attribute: bool = False
    hierarchy: bool = False
    metric: bool = False

    @property
    def numeric(self) -> bool:
        return self.data_type != "STRING"


@dataclass(frozen=True, slots=True)
class Checked:
    tree: A.Node
    variables: tuple[str, ...]  # used, in order of first use
    calls: int


WINDOW_FUNCTIONS = frozenset(n for n, s in FUNCTIONS.items() if s.family in (Family.TEMPORAL, Family.AGGREGATION))


def check(text: str, variables: Mapping[str, VarInfo], kind: Kind) -> Checked:
    if kind not in ("transform", "metric"):
        raise ValueError(f"kind must be 'transform' or 'metric', not {kind!r}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(text, MAX_LENGTH, f"expression is {len(text)} characters long (limit {MAX_LENGTH})")
    if not text.strip():
        raise ExpressionError(text, 0, "empty expression")
    tree = _resolve(text, parse(text), variables)
    nodes = A.walk(tree)
    used = _first_uses([n for n in nodes if isinstance(n, A.Var)])
    if len(used) > MAX_VARIABLES:
        name, pos = list(used.items())[MAX_VARIABLES]
        raise ExpressionError(text, pos, f"more than {MAX_VARIABLES} variables: '{name}' is the "
                                         f"{MAX_VARIABLES + 1}th (limit {MAX_VARIABLES})")
    calls = sorted(n.pos for n in nodes if isinstance(n, A.Call) or (isinstance(n, A.Format) and n.call))
    if len(calls) > MAX_CALLS:
        raise ExpressionError(text, calls[MAX_CALLS], f"more than {MAX_CALLS} function calls (limit {MAX_CALLS})")
    _Checker(text, variables, kind).visit(tree, None)
    return Checked(tree, tuple(used), len(calls))


def _first_uses(vars_: list[A.Var]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in sorted(vars_, key=lambda v: v.pos):
        out.setdefault(v.name, v.pos)
    return out


def rebuild(node: A.Node, fn: Callable[[A.Node], A.Node]) -> A.Node:
    """``node`` with ``fn`` applied bottom-up to every sub-node."""
    match node:
        case A.Unary():
            node = dataclasses.replace(node, operand=rebuild(node.operand, fn))
        case A.Binary():
            node = dataclasses.replace(node, left=rebuild(node.left, fn), right=rebuild(node.right, fn))
        case A.Index():
            node = dataclasses.replace(node, target=rebuild(node.target, fn), index=rebuild(node.index, fn))
        case A.Slice():
            node = dataclasses.replace(
                node, target=rebuild(node.target, fn),
                start=None if node.start is None else rebuild(node.start, fn),
                stop=None if node.stop is None else rebuild(node.stop, fn),
                step=None if node.step is None else rebuild(node.step, fn))
        case A.Call():
            node = dataclasses.replace(node, args=tuple(rebuild(a, fn) for a in node.args))
        case A.Format():
            node = dataclasses.replace(node, expr=rebuild(node.expr, fn))
        case A.FString():
            node = dataclasses.replace(node, parts=tuple(rebuild(p, fn) for p in node.parts))
    return fn(node)


def _resolve(text: str, tree: A.Node, variables: Mapping[str, VarInfo]) -> A.Node:
    def resolve(node: A.Node) -> A.Node:
        if not isinstance(node, A.Name):
            return node
        if node.name in variables:
            return A.Var(node.name, node.pos)
        low = node.name.lower()
        if low in CONSTANTS:
            value = CONSTANTS[low]
            return A.NoneLit(node.pos) if value is None else A.Num(value, node.pos)
        declared = ", ".join(sorted(variables)) if variables else "none"
        raise ExpressionError(text, node.pos, f"unknown variable '{node.name}' (declared: {declared})")

    return rebuild(tree, resolve)


def bare_variables(node: A.Node) -> set[str]:
    """Variables used outside any temporal or aggregation call (their points, not a window value)."""
    if isinstance(node, A.Var):
        return {node.name}
    if isinstance(node, A.Call) and node.name in WINDOW_FUNCTIONS:
        return set()
    out: set[str] = set()
    for c in A.children(node):
        out |= bare_variables(c)
    return out


class _Checker:
    def __init__(self, text: str, variables: Mapping[str, VarInfo], kind: Kind) -> None:
        self.text = text
        self.variables = variables
        self.kind = kind

    def error(self, pos: int, message: str) -> ExpressionError:
        return ExpressionError(self.text, pos, message)

    def visit(self, node: A.Node, parent: A.Node | None, in_aggregate: bool = False) -> None:
        if isinstance(node, A.Var):
            self.variable(node, in_aggregate)
        elif isinstance(node, A.Call):
            self.call(node, parent)
            in_aggregate = in_aggregate or FUNCTIONS[node.name].family is Family.AGGREGATION
        elif isinstance(node, A.Format):
            self.format_spec(node)
        for c in A.children(node):
            self.visit(c, node, in_aggregate)

    def variable(self, node: A.Var, in_aggregate: bool) -> None:
        info = self.variables[node.name]
        if info.hierarchy and self.kind == "transform":
            raise self.error(node.pos, f"variable '{node.name}' comes from child assets (hierarchyId): "
                                       "only metrics can use it")
        if info.hierarchy and not in_aggregate:
            raise self.error(node.pos, f"variable '{node.name}' comes from child assets: use it inside an "
                                       f"aggregation function such as avg({node.name})")

    def call(self, node: A.Call, parent: A.Node | None) -> None:
        spec = FUNCTIONS.get(node.name)
        if spec is None:
            raise self.error(node.pos, f"unknown function '{node.name}'")
        n = len(node.args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            how = ", counting the value before '.'" if node.ufcs else ""
            raise self.error(node.pos, f"{node.name}() takes {spec.arity_text()} ({n} given{how})")
        if spec.family in (Family.AGGREGATION, Family.TEMPORAL) and self.kind != "metric":
            raise self.error(node.pos, f"{node.name}() is a metric function ({spec.family.value}): "
                                       "transforms can't use it")
        if spec.family is Family.PRETRIGGER and self.kind != "transform":
            raise self.error(node.pos, "pretrigger() can only be used in transforms")
        handler = getattr(self, "call_" + node.name, None)
        if handler is not None:
            handler(node, parent)
        if spec.family is Family.AGGREGATION:
            self.aggregation(node)
        elif spec.family is Family.TEMPORAL:
            self.temporal(node)

    # --- function-specific rules ------------------------------------------------------------------------
    def call_pretrigger(self, node: A.Call, parent: A.Node | None) -> None:
        arg = node.args[0]
        if not isinstance(arg, A.Var):
            raise self.error(_pos(arg), "pretrigger() takes a variable")
        if self.variables[arg.name].attribute:
            raise self.error(arg.pos, f"pretrigger() takes a measurement, transform or metric; '{arg.name}' "
                                      "is an attribute")

    def call_timestamp(self, node: A.Call, parent: A.Node | None) -> None:
        if not node.args:
            return
        if self.kind != "transform":
            raise self.error(node.pos, "timestamp(variable) can only be used in transforms; "
                                       "in a metric timestamp() is the end of the window")
        arg = node.args[0]
        if isinstance(arg, A.Var) or (isinstance(arg, A.Call) and arg.name == "pretrigger"):
            return
        raise self.error(_pos(arg), "timestamp() takes a variable or pretrigger(variable)")

    def _option(self, node: A.Call, allowed: tuple[str, ...], what: str) -> None:
        if len(node.args) < 2:
            return
        option = node.args[1]
        choices = " or ".join(f"'{a}'" for a in allowed)
        if not isinstance(option, A.Str):
            raise self.error(_pos(option), f"the {what} of {node.name}() must be a string literal: {choices}")
        if option.value.lower() not in allowed:
            raise self.error(option.pos, f"unknown {what} '{option.value}' for {node.name}(): use {choices}")

    def call_timeweightedavg(self, node: A.Call, parent: A.Node | None) -> None:
        self._option(node, ("locf", "linear"), "interpolation")

    def call_timeweightedstdev(self, node: A.Call, parent: A.Node | None) -> None:
        self._option(node, ("f", "p"), "algorithm")

    def call_jp(self, node: A.Call, parent: A.Node | None) -> None:
        path = node.args[1]
        if not isinstance(path, A.Str):
            raise self.error(_pos(path), "the JsonPath of jp() must be a string literal such as '$.value'")
        try:
            jsonpath.compile_path(path.value)
        except jsonpath.PathError as e:
            raise self.error(path.pos + 1 + e.offset, e.message) from None

    def call_format(self, node: A.Call, parent: A.Node | None) -> None:
        fmt = node.args[0]
        if isinstance(fmt, A.Str):
            self.format_string(fmt.value, fmt.pos + 1, len(node.args) - 1)

    def format_spec(self, node: A.Format) -> None:
        if node.spec is not None:
            fmt = node.spec if "%" in node.spec else "%" + node.spec
            try:
                self.format_string(fmt, node.pos, 1)
            except ExpressionError as e:  # the spec has no position of its own: point at the field
                raise self.error(node.pos, e.message) from None

    def format_string(self, fmt: str, pos: int, given: int) -> None:
        try:
            fields = javafmt.parse(fmt)
        except javafmt.FormatError as e:
            raise self.error(pos + e.offset, e.message) from None
        need = javafmt.needed_args(fields)
        if need > given:
            raise self.error(pos, f"the format needs {need} argument{'s' if need != 1 else ''} ({given} given)")

    def time_zone(self, node: A.Node) -> None:
        if isinstance(node, A.Str):
            try:
                zone(node.value)
            except UnknownZone as e:
                raise self.error(node.pos, str(e)) from None

    def call_mktime(self, node: A.Call, parent: A.Node | None) -> None:
        first, last = node.args[0], node.args[-1]
        zoned = isinstance(first, A.Str) or isinstance(last, A.Str)
        if isinstance(first, A.Str):
            self.time_zone(first)
        elif isinstance(last, A.Str):
            self.time_zone(last)
        if len(node.args) == 8 and not zoned:
            raise self.error(node.pos, "mktime() takes a time zone and at most 6 numbers")

    def call_localtime(self, node: A.Call, parent: A.Node | None) -> None:
        if len(node.args) == 2:
            self.time_zone(node.args[1])
        if not (isinstance(parent, A.Call) and parent.name in DATE_READERS and parent.args[0] is node):
            readers = ", ".join(f"{r}()" for r in sorted(DATE_READERS))
            raise self.error(node.pos, f"localtime() can only be passed to {readers}")

    def _reader(self, node: A.Call, parent: A.Node | None) -> None:
        arg = node.args[0]
        if not (isinstance(arg, A.Call) and arg.name == "localtime"):
            raise self.error(_pos(arg), f"{node.name}() takes localtime(time, time_zone)")

    call_year = call_mon = call_mday = call_wday = call_yday = call_hour = call_minute = call_sec = _reader

    def aggregation(self, node: A.Call) -> None:
        for arg in node.args:
            names = bare_variables(arg)
            if len(names) > 1:
                raise self.error(_pos(arg), f"each argument of {node.name}() can use only one variable (found "
                                            f"{', '.join(sorted(names))}); aggregate them separately, for "
                                            f"example {node.name}(x) / {node.name}(y)")

    def temporal(self, node: A.Call) -> None:
        arg = node.args[0]
        inner = A.walk(arg)
        for n in inner:
            if isinstance(n, A.Call) and n.name in WINDOW_FUNCTIONS:
                raise self.error(n.pos, f"the argument of {node.name}() can't contain {n.name}()")
        names = {n.name for n in inner if isinstance(n, A.Var)}
        if len(names) != 1:
            raise self.error(_pos(arg), f"the argument of {node.name}() must use exactly one variable")
        name = names.pop()
        info = self.variables[name]
        if info.hierarchy or info.attribute:
            what = "a property of child assets" if info.hierarchy else "an attribute"
            raise self.error(_pos(arg), f"{node.name}() takes a property of this asset; '{name}' is {what}")
        if node.name == "statetime" and info.metric:
            raise self.error(_pos(arg), f"statetime() can't take a metric ('{name}')")


def _pos(node: A.Node) -> int:
    """Position of the leftmost character of ``node`` (binary operators store the operator's position)."""
    return min(n.pos for n in A.walk(node))
