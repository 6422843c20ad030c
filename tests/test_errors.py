"""The exception tree drawn in sitewise_edge/errors.py is the real one: every class named there exists and
derives from the class it is drawn under, and every error class of the project is drawn."""

from __future__ import annotations

import re

import asset_models.errors
import sitewise_edge.errors
import storage.wal
from sitewise_edge.errors import SitewiseEdgeError

HOMES = (sitewise_edge.errors, asset_models.errors, storage.wal)


def drawn_tree() -> list[tuple[int, str]]:
    """(depth, class name) in the order drawn."""
    doc = sitewise_edge.errors.__doc__ or ""
    out = [(0, "SitewiseEdgeError")]
    for line in doc.splitlines():
        m = re.match(r"^    ((?:[│ ]   )*)[├└]── (\w+)", line)  # the docstring indents the tree by 4
        if m:
            out.append((len(m.group(1)) // 4 + 1, m.group(2)))
    return out


def find(name: str) -> type:
    for module in HOMES:
        if hasattr(module, name):
            cls = getattr(module, name)
            assert isinstance(cls, type), name
            return cls
    raise AssertionError(f"{name} is drawn in the tree but defined in none of {[m.__name__ for m in HOMES]}")


def test_the_drawn_tree_is_the_class_tree() -> None:
    parents: list[type] = []
    for depth, name in drawn_tree():
        cls = find(name)
        parents = parents[:depth]
        if parents:
            assert cls.__bases__[0] is parents[-1], f"{name} is drawn under {parents[-1].__name__}"
        parents.append(cls)


def test_every_error_class_is_drawn() -> None:
    drawn = {name for _, name in drawn_tree()}
    defined = {name for module in HOMES for name, obj in vars(module).items()
               if isinstance(obj, type) and issubclass(obj, SitewiseEdgeError) and obj.__module__ == module.__name__}
    assert defined - drawn == set(), f"not in the tree of sitewise_edge/errors.py: {sorted(defined - drawn)}"
