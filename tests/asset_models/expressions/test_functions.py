"""One test per function with its no-output cases (reference §5.3, §6.2, §6.3, §6.5, §6.11)."""

from __future__ import annotations

import math

import pytest

from .helpers import NO, one, rows


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("abs(-2.5)", 2.5, id="abs"),
    pytest.param("acos(1)", 0.0, id="acos"),
    pytest.param("acos(2)", NO, id="acos-domain"),
    pytest.param("asin(1)", math.pi / 2, id="asin"),
    pytest.param("asin(-2)", NO, id="asin-domain"),
    pytest.param("atan(1)", math.pi / 4, id="atan"),
    pytest.param("cbrt(-27)", -3.0, id="cbrt"),
    pytest.param("ceil(1.2)", 2.0, id="ceil"),
    pytest.param("ceil(-1.2)", -1.0, id="ceil-negative"),
    pytest.param("cos(0)", 1.0, id="cos"),
    pytest.param("cosh(0)", 1.0, id="cosh"),
    pytest.param("cosh(1000)", NO, id="cosh-overflow"),
    pytest.param("cot(pi / 4)", 1 / math.tan(math.pi / 4), id="cot"),
    pytest.param("cot(0)", NO, id="cot-zero"),
    pytest.param("exp(1)", math.e, id="exp"),
    pytest.param("exp(1000)", NO, id="exp-overflow"),
    pytest.param("expm1(1e-10)", math.expm1(1e-10), id="expm1"),
    pytest.param("floor(-1.5)", -2.0, id="floor"),
    pytest.param("log(e)", 1.0, id="log-natural"),
    pytest.param("log(0)", NO, id="log-zero"),
    pytest.param("log(-1)", NO, id="log-negative"),
    pytest.param("log10(1000)", 3.0, id="log10"),
    pytest.param("log1p(0)", 0.0, id="log1p"),
    pytest.param("log1p(-1)", NO, id="log1p-minus-one"),
    pytest.param("log2(8)", 3.0, id="log2"),
    pytest.param("pow(2, 3)", 8.0, id="pow"),
    pytest.param("pow(0, -1)", NO, id="pow-zero-negative"),
    pytest.param("pow(-8, 0.5)", NO, id="pow-complex"),
    pytest.param("signum(-4)", -1.0, id="signum-negative"),
    pytest.param("signum(0)", 0.0, id="signum-zero"),
    pytest.param("signum(7)", 1.0, id="signum-positive"),
    pytest.param("sin(0)", 0.0, id="sin"),
    pytest.param("sinh(0)", 0.0, id="sinh"),
    pytest.param("sqrt(16)", 4.0, id="sqrt"),
    pytest.param("sqrt(-1)", NO, id="sqrt-negative"),
    pytest.param("tan(0)", 0.0, id="tan"),
    pytest.param("tanh(0)", 0.0, id="tanh"),
    pytest.param("SQRT(4)", 2.0, id="case-insensitive"),
    pytest.param("sqrt('4')", NO, id="string-argument"),
])
def test_common_functions(text: str, expected: object) -> None:
    got = one(text)
    if isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    else:
        assert got == expected


@pytest.mark.parametrize("name", ["abs", "cbrt", "ceil", "cos", "exp", "floor", "log", "sin", "sqrt", "tanh",
                                  "atan", "signum", "cot", "log2", "expm1"])
def test_common_functions_vectorised_match_row_path(name: str) -> None:
    xs = [-2.0, -0.5, 0.0, 0.5, 3.0]
    vector = rows(f"{name}(x)", x=xs)
    row_path = [one(f"{name}(x)", x=x) for x in xs]  # a single row goes through the same numpy code
    scalar = [_math(name, x) for x in xs]
    assert vector == row_path
    for got, want in zip(vector, scalar, strict=True):
        assert got == want or got == pytest.approx(want, rel=1e-12)


def _math(name: str, x: float) -> object:
    fns = {"cbrt": math.cbrt, "signum": lambda v: float((v > 0) - (v < 0)), "cot": lambda v: 1 / math.tan(v)}
    try:
        r = float(fns.get(name, getattr(math, name, abs))(x))
    except (ValueError, ZeroDivisionError, OverflowError):
        return NO
    return r if math.isfinite(r) else NO


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("gt(2, 1)", 1.0, id="gt"),
    pytest.param("gt(1, 1)", 0.0, id="gt-equal"),
    pytest.param("lt(1, 2)", 1.0, id="lt"),
    pytest.param("gte(1, 1 - 1e-12)", 1.0, id="gte-tolerance"),
    pytest.param("gte(1, 1.1)", 0.0, id="gte-false"),
    pytest.param("lte(1 + 1e-12, 1)", 1.0, id="lte-tolerance"),
    pytest.param("lte(2, 1)", 0.0, id="lte-false"),
    pytest.param("eq(1.0, 1.0 + 1e-12)", 1.0, id="eq-tolerance"),
    pytest.param("eq(1.0, 1.0 + 1e-6)", 0.0, id="eq-outside-tolerance"),
    pytest.param("eq(0, 1e-300)", 0.0, id="eq-relative-only"),
    pytest.param("neq(1.0, 1.0 + 1e-12)", 1.0, id="neq-no-tolerance"),
    pytest.param("neq(2, 2)", 0.0, id="neq-equal"),
    pytest.param("eq(3, \"3\")", NO, id="eq-incompatible"),
    pytest.param("gt('b', 'a')", 1.0, id="gt-strings"),
    pytest.param("eq('a', 'a')", 1.0, id="eq-strings"),
    pytest.param("lt('a', 1)", NO, id="lt-incompatible"),
    pytest.param("isnan(1)", 0.0, id="isnan-number"),
    pytest.param("isnan('x')", NO, id="isnan-string"),
])
def test_comparison_functions(text: str, expected: object) -> None:
    assert one(text) == expected


def test_isnan_of_a_nan_input_and_nan_is_true_for_if() -> None:
    assert rows("isnan(x)", x=[float("nan"), 1.0]) == [1.0, 0.0]
    assert rows("if(x, 1, 2)", x=[float("nan"), 0.0]) == [1.0, 2.0]
    assert rows("x", x=[float("nan")]) == [NO]  # a NaN result is no output
    assert rows("isnan(x + 1)", x=[float("nan")]) == [NO]  # NaN computed by an operator is no value


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("if(0, x, y)", 20.0, id="if-false"),
    pytest.param("if(5, x, y)", 10.0, id="if-true"),
    pytest.param("if('', x, y)", 20.0, id="if-empty-string"),
    pytest.param("if('no', x, y)", 10.0, id="if-string"),
    pytest.param("if(none, x, y)", NO, id="if-none-condition"),
    pytest.param("if(0, x)", NO, id="if-two-args-false"),
    pytest.param("if(1, x)", 10.0, id="if-two-args-true"),
    pytest.param("if(0, x).elif(1, y, 3)", 20.0, id="elif-true"),
    pytest.param("if(0, x).elif(0, y, 3)", 3.0, id="elif-else"),
    pytest.param("if(0, x).elif(0, y).elif(1, 4, 5)", 4.0, id="elif-chain"),
    pytest.param("if(0, x).elif(0, y)", NO, id="elif-no-else"),
    pytest.param("if(1, 'a', 2)", "a", id="mixed-types"),
    pytest.param("if(1, x, log(0))", 10.0, id="untaken-branch-error-ignored"),
])
def test_conditional(text: str, expected: object) -> None:
    assert one(text, x=10.0, y=20.0) == expected


def test_if_gt_temperature() -> None:
    temp = [250.0, 300.0, 301.0]
    assert rows("if(gt(temp, 300), x, y)", temp=temp, x=[1.0] * 3, y=[2.0] * 3) == [2.0, 2.0, 1.0]
    assert rows("if(gt(temp, 300), temp, none)", temp=temp) == [NO, NO, 301.0]


def test_elif_equals_nested_if() -> None:
    c1, c2 = [1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0]
    a = rows("if(c1, 1).elif(c2, 2, 3)", c1=c1, c2=c2)
    b = rows("if(c1, 1, if(c2, 2, 3))", c1=c1, c2=c2)
    assert a == b == [1.0, 2.0, 3.0, 1.0]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("len('abc')", 3.0, id="len"),
    pytest.param("len(5)", NO, id="len-number"),
    pytest.param("find('hello', 'll')", 2.0, id="find"),
    pytest.param("find('hello', 'z')", -1.0, id="find-missing"),
    pytest.param("contains('hello', 'ell')", 1.0, id="contains"),
    pytest.param("contains('hello', 'z')", 0.0, id="contains-false"),
    pytest.param("upper('aBc')", "ABC", id="upper"),
    pytest.param("lower('aBc')", "abc", id="lower"),
    pytest.param("lower(1)", NO, id="lower-number"),
    pytest.param("jp('{\"status\":\"active\",\"value\":15}', '$.value')", 15.0, id="jp-value"),
    pytest.param("jp('{\"measurement\":{\"reading\":25,\"confidence\":0.95}}', '$.measurement.reading')", 25.0,
                 id="jp-nested"),
    pytest.param("jp('[2,8,23]', '$[2]')", 23.0, id="jp-index"),
    pytest.param("jp('{\"values\":[3,6,7]}', '$.values[1]')", 6.0, id="jp-key-index"),
    pytest.param("jp('111', '$')", 111.0, id="jp-root"),
    pytest.param("jp(jp('{\"measurement\":{\"reading\":25,\"confidence\":\"0.95\"}}', '$.measurement.confidence'), "
                 "'$')", 0.95, id="jp-nested-string-to-number"),
    pytest.param("jp('{\"status\":\"active\"}', '$.status')", "active", id="jp-string"),
    pytest.param("jp('{\"a b\":{\"c\":true}}', \"$['a b'].c\")", 1.0, id="jp-quoted-key-boolean"),
    pytest.param("jp('[1,2,3]', '$[-1]')", 3.0, id="jp-negative-index"),
    pytest.param("jp('{\"values\":[3,6,7]}', '$.values')", NO, id="jp-array-no-output"),
    pytest.param("jp('{\"a\":1}', '$.b')", NO, id="jp-missing-key"),
    pytest.param("jp('{\"a\":null}', '$.a')", NO, id="jp-null"),
    pytest.param("jp('not json', '$')", NO, id="jp-invalid-json"),
    pytest.param("jp('{\"values\":[3,6,7]}', '$.values')[2]", 7.0, id="jp-array-indexed"),
    pytest.param("join(\"-\", \"aa\", \"bb\", \"cc\")", "aa-bb-cc", id="join"),
    pytest.param("join(', ', 'a')", "a", id="join-one"),
    pytest.param("join('/', 'a', 2)", "a/2", id="join-number"),
    pytest.param("format(100+1: \"d\")", "101", id="format-colon"),
    pytest.param("format(\"The result is %d\", 100+1)", "The result is 101", id="format-java"),
    pytest.param("format(1+2: \"f\")", "3.000000", id="format-f"),
    pytest.param("format(0.125: \".2f\")", "0.13", id="format-half-up"),
    pytest.param("format(-3.14159: \"%8.3f\")", "  -3.142", id="format-width"),
    pytest.param("format(42: \"05d\")", "00042", id="format-zero-pad"),
    pytest.param("format(42: \"-5d\")", "42   ", id="format-left"),
    pytest.param("format(1234567: \",d\")", "1,234,567", id="format-grouping"),
    pytest.param("format(5: \"+d\")", "+5", id="format-plus"),
    pytest.param("format(-5: \"(d\")", "(5)", id="format-parentheses"),
    pytest.param("format(12345.678: \"e\")", "1.234568e+04", id="format-e"),
    pytest.param("format(255: \"x\")", "ff", id="format-hex"),
    pytest.param("format(-1: \"X\")", "FFFFFFFFFFFFFFFF", id="format-hex-negative"),
    pytest.param("format(8: \"o\")", "10", id="format-octal"),
    pytest.param("format(\"%s=%.1f%%\", 'load', 99.95)", "load=100.0%", id="format-percent"),
    pytest.param("format(\"%2$s %1$s\", 'a', 'b')", "b a", id="format-indexed"),
    pytest.param("format(\"%5.2s|\", 'abc')", "   ab|", id="format-string-precision"),
    pytest.param("format(1.5: \"d\")", NO, id="format-d-fraction"),
    pytest.param("format('x': \"d\")", NO, id="format-d-string"),
])
def test_string_functions(text: str, expected: object) -> None:
    assert one(text) == expected


def test_string_functions_over_a_string_variable() -> None:
    assert rows("len(s) * 2", s=["ab", "", "abcd"]) == [4.0, 0.0, 8.0]
    assert rows("upper(s[0])", s=["ab", "", "c"]) == ["A", NO, "C"]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("mktime(2020, 2, 29)", 1582934400.0, id="date-only"),
    pytest.param("mktime('UTC+3', 2021, 12, 31, 22)", 1640977200.0, id="tz-first"),
    pytest.param("mktime(2022, 10, 13, 2, 55, 13.68, 'PST')", 1665654913.68, id="tz-last-pst-dst"),
    pytest.param("mktime('UTC', 2021, 1, 19, 4, 31, 39.00)", 1611030699.0, id="whats-new"),
    pytest.param("mktime('Z', 1970, 1, 1)", 0.0, id="z"),
    pytest.param("mktime('+2', 1970, 1, 1, 2)", 0.0, id="plain-offset"),
    pytest.param("mktime('GMT+2', 1970, 1, 1, 2)", 0.0, id="gmt-offset"),
    pytest.param("mktime('UTC-01:00', 1970, 1, 1)", 3600.0, id="utc-hh-mm"),
    pytest.param("mktime('EST', 2022, 7, 1)", 1656651600.0, id="est-fixed"),
    pytest.param("mktime('Europe/Paris', 2022, 7, 1)", 1656626400.0, id="region"),
    pytest.param("mktime('Etc/GMT+12', 2022, 7, 1)", 1656676800.0, id="etc-region"),
    pytest.param("mktime(2020, 2, 30)", NO, id="invalid-day"),
    pytest.param("mktime(1969, 1, 1)", NO, id="year-too-early"),
    pytest.param("mktime(2020, 13, 1)", NO, id="month-out-of-range"),
    pytest.param("mktime(2020, 1, 1, 24)", NO, id="hour-out-of-range"),
    pytest.param("mktime(2020, 1, 1, 0, 0, 60)", 1577836860.0, id="second-sixty"),
    pytest.param("year(localtime(1640977200 + 7200, 'UTC+3'))", 2022.0, id="year"),
    pytest.param("mon(localtime(1640977200, 'UTC+3'))", 12.0, id="mon"),
    pytest.param("mday(localtime(1640977200, 'UTC+3'))", 31.0, id="mday"),
    pytest.param("hour(localtime(1640977200, 'UTC+3'))", 22.0, id="hour"),
    pytest.param("minute(localtime(90, 'UTC'))", 1.0, id="minute"),
    pytest.param("sec(localtime(90.25))", 30.25, id="sec"),
    pytest.param("yday(localtime(mktime(2020, 12, 31)))", 366.0, id="yday-leap"),
    pytest.param("wday(localtime(mktime(2021, 1, 17)))", 0.0, id="wday-sunday-is-zero"),
    pytest.param("wday(localtime(mktime(2021, 1, 18), 'PST'))", 0.0, id="wday-in-pst"),
    pytest.param("hour(localtime(mktime(2022, 7, 1), 'PST'))", 17.0, id="pst-is-dst-aware"),
    pytest.param("hour(localtime(mktime(2022, 7, 1), 'IST'))", 5.0, id="ist-kolkata"),
])
def test_date_and_time(text: str, expected: object) -> None:
    got = one(text)
    assert got == (pytest.approx(expected, abs=1e-6) if isinstance(expected, float) else expected)


def test_now_and_timestamp() -> None:
    assert one("now()") == 1_700_000_000.5
    assert rows("timestamp()", timestamps=[1_000_000_000, 2_500_000_000]) == [1.0, 2.5]
    whats_new = "if(timestamp().localtime('PST').wday().eq(1), 1, none)"  # productivity_Monday, as a transform
    monday = 1_611_000_000 * 10**9  # 2021-01-18 20:00 UTC, a Monday in Los Angeles
    assert rows(whats_new, timestamps=[monday, monday + 86_400 * 10**9]) == [1.0, NO]


def test_time_zone_given_by_a_variable() -> None:
    assert rows("mktime(tz, 1970, 1, 1)", tz=["UTC+1", "nowhere", "Z"]) == [-3600.0, NO, 0.0]
