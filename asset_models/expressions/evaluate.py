"""Compile a checked tree into numpy closures, and evaluate them over columns of rows.

Each node becomes a function ``Ctx -> Col``. Numbers flow through numpy ufuncs with validity masks
(:mod:`.columns`); strings, JSON, dates and mixed types take the per-row path (:func:`columns.map_rows`).
Sub-expressions without variables or context (``9/5``) are folded to constants at compile time.

One module over 500 lines on purpose: it is one dispatch from node kind to closure (operators, calls,
conditionals, temporal functions), and the closures share the compile context; split, each part would import
the others back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import ast as A
from . import values as V
from .check import VarInfo, bare_variables
from .columns import (
    BOOL,
    NUM,
    OBJ,
    Col,
    and_masks,
    clean,
    constant_none,
    constant_value,
    floats,
    full,
    map_rows,
    objects,
    take,
)
from .functions import FUNCTIONS, Family, javafmt
from .inputs import SeriesData
from .windows import aggregate, partial, pick, positive, statetime, time_weighted

Fn = Callable[["Ctx"], Col]

_UFUNCS: dict[str, Any] = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "%": np.fmod,
                           "^": np.power}
_COMPARE: dict[str, Any] = {"<": np.less, ">": np.greater, "<=": np.less_equal, ">=": np.greater_equal,
                            "==": np.equal, "!=": np.not_equal}
_EMPTY: dict[str, Col] = {}  # shared, never written
_CONTEXT_CALLS = frozenset({"now", "timestamp", "pretrigger"}) | frozenset(
    n for n, s in FUNCTIONS.items() if s.family in (Family.TEMPORAL, Family.AGGREGATION))


class Ctx:
    """What one evaluation sees: ``n`` rows and where variables and times come from.

    Transforms fill ``env`` with every variable. A metric evaluates at the window level (``rows`` None,
    ``env`` filled lazily with each variable's last value in the window) and, inside aggregation and
    temporal functions, at the point level of one variable (``rows``: the window of each point).
    """

    __slots__ = ("clock", "env", "n", "pre", "pre_ts", "rows", "seconds", "var_ts", "win")

    def __init__(self, n: int, env: dict[str, Col], seconds: np.ndarray | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.n = n
        self.env = env
        self.seconds = seconds
        self.clock = clock
        self.pre: dict[str, Col] = _EMPTY
        self.pre_ts: dict[str, Col] = _EMPTY
        self.var_ts: dict[str, Col] = _EMPTY
        self.win: WindowState | None = None
        self.rows: np.ndarray | None = None

    def var(self, name: str) -> Col:
        c = self.env.get(name)
        if c is None:
            if self.win is None:
                raise ValueError(f"no input for variable '{name}'")
            c = self.env[name] = self.win.last_value(name)
        return c

    def timestamp(self) -> Col:
        if self.seconds is None:
            raise ValueError("timestamp() needs the timestamps of the rows")
        return Col(self.seconds)

    def now(self) -> Col:
        if self.clock is None:
            raise ValueError("now() needs a clock")
        return Col(float(self.clock()))

    def lookup(self, table: dict[str, Col], name: str, what: str) -> Col:
        c = table.get(name)
        if c is None:
            raise ValueError(f"{what}({name}) needs its input")
        return c


class WindowState:
    """The inputs of one metric evaluation: per-window values and CSR series, with cached point views."""

    def __init__(self, w: int, per_window: dict[str, Col], series: dict[str, SeriesData], ends: np.ndarray,
                 interval: int, ctx: Ctx) -> None:
        self.w = w
        self.per_window = per_window
        self.series = series
        self.ends = ends
        self.interval = interval
        self.ctx = ctx
        self._points: dict[str, Ctx] = {}

    def last_value(self, name: str) -> Col:
        if name in self.per_window:
            return self.per_window[name]
        s = self.series[name]
        return pick(s.points, s.offsets, last=True)

    def points(self, name: str) -> tuple[Ctx, np.ndarray]:
        """A point-level context over the points of ``name``, and the CSR offsets of its windows."""
        ctx = self._points.get(name)
        if ctx is None:
            if name in self.per_window:
                col, rows = self.per_window[name], np.arange(self.w, dtype=np.int64)
            else:
                s = self.series[name]
                col, rows = s.points, s.rows
            ctx = Ctx(rows.shape[0], {name: col}, self.ctx.seconds[rows] if self.ctx.seconds is not None else None,
                      self.ctx.clock)
            ctx.win, ctx.rows = self, rows
            self._points[name] = ctx
        return ctx, self.offsets(name)

    def offsets(self, name: str) -> np.ndarray:
        if name in self.per_window:
            return np.arange(self.w + 1, dtype=np.int64)
        return self.series[name].offsets

    def substituted(self, name: str, col: Col) -> Ctx:
        """A window-level context where ``name`` is ``col`` (``prior`` or ``earliest`` values)."""
        ctx = Ctx(self.w, {name: col}, self.ctx.seconds, self.ctx.clock)
        ctx.win = self
        return ctx


class Compiler:
    def __init__(self, variables: Mapping[str, VarInfo], kind: str) -> None:
        self.variables = variables
        self.kind = kind

    def compile(self, node: A.Node) -> Fn:
        fn = self._compile(node)
        if not isinstance(node, A.Num | A.Str | A.Var | A.NoneLit) and _foldable(node):
            has_value, value = constant_value(_run_constant(fn))
            if has_value and isinstance(value, float | str):
                const = Col(value, None, None, NUM if isinstance(value, float) else OBJ)
                return lambda ctx: const
        return fn

    def _compile(self, node: A.Node) -> Fn:
        match node:
            case A.Num(value=x):
                c = Col(float(x))
                return lambda ctx: c
            case A.Str(value=s):
                cs = Col(s, None, None, OBJ)
                return lambda ctx: cs
            case A.NoneLit():
                return lambda ctx: constant_none(ctx.n)
            case A.Var(name=name):
                return lambda ctx: ctx.var(name)
            case A.Unary():
                return self.unary(node)
            case A.Binary():
                return self.binary(node)
            case A.Index():
                target, index = self.compile(node.target), self.compile(node.index)
                return lambda ctx: map_rows(V.index, [target(ctx), index(ctx)], ctx.n)
            case A.Slice():
                return self.slice(node)
            case A.Call():
                return self.call(node)
            case A.Format():
                return self.format(node)
            case A.FString():
                parts = [self.compile(p) for p in node.parts]

                def fstring(ctx: Ctx) -> Col:
                    return map_rows(_concat, [p(ctx) for p in parts], ctx.n)

                return fstring
        raise TypeError(f"cannot compile {type(node).__name__}")  # pragma: no cover - the checker resolves names

    # --- operators -----------------------------------------------------------------------------------
    def unary(self, node: A.Unary) -> Fn:
        operand = self.compile(node.operand)
        if node.op == "-":
            def negate(ctx: Ctx) -> Col:
                c = operand(ctx)
                if c.kind != OBJ:
                    return Col(-floats(c), c.ok, None, NUM, c.dirty)
                return map_rows(V.neg, [c], ctx.n, NUM)
            return negate

        def not_(ctx: Ctx) -> Col:
            c = clean(operand(ctx))
            if c.kind == OBJ:
                return map_rows(V.not_, [c], ctx.n, NUM)
            f = _falsy(c)
            return Col(f, _with_none(c), None, BOOL)
        return not_

    def binary(self, node: A.Binary) -> Fn:
        left, right = self.compile(node.left), self.compile(node.right)
        op = node.op
        if op in ("and", "or"):
            return _logical(op, left, right)
        if op in _COMPARE:
            ufunc = _COMPARE[op]
            row = V.BINARY[op]

            def compare(ctx: Ctx) -> Col:
                a, b = left(ctx), right(ctx)
                if a.kind != OBJ and b.kind != OBJ:
                    a, b = clean(a), clean(b)
                    return Col(ufunc(floats(a), floats(b)), and_masks(a.ok, b.ok), None, BOOL)
                return map_rows(row, [a, b], ctx.n, NUM)
            return compare
        ufunc = _UFUNCS[op]
        row = V.BINARY[op]
        out = OBJ if op == "+" else NUM
        clean_left = op == "^"
        clean_right = op in "/%^"
        constant = _constant_number(node.right, right)
        if constant is not None and not clean_left:
            k = constant  # the hot path: ``9/5 * t + 32`` is two of these

            def arithmetic_constant(ctx: Ctx) -> Col:
                a = left(ctx)
                if a.kind == NUM:
                    return Col(ufunc(a.v, k), a.ok, None, NUM, True)
                if a.kind == BOOL:
                    return Col(ufunc(floats(a), k), a.ok, None, NUM, True)
                return map_rows(row, [a, Col(k)], ctx.n, out)
            return arithmetic_constant

        constant = _constant_number(node.left, left)
        if constant is not None:
            k = constant  # ``9/5 * t``: the folded 1.8 on the left

            def constant_arithmetic(ctx: Ctx) -> Col:
                b = right(ctx)
                if b.kind != OBJ:
                    if clean_right and b.dirty:
                        b = clean(b)
                    return Col(ufunc(k, b.v if b.kind == NUM else floats(b)), b.ok, None, NUM, True)
                return map_rows(row, [Col(k), b], ctx.n, out)
            return constant_arithmetic

        def arithmetic(ctx: Ctx) -> Col:
            a, b = left(ctx), right(ctx)
            if a.kind != OBJ and b.kind != OBJ:
                if clean_left and a.dirty:
                    a = clean(a)
                if clean_right and b.dirty:
                    b = clean(b)
                return Col(ufunc(floats(a), floats(b)), and_masks(a.ok, b.ok), None, NUM, True)
            return map_rows(row, [a, b], ctx.n, out)
        return arithmetic

    def slice(self, node: A.Slice) -> Fn:
        target = self.compile(node.target)
        bounds = [None if b is None else self.compile(b) for b in (node.start, node.stop, node.step)]
        present = [i for i, b in enumerate(bounds) if b is not None]

        def row(t: V.Value, *given: V.Value) -> V.Value:
            parts: list[V.Value] = [None, None, None]
            for i, v in zip(present, given, strict=True):
                parts[i] = v
            return V.slice_(t, *parts)

        def slice_(ctx: Ctx) -> Col:
            return map_rows(row, [target(ctx), *(bounds[i](ctx) for i in present)], ctx.n)  # type: ignore[misc]
        return slice_

    def format(self, node: A.Format) -> Fn:
        expr = self.compile(node.expr)
        spec = node.spec

        def row(v: V.Value) -> str:
            return V.to_str(v) if spec is None else javafmt.spec_format(spec, v)

        return lambda ctx: map_rows(row, [expr(ctx)], ctx.n)

    # --- calls ---------------------------------------------------------------------------------------
    def call(self, node: A.Call) -> Fn:
        name = node.name
        spec = FUNCTIONS[name]
        if name == "if":
            return _if(*[self.compile(a) for a in node.args])
        if name == "now":
            return lambda ctx: ctx.now()
        if name == "timestamp":
            return self.timestamp(node)
        if name == "pretrigger":
            var = _var_name(node.args[0])
            return lambda ctx: ctx.lookup(ctx.pre, var, "pretrigger")
        if spec.family is Family.AGGREGATION:
            return self.aggregation(node)
        if spec.family is Family.TEMPORAL:
            return self.temporal(node)
        args = [self.compile(a) for a in node.args]
        vector, row, out = spec.vector, spec.row, spec.out
        assert row is not None, name

        def call(ctx: Ctx) -> Col:
            cols = [a(ctx) for a in args]
            if vector is not None and all(c.kind != OBJ for c in cols):
                return vector(ctx.n, *cols)
            return map_rows(row, cols, ctx.n, out)
        return call

    def timestamp(self, node: A.Call) -> Fn:
        if not node.args:
            return lambda ctx: ctx.timestamp()
        arg = node.args[0]
        if isinstance(arg, A.Var):
            name = arg.name
            return lambda ctx: ctx.lookup(ctx.var_ts, name, "timestamp")
        pre = _var_name(arg.args[0])  # type: ignore[union-attr]  # the checker allows pretrigger(var) only
        return lambda ctx: ctx.lookup(ctx.pre_ts, pre, "timestamp(pretrigger")

    def aggregation(self, node: A.Call) -> Fn:
        name = node.name
        args: list[tuple[Fn, str | None]] = []
        for a in node.args:
            bare = bare_variables(a)
            args.append((self.compile(a), next(iter(bare)) if bare else None))

        def window_level(ctx: Ctx) -> Col:
            win = _window(ctx)
            parts = []
            for fn, var in args:
                if var is None:
                    parts.append(partial(fn(win.ctx), np.arange(win.w + 1, dtype=np.int64)))
                else:
                    pctx, offsets = win.points(var)
                    parts.append(partial(fn(pctx), offsets))
            return aggregate(name, parts)
        return _at_window_level(window_level)

    def temporal(self, node: A.Call) -> Fn:
        name = node.name
        arg = node.args[0]
        var = next(n.name for n in A.walk(arg) if isinstance(n, A.Var))
        fn = self.compile(arg)
        how = _time_weighting(node)

        def window_level(ctx: Ctx) -> Col:
            win = _window(ctx)
            if name == "earliest":
                s = win.series.get(var)
                if s is None or s.earliest is None:
                    return constant_none(win.w)
                return fn(win.substituted(var, s.earliest))
            pctx, offsets = win.points(var)
            points = fn(pctx)
            if name in ("first", "last"):
                return pick(points, offsets, last=name == "last")
            s = win.series.get(var)
            prior = None if s is None or s.prior is None else fn(win.substituted(var, s.prior))
            if name == "latest":
                found = pick(points, offsets, last=True)
                if prior is None:
                    return found
                return _if(lambda c: Col(full(found.ok, win.w, True), None, None, BOOL),
                           lambda c: found, lambda c: prior)(win.ctx)
            if s is None or s.timestamps is None:
                raise ValueError(f"{name}({var}) needs the timestamps of its points")
            if how is not None:
                return time_weighted(points, s.timestamps, offsets, prior, win.ends, win.interval, how)
            if prior is None:
                return constant_none(win.w)
            known = full(s.prior.ok, win.w, True) if s.prior is not None else np.zeros(win.w, bool)
            return statetime(points, s.timestamps, offsets, positive(prior, win.w), known, win.ends, win.interval)
        return _at_window_level(window_level)


# --- helpers -------------------------------------------------------------------------------------------
def _constant_number(node: A.Node, fn: Fn) -> float | None:
    """The value of a numeric constant operand (a literal or a folded sub-expression), else None."""
    if not _foldable(node):
        return None
    c = _run_constant(fn)
    if c.kind != NUM or c.ok is not None or isinstance(c.v, np.ndarray):
        return None
    return float(c.v)


def _foldable(node: A.Node) -> bool:
    for n in A.walk(node):
        if isinstance(n, A.Var | A.NoneLit) or (isinstance(n, A.Call) and n.name in _CONTEXT_CALLS):
            return False
    return True


def _run_constant(fn: Fn) -> Col:
    with np.errstate(all="ignore"):
        return fn(Ctx(1, {}))


def _time_weighting(node: A.Call) -> str | None:
    """The interpolation (TimeWeightedAvg) or algorithm (TimeWeightedStDev) of a call, else None."""
    defaults = {"timeweightedavg": "locf", "timeweightedstdev": "f"}
    if node.name not in defaults:
        return None
    if len(node.args) < 2:
        return defaults[node.name]
    option = node.args[1]
    assert isinstance(option, A.Str)  # the checker allows a string literal only
    return option.value.lower()


def _var_name(node: A.Node) -> str:
    assert isinstance(node, A.Var)
    return node.name


def _window(ctx: Ctx) -> WindowState:
    if ctx.win is None:
        raise ValueError("aggregation and temporal functions need window inputs (evaluate_windows)")
    return ctx.win


def _at_window_level(fn: Fn) -> Fn:
    """Evaluate at the window level; at the point level, give each point its window's value."""
    def run(ctx: Ctx) -> Col:
        win = _window(ctx)
        col = fn(win.ctx)
        return col if ctx.rows is None else take(col, ctx.rows)
    return run


def _concat(*parts: V.Value) -> str:
    return V.check_string("".join(V.to_str(p) for p in parts))


def _falsy(c: Col) -> Any:
    """Falsy rule over a numeric column (``none`` rows are falsy)."""
    f = np.logical_not(c.v) if c.kind == BOOL else np.equal(floats(c), 0.0)
    return f if c.nn is None else (f | c.nn)


def _with_none(c: Col) -> Any:
    """Rows that have a value or hold ``none`` (what the falsy operators accept)."""
    if c.ok is None or c.nn is None:
        return c.ok
    return c.ok | c.nn


def _logical(op: str, left: Fn, right: Fn) -> Fn:
    """``x and y``: 0 if x is falsy else y; ``x or y``: 1 if x is truthy else y."""
    def logical(ctx: Ctx) -> Col:
        x = clean(left(ctx))
        if x.kind == OBJ:
            fx = np.fromiter((V.falsy(v) for v in _objects_with_none(x, ctx.n)), bool, ctx.n)
        else:
            fx = _falsy(x)
        x_ok = _with_none(x)
        y = right(ctx)
        take_y = np.logical_not(fx) if op == "and" else fx
        fixed = 0.0 if op == "and" else 1.0
        if y.kind == OBJ:
            v: Any = np.where(take_y, objects(y, ctx.n), fixed)
            kind = OBJ
        else:
            v = np.where(take_y, floats(y), fixed)
            kind = NUM
        ok = and_masks(x_ok, _select(take_y, y.ok, None, ctx.n, True))
        nn = _select(take_y, y.nn, None, ctx.n, False)
        return Col(v, ok, nn, kind, y.dirty)
    return logical


def _objects_with_none(c: Col, n: int) -> np.ndarray:
    a = objects(c, n)
    if c.nn is not None:
        a = a.copy()
        a[c.nn] = None
    return a


def _select(t: Any, a: Any, b: Any, n: int, default: bool) -> Any:
    """``where(t, a, b)`` for optional masks (None = every row ``default``; a bool = every row that)."""
    if a is None and b is None:
        return None
    a = default if a is None else a
    b = default if b is None else b
    a_scalar, b_scalar = not isinstance(a, np.ndarray), not isinstance(b, np.ndarray)
    if a_scalar and b_scalar:
        if a == b:
            return None if bool(a) == default else np.full(n, bool(a))
        return t if a else np.logical_not(t)
    if a_scalar:
        return (t | b) if a else (np.logical_not(t) & b)
    if b_scalar:
        return (t & a) if not b else (a | np.logical_not(t))
    return np.where(t, a, b)


def _truth(c: Col, n: int) -> tuple[Any, Any]:
    """(truth per row, rows where the condition has a value) by the if() rule."""
    if c.kind == BOOL:
        return c.v, c.ok
    if c.kind == NUM:
        return floats(c) != 0, c.ok  # NaN is true
    vals = _objects_with_none(c, n)
    ok = full(c.ok, n, True).copy()
    truth = np.zeros(n, bool)
    for i in np.flatnonzero(ok).tolist():
        try:
            truth[i] = V.if_true(vals[i])
        except V.NoOutput:
            ok[i] = False
    return truth, ok


def _if(cond: Fn, then: Fn, otherwise: Fn | None = None) -> Fn:
    def if_(ctx: Ctx) -> Col:
        c = clean(cond(ctx))
        t, c_ok = _truth(c, ctx.n)
        a = then(ctx)
        b = otherwise(ctx) if otherwise is not None else constant_none(ctx.n)
        if c_ok is None and not isinstance(t, np.ndarray):
            return a if t else b
        # each branch's computed NaN counts only where that branch is chosen: an input NaN passed
        # through one branch stays a value even if the other branch computed a NaN on that row
        a, b = clean(a), clean(b)
        if a.kind != OBJ and b.kind != OBJ:
            v: Any = np.where(t, floats(a), floats(b))
            kind = NUM
        else:
            v, kind = np.where(t, objects(a, ctx.n), objects(b, ctx.n)), OBJ
        ok = and_masks(c_ok, _select(t, a.ok, b.ok, ctx.n, True))
        nn = _select(t, a.nn, b.nn, ctx.n, False)
        if nn is not None and c_ok is not None:
            nn = nn & c_ok
        return Col(v, ok, nn, kind, False)
    return if_
