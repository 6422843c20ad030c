"""Diagnostics for expressions: one exception, pointing into the source text.

:class:`ExpressionError` lives in the core exception tree (``sitewise_edge/errors.py``, under
``ModelError``) so that every layer can catch it without importing the expression engine;
it is re-exported here, where the engine raises it.
"""

from __future__ import annotations

from sitewise_edge.errors import ExpressionError

__all__ = ["ExpressionError"]
