"""The public entry points: :func:`compile_expression` and :class:`Compiled`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np

from sitewise_edge.clock import NS_PER_S

from . import ast as A
from . import values as V
from .check import Kind, VarInfo, check
from .columns import OBJ, Col, clean, floats, full
from .evaluate import Compiler, Ctx, Fn, WindowState
from .inputs import ArrayLike, Column, Result, Series, SeriesData, to_col, to_series

OutputType = Literal["DOUBLE", "STRING"] | None


class Compiled:
    """A checked expression, compiled once, evaluated over many rows at a time.

    Attributes: ``text``, ``kind`` ("transform" or "metric"), ``variables`` (the variables it uses, in
    order of first use), ``calls`` (function calls, at most 10), ``output_type``.
    """

    def __init__(self, text: str, kind: Kind, tree: A.Node, variables: tuple[str, ...], calls: int,
                 infos: Mapping[str, VarInfo], output_type: OutputType, fn: Fn) -> None:
        self.text = text
        self.kind = kind
        self.tree = tree
        self.variables = variables
        self.calls = calls
        self.output_type = output_type
        self._infos = {name: infos[name] for name in variables}
        self._fn = fn
        direct, self._pre, self._ts, self._pre_ts = _uses(tree)
        self._direct = tuple(sorted(direct))

    def __repr__(self) -> str:
        return f"Compiled({self.text!r}, kind={self.kind!r})"

    def evaluate(self, inputs: Mapping[str, Column | ArrayLike], *, timestamps: ArrayLike | None = None,
                 clock: Callable[[], float] | None = None,
                 pretrigger: Mapping[str, Column | ArrayLike] | None = None,
                 var_timestamps: Mapping[str, Column | ArrayLike] | None = None,
                 pretrigger_timestamps: Mapping[str, Column | ArrayLike] | None = None,
                 n: int | None = None) -> Result:
        """Evaluate a transform at ``n`` trigger points (rows).

        - ``inputs``: per variable, its value at each row (the triggering value, or the latest GOOD value at
          or before the trigger's timestamp): an array of ``n`` values, or a :class:`Column` whose ``valid``
          marks the rows where the variable has a value.
        - ``timestamps``: int64 epoch nanoseconds of the rows (``timestamp()``; also gives ``n``).
        - ``clock``: returns epoch seconds for ``now()``.
        - ``pretrigger``: per variable, the GOOD value before the triggering update (``pretrigger(v)``).
        - ``var_timestamps`` / ``pretrigger_timestamps``: per variable, int64 epoch nanoseconds of its latest
          GOOD value / of its pretrigger value (``timestamp(v)``, ``timestamp(pretrigger(v))``).

        Only what the expression uses is required; a missing one raises ``ValueError``.
        """
        if self.kind != "transform":
            raise ValueError("a metric is evaluated with evaluate_windows()")
        rows = _row_count(n, timestamps, inputs, pretrigger, var_timestamps, pretrigger_timestamps)
        seconds = None if timestamps is None else _seconds(timestamps, rows, "timestamps")
        env = {name: self._input(inputs, name, rows, "inputs") for name in self._direct}
        ctx = Ctx(rows, env, seconds, clock)
        if self._pre:
            ctx.pre = {name: self._input(pretrigger, name, rows, "pretrigger") for name in self._pre}
        if self._ts:
            ctx.var_ts = {name: _ts_col(var_timestamps, name, rows, "var_timestamps") for name in self._ts}
        if self._pre_ts:
            ctx.pre_ts = {name: _ts_col(pretrigger_timestamps, name, rows, "pretrigger_timestamps")
                          for name in self._pre_ts}
        return self._run(ctx)

    def evaluate_windows(self, window_inputs: Mapping[str, Series | Column | ArrayLike],
                         window_end_ns: ArrayLike, *, interval_ns: int,
                         clock: Callable[[], float] | None = None) -> Result:
        """Evaluate a metric over ``W`` windows ``(end - interval_ns, end]`` (one row per window).

        ``window_inputs`` gives each variable as a :class:`Series` (its points per window, CSR) or as one
        value per window (array or :class:`Column`): see :mod:`.inputs`. ``timestamp()`` is the window end.
        """
        if self.kind != "metric":
            raise ValueError("a transform is evaluated with evaluate()")
        ends = np.asarray(window_end_ns, dtype=np.int64)
        w = ends.shape[0]
        per_window: dict[str, Col] = {}
        series: dict[str, SeriesData] = {}
        for name in self.variables:
            if name not in window_inputs:
                raise ValueError(f"window_inputs: missing variable '{name}'")
            data = window_inputs[name]
            numeric = self._infos[name].numeric
            if isinstance(data, Series):
                series[name] = to_series(data, numeric, w, f"window_inputs['{name}']")
            else:
                per_window[name] = to_col(data, numeric, w, f"window_inputs['{name}']")
        ctx = Ctx(w, {}, ends / NS_PER_S, clock)
        ctx.win = WindowState(w, per_window, series, ends, int(interval_ns), ctx)
        return self._run(ctx)

    def _input(self, table: Mapping[str, Column | ArrayLike] | None, name: str, n: int, what: str) -> Col:
        if table is None or name not in table:
            raise ValueError(f"{what}: missing variable '{name}'")
        data = table[name]
        if type(data) is np.ndarray and data.dtype == np.float64 and data.shape == (n,):
            return Col(data)  # the common case, without conversion
        return to_col(data, self._infos[name].numeric, n, f"{what}['{name}']")

    def _run(self, ctx: Ctx) -> Result:
        with np.errstate(all="ignore"):
            col = self._fn(ctx)
        return finish(col, ctx.n, self.output_type)


def compile_expression(text: str, variables: Mapping[str, VarInfo], kind: Kind = "transform", *,
                       output_type: OutputType = None) -> Compiled:
    """Check and compile ``text``; raises :class:`ExpressionError` pointing into it.

    ``variables`` declares every variable name the expression may use. ``output_type`` is the data type of
    the property the formula feeds: "DOUBLE" drops text results, "STRING" renders numbers as text, None
    keeps either.
    """
    checked = check(text, variables, kind)
    fn = Compiler(variables, kind).compile(checked.tree)
    return Compiled(text, kind, checked.tree, checked.variables, checked.calls, variables, output_type, fn)


def finish(col: Col, n: int, output_type: OutputType) -> Result:
    """The result of a formula: finite numbers or strings of at most 1,024 characters."""
    if col.kind != OBJ and output_type != "STRING":
        v = np.asarray(floats(col), dtype=np.float64)
        if v.shape != (n,):
            v = np.broadcast_to(v, (n,)).copy()
        fin = np.isfinite(v)  # always: a NaN input passed through is no output either
        ok = fin if col.ok is None else fin & col.ok  # a new array
        return Result(v, ok)
    c = clean(col)
    ok = np.array(full(c.ok, n, True), dtype=bool)
    vals = np.broadcast_to(np.asarray(c.v, dtype=object if c.kind == OBJ else np.float64), (n,))
    out = np.empty(n, object)
    for i in np.flatnonzero(ok).tolist():
        try:
            out[i] = V.final(_plain(vals[i]), output_type)
        except V.NoOutput:
            ok[i] = False
    if output_type == "DOUBLE" or (output_type is None and not any(isinstance(x, str) for x in out[ok])):
        return Result(np.array([np.nan if x is None else x for x in out], dtype=np.float64), ok)
    return Result(out, ok)


def _plain(v: object) -> V.Value:
    return float(v) if isinstance(v, np.floating | np.bool_ | bool) else v


def _row_count(n: int | None, timestamps: ArrayLike | None,
               *tables: Mapping[str, Column | ArrayLike] | None) -> int:
    """``n``, else the length of the timestamps or of any input given, else 1 (a constant formula)."""
    if n is not None:
        return n
    if timestamps is not None:
        return len(timestamps)
    for table in tables:
        for data in (table or {}).values():
            return len(data.values if isinstance(data, Column) else data)
    return 1


def _seconds(ts: ArrayLike, n: int, what: str) -> np.ndarray:
    arr = np.asarray(ts, dtype=np.int64)
    if arr.shape != (n,):
        raise ValueError(f"{what}: expected {n} timestamps, got shape {arr.shape}")
    return arr / NS_PER_S


def _ts_col(table: Mapping[str, Column | ArrayLike] | None, name: str, n: int, what: str) -> Col:
    if table is None or name not in table:
        raise ValueError(f"{what}: missing variable '{name}'")
    data = table[name]
    valid = None
    if isinstance(data, Column):
        valid = data.valid
        data = data.values
    col = to_col(Column(_seconds(data, n, f"{what}['{name}']"), valid), True, n, what)
    return col


def _uses(tree: A.Node) -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """Variables read directly, through pretrigger(), timestamp(v) and timestamp(pretrigger(v))."""
    direct: set[str] = set()
    pre: set[str] = set()
    ts: set[str] = set()
    pre_ts: set[str] = set()

    def visit(node: A.Node) -> None:
        if isinstance(node, A.Var):
            direct.add(node.name)
            return
        if isinstance(node, A.Call) and node.name == "pretrigger" and isinstance(node.args[0], A.Var):
            pre.add(node.args[0].name)
            return
        if isinstance(node, A.Call) and node.name == "timestamp" and node.args:
            arg = node.args[0]
            if isinstance(arg, A.Var):
                ts.add(arg.name)
            elif isinstance(arg, A.Call) and isinstance(arg.args[0], A.Var):
                pre_ts.add(arg.args[0].name)
            return
        for c in A.children(node):
            visit(c)

    visit(tree)
    return frozenset(direct), frozenset(pre), frozenset(ts), frozenset(pre_ts)
