"""Tokens of the expression language.

Numbers (``1``, ``2.0``, ``.9``, ``7.89e3``, ``3.4E-5``; a leading minus is the unary operator), strings in
single or double quotes where the only escape is the doubled delimiter (``"{""a"": 1}"``), f-strings
(``f'..{expr: "fmt"}..'``, kept raw here and parsed by the parser), identifiers, the keywords ``and``, ``or``,
``not`` (case-insensitive) and the operators ``+ - * / % ^ < > <= >= == != ! ( ) [ ] , : .``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import ExpressionError


class Kind(Enum):
    NUM = "number"
    STR = "string"
    FSTR = "f-string"
    IDENT = "identifier"
    OP = "operator"
    EOF = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # the operator, identifier, or the decoded string / raw f-string body
    pos: int  # offset of the first character (in the whole expression)
    end: int  # offset after the last character
    value: float = 0.0  # numbers


KEYWORDS = frozenset({"and", "or", "not"})
_TWO_CHAR = frozenset({"<=", ">=", "==", "!="})
_ONE_CHAR = frozenset("+-*/%^<>!()[],:.")


def _is_ident_start(c: str) -> bool:
    return c.isascii() and (c.isalpha() or c == "_")


def _is_ident_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def read_string(src: str, start: int, text: str) -> tuple[str, int]:
    """Decode the quoted string whose opening quote is at ``start``; return (value, offset after closing quote)."""
    quote = src[start]
    i = start + 1
    parts: list[str] = []
    while True:
        j = src.find(quote, i)
        if j < 0:
            raise ExpressionError(text, start, "unterminated string")
        parts.append(src[i:j])
        if j + 1 < len(src) and src[j + 1] == quote:
            parts.append(quote)
            i = j + 2
            continue
        return "".join(parts), j + 1


def tokenize(src: str, text: str | None = None, offset: int = 0) -> list[Token]:
    """Split ``src`` into tokens ending with an EOF token.

    ``text`` and ``offset`` place ``src`` inside a larger expression (f-string fields) so that positions in
    tokens and diagnostics are offsets into the whole expression.
    """
    full = src if text is None else text
    tokens: list[Token] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
            continue
        start = i
        if c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            i = _scan_number(src, i)
            lexeme = src[start:i]
            try:
                value = float(lexeme)
            except ValueError:
                raise ExpressionError(full, offset + start, f"malformed number '{lexeme}'") from None
            tokens.append(Token(Kind.NUM, lexeme, offset + start, offset + i, value))
        elif c in "'\"":
            value_s, i = read_string(src, i, full) if text is None else _read_inner(src, i, full, offset)
            tokens.append(Token(Kind.STR, value_s, offset + start, offset + i))
        elif c in "fF" and i + 1 < n and src[i + 1] in "'\"":
            body, i = _read_inner(src, i + 1, full, offset)
            tokens.append(Token(Kind.FSTR, body, offset + start, offset + i))
        elif _is_ident_start(c):
            while i < n and _is_ident_char(src[i]):
                i += 1
            word = src[start:i]
            kind = Kind.OP if word.lower() in KEYWORDS else Kind.IDENT
            tokens.append(Token(kind, word.lower() if kind is Kind.OP else word, offset + start, offset + i))
        elif src[i : i + 2] in _TWO_CHAR:
            i += 2
            tokens.append(Token(Kind.OP, src[start:i], offset + start, offset + i))
        elif c in _ONE_CHAR:
            i += 1
            tokens.append(Token(Kind.OP, c, offset + start, offset + i))
        elif c == "=":
            raise ExpressionError(full, offset + start, "unexpected '=' (use '==' to compare)")
        else:
            raise ExpressionError(full, offset + start, f"unexpected character {c!r}")
    tokens.append(Token(Kind.EOF, "", offset + n, offset + n))
    return tokens


def _read_inner(src: str, start: int, full: str, offset: int) -> tuple[str, int]:
    try:
        return read_string(src, start, src)
    except ExpressionError:
        raise ExpressionError(full, offset + start, "unterminated string") from None


def _scan_number(src: str, i: int) -> int:
    n = len(src)
    while i < n and src[i].isdigit():
        i += 1
    # a '.' belongs to the number unless a method name follows it (``2.abs()`` is UFCS)
    if i < n and src[i] == "." and not (i + 1 < n and _is_ident_start(src[i + 1]) and src[i + 1] not in "eE"):
        i += 1
        while i < n and src[i].isdigit():
            i += 1
    if i < n and src[i] in "eE":
        j = i + 1
        if j < n and src[j] in "+-":
            j += 1
        if j < n and src[j].isdigit():
            while j < n and src[j].isdigit():
                j += 1
            i = j
    return i
