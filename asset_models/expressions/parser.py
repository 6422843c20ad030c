"""A Pratt parser from tokens to the syntax tree (no ``eval``, no Python ``ast`` of user text).

Precedence, loosest first (all binary operators left-associative except ``^``)::

    or  <  and  <  comparisons (< > <= >= == !=)  <  + -  <  * / %  <  unary - ! not  <  ^  <  postfix

Postfix: calls ``f(...)``, UFCS ``x.f(...)``, indexing ``s[i]`` and slicing ``s[a:b:c]``.
``-2^2`` is ``-(2^2)``; ``2^-1`` is allowed; ``2^3^2`` is ``2^(3^2)``.

Nesting (parentheses, arguments, unary operators, ``^``) is limited to ``MAX_DEPTH`` levels: the
parser recurses once per level, and 300 nested parentheses must be an ExpressionError, not a
RecursionError. The tree it returns is at most ``MAX_TREE_DEPTH`` deep (a chain ``1+1+...+1`` nests
one level per operator), as the compiler recurses once per level.
"""

from __future__ import annotations

from .ast import Binary, Call, Format, FString, Index, Name, Node, Num, Slice, Str, Unary, children
from .errors import ExpressionError
from .lexer import Kind, Token, tokenize

_BINARY: dict[str, int] = {
    "or": 1,
    "and": 2,
    "<": 3, ">": 3, "<=": 3, ">=": 3, "==": 3, "!=": 3,
    "+": 4, "-": 4,
    "*": 5, "/": 5, "%": 5,
}
_UNARY_LEVEL = 6
MAX_DEPTH = 100
MAX_TREE_DEPTH = 256


def parse(text: str) -> Node:
    """Parse a whole expression into its syntax tree."""
    p = _Parser(text, tokenize(text))
    tree = p.expression(0)
    p.expect_eof()
    _check_depth(text, tree)
    return tree


def _check_depth(text: str, tree: Node) -> None:
    """ExpressionError for a tree deeper than MAX_TREE_DEPTH: the compiler recurses once per level."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            raise ExpressionError(text, node.pos, f"nested deeper than {MAX_TREE_DEPTH} operations")
        stack.extend((child, depth + 1) for child in children(node))


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # --- token helpers ---------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def at(self, op: str) -> bool:
        return self.tok.kind is Kind.OP and self.tok.text == op

    def error(self, message: str, pos: int | None = None) -> ExpressionError:
        return ExpressionError(self.text, self.tok.pos if pos is None else pos, message)

    def expect(self, op: str, context: str) -> Token:
        if not self.at(op):
            raise self.error(f"expected '{op}' {context}, found {_describe(self.tok)}")
        return self.advance()

    def expect_eof(self) -> None:
        if self.tok.kind is not Kind.EOF:
            if self.at(")"):
                raise self.error("unbalanced ')': no matching '('")
            raise self.error(f"unexpected {_describe(self.tok)}")

    # --- grammar ---------------------------------------------------------------------------------------
    def expression(self, min_level: int) -> Node:
        left = self.unary()
        while self.tok.kind is Kind.OP and self.tok.text in _BINARY:
            level = _BINARY[self.tok.text]
            if level <= min_level:
                break
            op = self.advance()
            right = self.expression(level)
            left = Binary(op.text, left, right, op.pos)
        return left

    def unary(self) -> Node:
        # every operand passes here: the one place that bounds the parser's own recursion
        if self.depth >= MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> Node:
        if self.tok.kind is Kind.OP and self.tok.text in ("-", "!", "not"):
            op = self.advance()
            operand = self.unary()
            if op.text == "-" and isinstance(operand, Num) and operand.pos == op.end:
                return Num(-operand.value, op.pos)  # ``-23.1`` is a literal
            return Unary(op.text, operand, op.pos)
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.at("^"):
            op = self.advance()
            exponent = self.unary()  # right-associative, and ``2^-1`` works
            return Binary("^", base, exponent, op.pos)
        return base

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.at("["):
                node = self.subscript(node)
            elif self.at("."):
                self.advance()
                name = self.tok
                if name.kind is not Kind.IDENT:
                    raise self.error(f"expected a function name after '.', found {_describe(name)}")
                self.advance()
                if not self.at("("):
                    raise self.error(f"expected '(' after '.{name.text}': only functions can follow '.'")
                args = self.arguments(name)
                node = self.ufcs(name, node, args)
            else:
                return node

    def ufcs(self, name: Token, receiver: Node, args: tuple[Node, ...]) -> Node:
        lname = name.text.lower()
        if lname == "elif":
            if len(args) not in (2, 3):
                raise ExpressionError(self.text, name.pos, f"elif() takes 2 or 3 arguments ({len(args)} given)")
            return _attach_elif(self.text, receiver, Call("if", args, name.pos, from_elif=True), name.pos)
        return Call(lname, (receiver, *args), name.pos, ufcs=True)

    def subscript(self, target: Node) -> Node:
        open_ = self.advance()
        parts: list[Node | None] = [None]
        colons = 0
        while not self.at("]"):
            if self.tok.kind is Kind.EOF:
                raise self.error("unbalanced '[': expected ']'", open_.pos)
            if self.at(":"):
                colons += 1
                if colons > 2:
                    raise self.error("a slice has at most three parts: s[start:stop:step]")
                self.advance()
                parts.append(None)
                continue
            if parts[-1] is not None:
                raise self.error(f"expected ':' or ']' in subscript, found {_describe(self.tok)}")
            parts[-1] = self.expression(0)
        self.advance()
        if colons == 0:
            if parts[0] is None:
                raise ExpressionError(self.text, open_.pos, "empty subscript: expected an index")
            return Index(target, parts[0], open_.pos)
        parts += [None] * (3 - len(parts))
        return Slice(target, parts[0], parts[1], parts[2], open_.pos)

    def primary(self) -> Node:
        t = self.tok
        if t.kind is Kind.NUM:
            self.advance()
            return Num(t.value, t.pos)
        if t.kind is Kind.STR:
            self.advance()
            return Str(t.text, t.pos)
        if t.kind is Kind.FSTR:
            self.advance()
            return self.fstring(t)
        if t.kind is Kind.IDENT:
            self.advance()
            if self.at("("):
                return self.call(t)
            return Name(t.text, t.pos)
        if self.at("("):
            self.advance()
            inner = self.expression(0)
            if not self.at(")"):
                if self.tok.kind is Kind.EOF:
                    raise self.error("unbalanced '(': expected ')'", t.pos)
                raise self.error(f"expected ')' to close '(' at column {t.pos + 1}, found {_describe(self.tok)}")
            self.advance()
            return inner
        if t.kind is Kind.EOF:
            raise self.error("unexpected end of expression")
        raise self.error(f"unexpected {_describe(t)}")

    def call(self, name: Token) -> Node:
        lname = name.text.lower()
        if lname == "format" and self._colon_form():
            self.advance()
            expr = self.expression(0)
            spec = self.format_spec()
            self.expect(")", "to close format(")
            return Format(expr, spec, name.pos, call=True)
        args = self.arguments(name)
        if lname == "elif":
            raise ExpressionError(self.text, name.pos, "elif() must be called with UFCS: if(c1, a).elif(c2, b, c)")
        return Call(lname, args, name.pos)

    def _colon_form(self) -> bool:
        """Whether ``format(`` at the cursor continues as ``format(expr: "spec")``."""
        depth = 0
        for t in self.tokens[self.i :]:
            if t.kind is Kind.OP and t.text in "([":
                depth += 1
            elif t.kind is Kind.OP and t.text in ")]":
                depth -= 1
                if depth == 0:
                    return False
            elif depth == 1 and t.kind is Kind.OP and t.text in (":", ","):
                return t.text == ":"
            elif t.kind is Kind.EOF:
                return False
        return False

    def format_spec(self) -> str:
        self.expect(":", "before the format")
        if self.tok.kind is not Kind.STR:
            raise self.error(f"expected a quoted format such as \"d\" or \".2f\", found {_describe(self.tok)}")
        return self.advance().text

    def arguments(self, name: Token) -> tuple[Node, ...]:
        open_ = self.expect("(", f"after {name.text}")
        args: list[Node] = []
        if self.at(")"):
            self.advance()
            return ()
        while True:
            if self.tok.kind is Kind.EOF:
                raise self.error(f"unbalanced '(' of {name.text}(: expected ')'", open_.pos)
            args.append(self.expression(0))
            if self.at(","):
                self.advance()
                continue
            if self.at(")"):
                self.advance()
                return tuple(args)
            if self.tok.kind is Kind.EOF:
                raise self.error(f"unbalanced '(' of {name.text}(: expected ')'", open_.pos)
            raise self.error(f"expected ',' or ')' in the arguments of {name.text}(), found {_describe(self.tok)}")

    def fstring(self, t: Token) -> Node:
        body, base = t.text, t.pos + 2  # after f and the quote
        parts: list[Node] = []
        literal: list[str] = []
        lit_start = 0
        i = 0
        while i < len(body):
            if not literal:
                lit_start = i
            c = body[i]
            if c in "{}" and body[i : i + 2] == c * 2:
                literal.append(c)
                i += 2
                continue
            if c == "}":
                raise ExpressionError(self.text, base + i, "single '}' in f-string (write '}}')")
            if c != "{":
                literal.append(c)
                i += 1
                continue
            if literal:
                parts.append(Str("".join(literal), base + lit_start))
                literal = []
            end = _field_end(body, i + 1)
            if end < 0:
                raise ExpressionError(self.text, base + i, "unterminated '{' in f-string")
            parts.append(self.field(body[i + 1 : end], base + i + 1))
            i = end + 1
        if literal or not parts:
            parts.append(Str("".join(literal), base + (lit_start if literal else len(body))))
        return FString(tuple(parts), t.pos)

    def field(self, src: str, offset: int) -> Node:
        if not src.strip():
            raise ExpressionError(self.text, offset, "empty expression in f-string")
        sub = _Parser(self.text, tokenize(src, self.text, offset))
        expr = sub.expression(0)
        spec = sub.format_spec() if sub.at(":") else None
        sub.expect_eof()
        return Format(expr, spec, offset)


def _field_end(body: str, i: int) -> int:
    """Offset of the '}' closing an f-string field that starts at ``i``, skipping quoted strings."""
    while i < len(body):
        c = body[i]
        if c in "'\"":
            j = body.find(c, i + 1)
            if j < 0:
                return -1
            i = j + 1
            continue
        if c == "}":
            return i
        i += 1
    return -1


def _attach_elif(text: str, receiver: Node, new_if: Call, pos: int) -> Node:
    """Put ``new_if`` in the open else-branch of the if()/elif() chain ``receiver``."""
    if isinstance(receiver, Call) and receiver.name == "if":
        if len(receiver.args) == 2:
            return Call("if", (*receiver.args, new_if), receiver.pos, receiver.ufcs, receiver.from_elif)
        last = receiver.args[2]
        if len(receiver.args) == 3 and isinstance(last, Call) and last.from_elif and last.name == "if":
            attached = _attach_elif(text, last, new_if, pos)
            return Call("if", (*receiver.args[:2], attached), receiver.pos, receiver.ufcs, receiver.from_elif)
    raise ExpressionError(text, pos, "elif() must follow if(condition, result) or another two-argument elif()")


def _describe(t: Token) -> str:
    if t.kind is Kind.EOF:
        return "end of expression"
    if t.kind is Kind.STR:
        return "a string"
    if t.kind is Kind.NUM:
        return f"number {t.text}"
    return f"'{t.text}'"
