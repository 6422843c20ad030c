"""The syntax tree. Every node carries ``pos``, the 0-based offset of its first character in the expression."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Num:
    value: float
    pos: int


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    pos: int


@dataclass(frozen=True, slots=True)
class NoneLit:
    """The ``none`` constant: no value (drops the data point unless a falsy rule consumes it)."""

    pos: int


@dataclass(frozen=True, slots=True)
class Name:
    """An identifier before resolution: a variable, or a constant (``pi``, ``e``, ``true``, ``false``, ``none``)."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Var:
    """A resolved variable."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-", "!", "not"
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # "+", "-", "*", "/", "%", "^", "<", ">", "<=", ">=", "==", "!=", "and", "or"
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Index:
    target: Node
    index: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Slice:
    target: Node
    start: Node | None
    stop: Node | None
    step: Node | None
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; ``name`` is lower-cased. ``ufcs`` is true for ``x.f(...)`` (then ``args[0]`` is ``x``)."""

    name: str
    args: tuple[Node, ...]
    pos: int
    ufcs: bool = False
    from_elif: bool = False  # an if() built from .elif(): the open else-branch of a chain


@dataclass(frozen=True, slots=True)
class Format:
    """``format(expr: "spec")`` or an f-string field ``{expr: "spec"}``; ``spec`` None means plain conversion."""

    expr: Node
    spec: str | None
    pos: int
    call: bool = False  # written as format(...) (counts toward the function limit), not an f-string field


@dataclass(frozen=True, slots=True)
class FString:
    """``f'...{expr}...'``: literal parts are :class:`Str`, fields are :class:`Format`."""

    parts: tuple[Node, ...]
    pos: int


Node = Num | Str | NoneLit | Name | Var | Unary | Binary | Index | Slice | Call | Format | FString


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-nodes of ``node``, in source order."""
    match node:
        case Unary(operand=o):
            return (o,)
        case Binary(left=a, right=b):
            return (a, b)
        case Index(target=t, index=i):
            return (t, i)
        case Slice(target=t, start=a, stop=b, step=c):
            return tuple(n for n in (t, a, b, c) if n is not None)
        case Call(args=args):
            return args
        case Format(expr=e):
            return (e,)
        case FString(parts=parts):
            return parts
    return ()


def walk(node: Node) -> list[Node]:
    """Every node of the tree, pre-order."""
    out: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(children(n)))
    return out
