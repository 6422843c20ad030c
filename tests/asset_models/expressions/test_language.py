"""Literals, constants, operators, precedence, falsy rules, indexing and slicing, UFCS (reference §5.1, §5.2, §6.1)."""

from __future__ import annotations

import math

import pytest

from .helpers import NO, one, rows


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("1", 1.0, id="integer"),
    pytest.param("2.0", 2.0, id="double"),
    pytest.param(".9", 0.9, id="leading-dot"),
    pytest.param("-23.1", -23.1, id="negative"),
    pytest.param("7.89e3", 7890.0, id="exponent"),
    pytest.param("3.4E-5", 3.4e-5, id="negative-exponent"),
    pytest.param("'active'", "active", id="single-quoted"),
    pytest.param('"inactive"', "inactive", id="double-quoted"),
    pytest.param("'{\"temp\": 52}'", '{"temp": 52}', id="json-in-single-quotes"),
    pytest.param('"{""temp"": ""high""}"', '{"temp": "high"}', id="doubled-quote-escape"),
    pytest.param("'it''s'", "it's", id="doubled-single-quote"),
    pytest.param("pi", math.pi, id="pi"),
    pytest.param("E", math.e, id="e-case-insensitive"),
    pytest.param("True + FALSE", 1.0, id="true-false"),
    pytest.param("none", NO, id="none-is-no-output"),
])
def test_literals_and_constants(text: str, expected: object) -> None:
    assert one(text) == expected


def test_variable_overrides_constant() -> None:
    assert one("e * 2", e=5.0) == 10.0
    assert one("pi", pi=3.0) == 3.0


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("1 + 2 + \" is three\"", "3 is three", id="concat-after-add"),
    pytest.param("\"n=\" + 2.5", "n=2.5", id="concat-number-right"),
    pytest.param("\"Hello!\"[1]", "e", id="index"),
    pytest.param("\"Hello!\"[-2]", "o", id="negative-index"),
    pytest.param("\"Hello!\"[1:4]", "ell", id="slice"),
    pytest.param("\"Hello!\"[:2]", "He", id="slice-to"),
    pytest.param("\"Hello!\"[3:]", "lo!", id="slice-from"),
    pytest.param("\"Hello!\"[:-4]", "He", id="slice-negative"),
    pytest.param("\"Hello!\"[::2]", "Hlo", id="slice-step"),
    pytest.param("\"Hello!\"[::-1]", "!olleH", id="slice-reverse"),
    pytest.param("\"Hello!\"[1:4:1]", "ell", id="slice-step-one"),
    pytest.param("\"Hello!\"[none:2]", "He", id="slice-none-bound"),
    pytest.param("\"Hello!\"[9]", NO, id="index-out-of-range"),
    pytest.param("\"Hello!\"[1.5]", NO, id="index-not-integer"),
    pytest.param("\"Hello!\"[::0]", NO, id="slice-step-zero"),
    pytest.param("5[0]", NO, id="index-a-number"),
])
def test_strings_indexing_slicing(text: str, expected: object) -> None:
    assert one(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("7 - 2", 5.0, id="sub"),
    pytest.param("6 * 7", 42.0, id="mul"),
    pytest.param("7 / 2", 3.5, id="div"),
    pytest.param("2 ^ 10", 1024.0, id="pow"),
    pytest.param("-7 % 3", -1.0, id="mod-sign-of-left"),
    pytest.param("7 % -3", 1.0, id="mod-positive-left"),
    pytest.param("7.5 % 2", 1.5, id="mod-fraction"),
    pytest.param("1 < 2", 1.0, id="lt"),
    pytest.param("2 > 3", 0.0, id="gt"),
    pytest.param("2 <= 2", 1.0, id="le"),
    pytest.param("1 >= 2", 0.0, id="ge"),
    pytest.param("2 == 2", 1.0, id="eq"),
    pytest.param("0.1 + 0.2 == 0.3", 0.0, id="eq-is-exact"),
    pytest.param("1 != 2", 1.0, id="ne"),
    pytest.param("'a' < 'b'", 1.0, id="string-order"),
    pytest.param("'a' == 'a'", 1.0, id="string-eq"),
    pytest.param("'3' == 3", 0.0, id="eq-different-types"),
    pytest.param("'3' < 3", NO, id="order-different-types"),
    pytest.param("!0", 1.0, id="bang-zero"),
    pytest.param("!''", 1.0, id="bang-empty-string"),
    pytest.param("not 'x'", 0.0, id="not-string"),
    pytest.param("not none", 1.0, id="not-none"),
    pytest.param("2 and 3", 3.0, id="and-true"),
    pytest.param("0 and 3", 0.0, id="and-false"),
    pytest.param("'' and 3", 0.0, id="and-empty-string"),
    pytest.param("none and 3", 0.0, id="and-none"),
    pytest.param("2 or 3", 1.0, id="or-true"),
    pytest.param("0 or 3", 3.0, id="or-false"),
    pytest.param("none or 'x'", "x", id="or-none"),
    pytest.param("0 or none", NO, id="or-gives-none"),
    pytest.param("1 and 'yes'", "yes", id="and-string"),
])
def test_operators(text: str, expected: object) -> None:
    assert one(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("2 + 3 * 4", 14.0, id="mul-before-add"),
    pytest.param("(2 + 3) * 4", 20.0, id="parentheses"),
    pytest.param("2 ^ 3 ^ 2", 512.0, id="pow-right-assoc"),
    pytest.param("-2 ^ 2", -4.0, id="pow-before-unary-minus"),
    pytest.param("2 ^ -1", 0.5, id="unary-in-exponent"),
    pytest.param("10 - 4 - 3", 3.0, id="sub-left-assoc"),
    pytest.param("64 / 4 / 2", 8.0, id="div-left-assoc"),
    pytest.param("7 % 4 * 2", 6.0, id="mod-same-level-as-mul"),
    pytest.param("1 + 2 < 4", 1.0, id="add-before-compare"),
    pytest.param("1 < 2 == 1", 1.0, id="compare-left-assoc"),
    pytest.param("1 or 0 and 0", 1.0, id="and-before-or"),
    pytest.param("0 and 1 or 5", 5.0, id="and-then-or"),
    pytest.param("!0 + 1", 2.0, id="bang-before-add"),
    pytest.param("not 0 == 1", 1.0, id="not-binds-tighter-than-compare"),
    pytest.param("- - 3", 3.0, id="double-minus"),
    pytest.param("2 * -x", -6.0, id="unary-minus-variable"),
])
def test_precedence(text: str, expected: float) -> None:
    assert one(text, x=3.0) == expected


@pytest.mark.parametrize(("text", "x"), [
    pytest.param("x / 0", 1.0, id="division-by-zero"),
    pytest.param("0 / x", 0.0, id="zero-over-zero"),
    pytest.param("x % 0", 1.0, id="mod-zero"),
    pytest.param("log(0)", 0.0, id="log-zero"),
    pytest.param("sqrt(-1)", 0.0, id="sqrt-negative"),
    pytest.param("\"hello\" + \" world\" + x", 0.0, id="string-for-double-property"),
    pytest.param("jp('{\"values\":[3,6,7]}', '$.values')", 0.0, id="array-result"),
    pytest.param("10 ^ 400", 0.0, id="overflow-pow"),
    pytest.param("x * 1e308 * 10", 1.0, id="overflow-mul"),
    pytest.param("(-8) ^ (1/3)", 0.0, id="complex-pow"),
    pytest.param("'a' - 1", 0.0, id="string-minus"),
    pytest.param("-'a'", 0.0, id="negate-string"),
    pytest.param("x * 'a'", 1.0, id="mul-string"),
    pytest.param("1 / (x * 1e308 * 10)", 1.0, id="hidden-overflow"),
])
def test_no_output(text: str, x: float) -> None:
    assert one(text, output_type="DOUBLE", x=x) == NO


def test_string_result_kept_for_string_property() -> None:
    assert one('"hello" + " world"') == "hello world"
    assert one('"hello" + " world"', output_type="STRING") == "hello world"
    assert one("1 + 2", output_type="STRING") == "3"
    assert one("0.5", output_type="STRING") == "0.5"


def test_concatenation_limit() -> None:
    assert one("s + s", s="a" * 512) == "a" * 1024
    assert one("s + s + 'b'", s="a" * 512) == NO


def test_number_to_string_rendering() -> None:
    assert one("'' + 1e20") == "1.0E20"
    assert one("'' + 0.00001") == "1.0E-5"
    assert one("'' + 12345.5") == "12345.5"
    assert one("'' + -3") == "-3"


def test_none_drops_rows_and_falsy_rules_consume_it() -> None:
    assert rows("if(x > 1, x, none)", x=[0.0, 2.0]) == [NO, 2.0]
    assert rows("if(x > 1, x, none) or 7", x=[0.0, 2.0]) == [7.0, 1.0]
    assert rows("not if(x > 1, x, none)", x=[0.0, 2.0]) == [1.0, 0.0]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("x.abs()", 3.0, id="no-extra-args"),
    pytest.param("x.pow(2)", 9.0, id="extra-arg"),
    pytest.param("x.abs().sqrt()", math.sqrt(3.0), id="chain"),
    pytest.param("(x * 2).abs()", 6.0, id="on-parenthesised"),
    pytest.param("2.5.floor()", 2.0, id="on-number"),
    pytest.param("'AbC'.lower().upper()", "ABC", id="on-string"),
    pytest.param("x.ABS()", 3.0, id="case-insensitive-name"),
])
def test_ufcs(text: str, expected: object) -> None:
    assert one(text, x=-3.0) == expected


def test_ufcs_chain_equals_nested_call() -> None:
    docs = ['{"status":"FAILED"}', '{"status":"ok"}', '{"status":"Failure"}', "not json"]
    a = rows("message.jp('$.status').lower().contains('fail')", message=docs)
    b = rows("contains(lower(jp(message, '$.status')),'fail')", message=docs)
    assert a == b == [1.0, 0.0, 1.0, NO]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("f'abc{1+2: \"f\"}d'", "abc3.000000d", id="doc-example"),
    pytest.param("f'abc{1+2: \"f\"}d' == join('', \"abc\", format(1+2: \"f\"), 'd')", 1.0, id="join-equivalence"),
    pytest.param("f'{x}'", "-3", id="plain-field"),
    pytest.param("f'x={x: \".1f\"} and {x * 2}'", "x=-3.0 and -6", id="two-fields"),
    pytest.param("f'{{literal}}'", "{literal}", id="escaped-braces"),
    pytest.param("f\"{'a' + 'b'}\"", "ab", id="string-inside-field"),
    pytest.param("f''", "", id="empty"),
    pytest.param("f'{none}'", NO, id="none-field"),
])
def test_fstrings(text: str, expected: object) -> None:
    assert one(text, x=-3.0) == expected
