"""A per-point reference: walks the checked tree for one row with the scalar semantics of ``values``.

Independent of the vectorised evaluator (no numpy, no masks); the vectorisation tests compare the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asset_models.expressions import ast as A
from asset_models.expressions import values as V
from asset_models.expressions.functions import FUNCTIONS, javafmt


def evaluate_point(tree: A.Node, env: Mapping[str, Any]) -> Any:
    """The output for one row, or ``NoOutput``."""
    try:
        return V.final(_eval(tree, env), None)
    except V.NoOutput:
        return V.NoOutput


def _eval(node: A.Node, env: Mapping[str, Any]) -> Any:
    match node:
        case A.Num(value=x):
            return float(x)
        case A.Str(value=s):
            return s
        case A.NoneLit():
            return None
        case A.Var(name=name):
            return env[name]
        case A.Unary(op="-", operand=o):
            return V.neg(_strict(o, env))
        case A.Unary(operand=o):
            return V.not_(_eval(o, env))
        case A.Binary(op="and", left=a, right=b):
            return 0.0 if V.falsy(_eval(a, env)) else _eval(b, env)
        case A.Binary(op="or", left=a, right=b):
            return _eval(b, env) if V.falsy(_eval(a, env)) else 1.0
        case A.Binary(op=op, left=a, right=b):
            return V.BINARY[op](_strict(a, env), _strict(b, env))
        case A.Call(name="if", args=args):
            if V.if_true(_eval(args[0], env)):
                return _eval(args[1], env)
            return _eval(args[2], env) if len(args) == 3 else None
        case A.Call(name=name, args=args):
            row = FUNCTIONS[name].row
            assert row is not None, name
            return row(*[_eval(a, env) for a in args])
        case A.Format(expr=e, spec=spec):
            v = _eval(e, env)
            return V.to_str(v) if spec is None else javafmt.spec_format(spec, v)
    raise NotImplementedError(type(node).__name__)


def _strict(node: A.Node, env: Mapping[str, Any]) -> Any:
    v = _eval(node, env)
    if v is None:
        raise V.NoOutput
    return v
