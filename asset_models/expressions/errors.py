"""Diagnostics for expressions: one exception, pointing into the source text."""

from __future__ import annotations

from sitewise_edge.errors import ModelError


class ExpressionError(ModelError):
    """An expression that does not compile.

    ``expression`` is the full text, ``position`` a 0-based character offset into it and ``message`` what is
    wrong there. ``str()`` renders a caret under the column::

        unknown function 'foo' at column 8:
          9/5 * foo(x)
                ^
    """

    def __init__(self, expression: str, position: int, message: str) -> None:
        self.expression = expression
        self.position = max(0, min(position, len(expression)))
        self.message = message
        super().__init__(self.render())

    @property
    def column(self) -> int:
        """1-based column of the problem."""
        return self.position + 1

    def render(self) -> str:
        line = self.expression.replace("\n", " ").replace("\t", " ")
        return f"{self.message} at column {self.column}:\n  {line}\n  {' ' * self.position}^"
