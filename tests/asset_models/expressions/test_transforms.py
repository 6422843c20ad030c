"""Transforms: pretrigger, timestamp(var), the worked examples (§6.7, §6.8), and vectorised == per-point."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asset_models.expressions import Column, VarInfo, compile_expression
from asset_models.expressions import values as V

from .helpers import NO, plain, rows
from .reference import evaluate_point

MIN = 60 * 10**9


def outputs(result: object) -> list[object]:
    return [plain(v) if ok else NO for v, ok in zip(result.values, result.valid, strict=True)]  # type: ignore[attr-defined]


def test_pretrigger_scenario() -> None:
    """z = x + y + pretrigger(y); trigger rows at 09:00 (x and y), 09:05 (x and y), 09:10 (y), 09:15 (x)."""
    z = compile_expression("x + y + pretrigger(y)", {"x": VarInfo(), "y": VarInfo()}, "transform")
    result = z.evaluate({"x": [10.0, 20.0, 20.0, 30.0], "y": [1.0, 2.0, 3.0, 3.0]},
                        pretrigger={"y": Column([0.0, 1.0, 2.0, 3.0], valid=[False, True, True, True])})
    assert outputs(result) == [NO, 23.0, 25.0, 36.0]
    # "If the value of x for 9:05 AM arrives before the value of x for 09:00 AM ...": z = 20 + 1 + 1
    late = z.evaluate({"x": [20.0], "y": [1.0]}, pretrigger={"y": [1.0]})
    assert outputs(late) == [22.0]


def test_pretrigger_needs_its_input() -> None:
    z = compile_expression("x + pretrigger(x)", {"x": VarInfo()}, "transform")
    with pytest.raises(ValueError, match="pretrigger: missing variable 'x'"):
        z.evaluate({"x": [1.0]})


def test_cleaning_state_duration() -> None:
    text = ("if(pretrigger(current_state) == 1, "
            "timestamp(current_state) - timestamp(pretrigger(current_state)), none)")
    f = compile_expression(text, {"current_state": VarInfo("INTEGER")}, "transform")
    t0 = 1_700_000_000 * 10**9
    result = f.evaluate(
        {"current_state": [1, 0, 1, 2]},
        pretrigger={"current_state": Column([0, 1, 0, 1], valid=[False, True, True, True])},
        var_timestamps={"current_state": [t0, t0 + 5 * MIN, t0 + 7 * MIN, t0 + 10 * MIN]},
        pretrigger_timestamps={"current_state": [0, t0, t0 + 5 * MIN, t0 + 7 * MIN]},
    )
    assert outputs(result) == [NO, 300.0, NO, 180.0]


def test_variable_without_a_value_yet_gives_no_output() -> None:
    f = compile_expression("a + b", {"a": VarInfo(), "b": VarInfo()}, "transform")
    out = f.evaluate({"a": [1.0, 2.0], "b": Column([5.0, 6.0], valid=[False, True])})
    assert outputs(out) == [NO, 8.0]


def test_boolean_and_integer_inputs() -> None:
    f = compile_expression("running * 10 + count", {"running": VarInfo("BOOLEAN"), "count": VarInfo("INTEGER")})
    assert outputs(f.evaluate({"running": np.array([True, False]), "count": np.array([3, 4])})) == [13.0, 4.0]


@pytest.mark.parametrize(("text", "inputs", "expected"), [
    pytest.param("if(gte(temp_c, 100), temp_c, none)", {"temp_c": [99.0, 100.0, 120.5]}, [NO, 100.0, 120.5],
                 id="boiling-temps"),
    pytest.param("gte(temp_c, 100)", {"temp_c": [99.0, 100.0, 100 - 1e-8]}, [0.0, 1.0, 1.0], id="is-boiling"),
    pytest.param("9/5 * temp_c + 32", {"temp_c": [-40.0, 0.0, 100.0]}, [-40.0, 32.0, 212.0], id="temperature-f"),
])
def test_formulas(text: str, inputs: dict[str, list[float]], expected: list[object]) -> None:
    assert rows(text, **inputs) == expected


def test_quality_monitor() -> None:
    text = ('if(eq(Part_Number, "BLT123") and (Bad_Count / (Good_Count + Bad_Count) > 0.1), '
            '"Caution", "Normal")')
    variables = {"Part_Number": VarInfo("STRING"), "Good_Count": VarInfo("INTEGER"),
                 "Bad_Count": VarInfo("INTEGER")}
    f = compile_expression(text, variables, "transform", output_type="STRING")
    out = f.evaluate({"Part_Number": ["BLT123", "BLT123", "XYZ", "BLT123"], "Good_Count": [90, 80, 10, 0],
                      "Bad_Count": [10, 20, 90, 0]})
    assert outputs(out) == ["Normal", "Caution", "Normal", NO]  # 0/0 is undefined: no output


def test_output_type_double_drops_text() -> None:
    f = compile_expression("if(x > 0, x, 'neg')", {"x": VarInfo()}, output_type="DOUBLE")
    out = f.evaluate({"x": [1.0, -1.0]})
    assert out.values.dtype == np.float64
    assert outputs(out) == [1.0, NO]


def test_input_shapes_are_checked() -> None:
    f = compile_expression("a + b", {"a": VarInfo(), "b": VarInfo()})
    with pytest.raises(ValueError, match=r"inputs\['b'\]: expected 2 values"):
        f.evaluate({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ValueError, match="inputs: missing variable 'b'"):
        f.evaluate({"a": [1.0]})
    with pytest.raises(ValueError, match="evaluate_windows"):
        compile_expression("avg(a)", {"a": VarInfo()}, "metric").evaluate({"a": [1.0]})


# --- vectorised evaluation == per-point evaluation --------------------------------------------------------
FORMULAS = [
    "9/5 * t + 32",
    "if(gt(p, 5), p * 2, none)",
    "sqrt(a^2 + b^2)",
    "(g / (g + b)) * 100",
    "abs(x - y) % 7",
    "if(x > 2, log(x)).elif(y, 1, -x) + 0",
    "x and y or not p",
    "eq(x, y) + gte(a, b) * 2 + lte(b, a) * 4 + neq(p, t) * 8",
    "pow(x, y) / (t - 3)",
    "if(x < y, exp(x), cot(y)) - signum(a) * floor(b) + ceil(-g)",
    "x % y + tanh(p) - atan(t)",
    "if(if(x > 1, none, y), 1, 2)",
]
VARS = ("a", "b", "g", "p", "t", "x", "y")


def _data(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in VARS:
        v = rng.uniform(-10, 10, n).round(rng.integers(0, 3))
        v[rng.random(n) < 0.05] = 0.0
        v[rng.random(n) < 0.01] = np.nan
        out[name] = v
    return out


def _check_against_reference(text: str, data: dict[str, np.ndarray]) -> None:
    f = compile_expression(text, {v: VarInfo() for v in VARS})
    result = f.evaluate(data)
    n = result.valid.shape[0]
    for i in range(n):
        want = evaluate_point(f.tree, {k: float(v[i]) for k, v in data.items()})
        if want is V.NoOutput:
            assert not result.valid[i], (text, i, {k: v[i] for k, v in data.items()}, result.values[i])
        else:
            assert result.valid[i], (text, i, {k: v[i] for k, v in data.items()}, want)
            got = float(result.values[i])
            assert got == want or math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-300), (text, i, got, want)


@pytest.mark.parametrize("text", FORMULAS)
def test_vectorised_matches_per_point(text: str) -> None:
    _check_against_reference(text, _data(3_000, seed=len(text)))


def test_vectorised_matches_per_point_100k() -> None:
    data = _data(100_000, seed=1)
    _check_against_reference("if(gt(p, 5), p * 2, none) + 9/5 * t + 32 + sqrt(a^2 + b^2) % 7", data)


_leaf = st.sampled_from(["x", "y", "0", "1", "2.5", "-3", "none", "pi"])
_unary = ["-", "!", "not ", "abs", "sqrt", "log", "floor", "signum", "isnan"]
_binary = ["+", "-", "*", "/", "%", "^", "<", ">=", "==", "!=", " and ", " or "]
_calls2 = ["gt", "eq", "lte", "neq", "pow", "if"]


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(st.sampled_from(_unary), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, st.sampled_from(_binary), children).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(st.sampled_from(_calls2), children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(children, children, children).map(lambda t: f"if({t[0]}, {t[1]}, {t[2]})"),
    )


_expressions = st.recursive(_leaf, _extend, max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(_expressions)
def test_random_expressions_vectorised_matches_per_point(text: str) -> None:
    from asset_models.expressions import ExpressionError

    try:
        f = compile_expression(text, {"x": VarInfo(), "y": VarInfo()})
    except ExpressionError as e:  # more than 10 calls
        assert "more than 10" in e.message
        return
    xs = np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, np.nan, 1e300, 7.0])
    ys = np.array([0.0, 2.0, 0.0, -0.5, 1.0, 3.0, np.nan, 1.0, 1e10, 7.0])
    result = f.evaluate({"x": xs, "y": ys})
    for i in range(xs.shape[0]):
        want = evaluate_point(f.tree, {"x": float(xs[i]), "y": float(ys[i])})
        if want is V.NoOutput:
            assert not result.valid[i], (text, xs[i], ys[i], result.values[i])
        else:
            assert result.valid[i], (text, xs[i], ys[i], want)
            got = float(result.values[i])
            assert got == want or math.isclose(got, want, rel_tol=1e-12), (text, xs[i], ys[i], got, want)


def test_input_nan_through_if_is_a_value_even_when_the_other_branch_computes_nan() -> None:
    f = compile_expression("!(if(x, x, abs(x)))", {"x": VarInfo()})
    result = f.evaluate({"x": np.array([np.nan])})
    assert result.valid[0] and result.values[0] == 0.0  # NaN is truthy, so !NaN is 0
