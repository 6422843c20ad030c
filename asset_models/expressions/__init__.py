"""The AWS IoT SiteWise expression language: a pure, vectorised library.

Compile once, evaluate over whole batches::

    from asset_models.expressions import VarInfo, compile_expression

    f = compile_expression("9/5 * temp_c + 32", {"temp_c": VarInfo("DOUBLE")}, "transform")
    result = f.evaluate({"temp_c": np.array([0.0, 100.0])})
    result.values, result.valid          # array([ 32., 212.]), array([ True,  True])

    m = compile_expression("avg(power)", {"power": VarInfo("DOUBLE")}, "metric")
    m.evaluate_windows({"power": Series(values, offsets)}, window_end_ns, interval_ns=60 * 10**9)

Public API:

- :func:`compile_expression` ``(text, variables, kind, *, output_type=None) -> Compiled``: raises
  :class:`ExpressionError` (a ``ModelError``) with the position of the problem.
- :class:`Compiled`: ``evaluate(...)`` for transforms (one row per trigger point) and
  ``evaluate_windows(...)`` for metrics (one row per window); both return a :class:`Result`
  ``(values, valid)``.
- :class:`VarInfo`: what a variable is (data type, attribute, through a hierarchy, metric).
- :class:`Column` (values with a validity mask) and :class:`Series` (a metric variable's points per window,
  CSR-style): the input shapes, documented in :mod:`asset_models.expressions.inputs`.

See README.md in this folder for the language and the choices made where SiteWise's documentation is silent.
"""

from .check import MAX_CALLS, MAX_LENGTH, MAX_VARIABLES, VarInfo
from .compiled import Compiled, compile_expression
from .errors import ExpressionError
from .inputs import Column, Result, Series

__all__ = [
    "MAX_CALLS",
    "MAX_LENGTH",
    "MAX_VARIABLES",
    "Column",
    "Compiled",
    "ExpressionError",
    "Result",
    "Series",
    "VarInfo",
    "compile_expression",
]
