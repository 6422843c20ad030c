"""Bad expressions are refused at compile time with the position and a precise message."""

from __future__ import annotations

import pytest

from asset_models.expressions import ExpressionError, VarInfo, compile_expression
from sitewise_edge.errors import ModelError

VARS = {"x": VarInfo(), "temp_c": VarInfo(), "s": VarInfo("STRING"), "kids": VarInfo(hierarchy=True),
        "level": VarInfo(attribute=True), "oee": VarInfo(metric=True)}


@pytest.mark.parametrize(("text", "kind", "column", "message"), [
    pytest.param("9/5 * foo(x)", "transform", 7, "unknown function 'foo'", id="unknown-function"),
    pytest.param("9/5 * temp + 32", "transform", 7, "unknown variable 'temp' (declared: kids, level, oee, s, "
                 "temp_c, x)", id="unknown-variable"),
    pytest.param("X + 1", "transform", 1, "unknown variable 'X'", id="variables-are-case-sensitive"),
    pytest.param("sqrt(x, 2)", "transform", 1, "sqrt() takes 1 argument (2 given)", id="arity"),
    pytest.param("x.pow()", "transform", 3, "pow() takes 2 arguments (1 given, counting the value before '.')",
                 id="arity-ufcs"),
    pytest.param("if(x)", "transform", 1, "if() takes 2 to 3 arguments (1 given)", id="arity-if"),
    pytest.param("join()", "transform", 1, "join() takes at least 1 argument (0 given)", id="arity-variadic"),
    pytest.param("(x + 1", "transform", 1, "unbalanced '(': expected ')'", id="unbalanced-open"),
    pytest.param("x + 1)", "transform", 6, "unbalanced ')': no matching '('", id="unbalanced-close"),
    pytest.param("sqrt(x", "transform", 5, "unbalanced '(' of sqrt(: expected ')'", id="unbalanced-call"),
    pytest.param("s[1", "transform", 2, "unbalanced '[': expected ']'", id="unbalanced-bracket"),
    pytest.param("'abc", "transform", 1, "unterminated string", id="unterminated-string"),
    pytest.param("x + \"it\"\"s", "transform", 5, "unterminated string", id="unterminated-after-escape"),
    pytest.param("f'a{x'", "transform", 4, "unterminated '{' in f-string", id="unterminated-fstring-field"),
    pytest.param("x +", "transform", 4, "unexpected end of expression", id="dangling-operator"),
    pytest.param("x = 1", "transform", 3, "unexpected '=' (use '==' to compare)", id="single-equals"),
    pytest.param("x $ 1", "transform", 3, "unexpected character '$'", id="bad-character"),
    pytest.param("x 1", "transform", 3, "unexpected number 1", id="missing-operator"),
    pytest.param("x.5", "transform", 2, "unexpected number .5", id="ufcs-needs-name"),
    pytest.param("x.abs", "transform", 6, "expected '(' after '.abs'", id="ufcs-needs-call"),
    pytest.param("s[1:2:3:4]", "transform", 8, "a slice has at most three parts", id="slice-parts"),
    pytest.param("", "transform", 1, "empty expression", id="empty"),
    pytest.param("avg(x)", "transform", 1, "avg() is a metric function (aggregation): transforms can't use it",
                 id="aggregation-in-transform"),
    pytest.param("x + latest(x)", "transform", 5, "latest() is a metric function (temporal (metrics))",
                 id="temporal-in-transform"),
    pytest.param("pretrigger(x)", "metric", 1, "pretrigger() can only be used in transforms",
                 id="pretrigger-in-metric"),
    pytest.param("timestamp(x)", "metric", 1, "timestamp(variable) can only be used in transforms",
                 id="timestamp-var-in-metric"),
    pytest.param("pretrigger(x + 1)", "transform", 12, "pretrigger() takes a variable", id="pretrigger-arg"),
    pytest.param("pretrigger(level)", "transform", 12, "'level' is an attribute", id="pretrigger-attribute"),
    pytest.param("timestamp(x + 1)", "transform", 11, "timestamp() takes a variable or pretrigger(variable)",
                 id="timestamp-arg"),
    pytest.param("jp(s, path)", "transform", 7, "unknown variable 'path'", id="jp-path-variable-unknown"),
    pytest.param("jp(s, s)", "transform", 7, "the JsonPath of jp() must be a string literal", id="jp-path-literal"),
    pytest.param("jp(s, '$..a')", "transform", 9, "unsupported JsonPath syntax at '..a'", id="jp-path-syntax"),
    pytest.param("jp(s, 'a')", "transform", 8, "a JsonPath starts with '$'", id="jp-path-dollar"),
    pytest.param("format(\"%q\", x)", "transform", 10, "unsupported format conversion '%q'", id="format-conversion"),
    pytest.param("format(\"%d %d\", x)", "transform", 9, "the format needs 2 arguments (1 given)",
                 id="format-arguments"),
    pytest.param("format(x: \"k\")", "transform", 1, "unsupported format conversion '%k'", id="format-spec"),
    pytest.param("mktime('Mars/Olympus', 2020, 1, 1)", "transform", 8, "unknown time zone 'Mars/Olympus'",
                 id="time-zone"),
    pytest.param("hour(localtime(x, 'UTC+19'))", "transform", 19, "time-zone offset out of range",
                 id="time-zone-offset"),
    pytest.param("localtime(x) + 1", "transform", 1, "localtime() can only be passed to hour(), mday()",
                 id="localtime-alone"),
    pytest.param("year(x)", "transform", 6, "year() takes localtime(time, time_zone)", id="reader-needs-localtime"),
    pytest.param("elif(x, 1, 2)", "transform", 1, "elif() must be called with UFCS", id="elif-without-ufcs"),
    pytest.param("x.elif(x, 1, 2)", "transform", 3, "elif() must follow if(condition, result)",
                 id="elif-without-if"),
    pytest.param("if(x, 1, 2).elif(x, 1, 2)", "transform", 13, "elif() must follow if(condition, result)",
                 id="elif-after-three-arg-if"),
    pytest.param("kids + 1", "transform", 1, "variable 'kids' comes from child assets (hierarchyId): only metrics",
                 id="hierarchy-in-transform"),
    pytest.param("kids + 1", "metric", 1, "use it inside an aggregation function such as avg(kids)",
                 id="hierarchy-outside-aggregation"),
    pytest.param("min(x / temp_c)", "metric", 5, "each argument of min() can use only one variable (found temp_c, x)",
                 id="aggregation-two-variables"),
    pytest.param("first(sum(x))", "metric", 7, "the argument of first() can't contain sum()",
                 id="temporal-of-aggregation"),
    pytest.param("latest(x + temp_c)", "metric", 8, "must use exactly one variable", id="temporal-two-variables"),
    pytest.param("first(kids)", "metric", 7, "'kids' is a property of child assets", id="temporal-hierarchy"),
    pytest.param("last(level)", "metric", 6, "'level' is an attribute", id="temporal-attribute"),
    pytest.param("statetime(oee)", "metric", 11, "statetime() can't take a metric", id="statetime-metric"),
])
def test_diagnostics(text: str, kind: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, VARS, kind)  # type: ignore[arg-type]
    err = info.value
    assert message in err.message
    assert err.column == column, str(err)


def test_rendering_points_at_the_column() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("9/5 * foo(x)", VARS)
    assert str(info.value) == "unknown function 'foo' at column 7:\n  9/5 * foo(x)\n        ^"
    assert isinstance(info.value, ModelError)
    assert info.value.expression == "9/5 * foo(x)"
    assert info.value.position == 6


def test_too_long() -> None:
    text = "x + " * 256 + "1"
    assert len(text) == 1025
    with pytest.raises(ExpressionError, match="expression is 1025 characters long \\(limit 1024\\)") as info:
        compile_expression(text, VARS)
    assert info.value.position == 1024
    compile_expression(text[4:], VARS)  # 1,021 characters are fine


def test_too_many_variables() -> None:
    names = [f"v{i}" for i in range(11)]
    variables = {n: VarInfo() for n in names}
    compile_expression(" + ".join(names[:10]), variables)
    text = " + ".join(names)
    with pytest.raises(ExpressionError, match="more than 10 variables: 'v10' is the 11th") as info:
        compile_expression(text, variables)
    assert info.value.position == text.index("v10")


def test_too_many_function_calls() -> None:
    ok = "abs(" * 10 + "x" + ")" * 10
    compile_expression(ok, VARS)
    text = "abs(" * 11 + "x" + ")" * 11
    with pytest.raises(ExpressionError, match="more than 10 function calls") as info:
        compile_expression(text, VARS)
    assert info.value.position == 40
    with pytest.raises(ExpressionError, match="more than 10 function calls"):  # UFCS and format() count
        compile_expression("x" + ".abs()" * 10 + ".format(\"%f\")", VARS)


def test_repeated_variable_counts_once() -> None:
    compiled = compile_expression("x * x + x - temp_c", VARS)
    assert compiled.variables == ("x", "temp_c")
