"""The import directions of the architecture, checked on the source (a wrong import fails here, not in review).

    core        sitewise_edge.{samples, errors, config, files, clock, health}: imports nothing else of the project
    components  connectors, asset_models, storage, sitewise_edge.publish, sitewise_edge.simulators,
                sitewise_edge.models_pull, .tls, .logs, .status: core and themselves
    api         core, asset_models (model types it renders) and itself; never storage, connectors or the runtime
    top         sitewise_edge.runtime, sitewise_edge.cli, sitewise_edge.__main__: anything

Every import counts, also one inside a function or under ``TYPE_CHECKING``: the rule is about what a module
may know, not about when it loads it. ``python tests/test_layering.py`` prints the package import graph.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sitewise_edge", "connectors", "asset_models", "storage", "api")

CORE = frozenset({"sitewise_edge", "sitewise_edge.samples", "sitewise_edge.errors", "sitewise_edge.config",
                  "sitewise_edge.files", "sitewise_edge.clock", "sitewise_edge.health"})
COMPONENTS = ("connectors", "asset_models", "storage", "sitewise_edge.publish", "sitewise_edge.simulators",
              "sitewise_edge.models_pull", "sitewise_edge.tls", "sitewise_edge.logs", "sitewise_edge.status")
TOP = ("sitewise_edge.runtime", "sitewise_edge.cli", "sitewise_edge.__main__")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(path: Path, name: str) -> set[str]:
    """The project modules that a module imports (absolute and relative forms)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    known = project_modules()
    return {m for m in found if m in known and m != name}


def layer_of(module: str) -> str:
    if module in CORE:
        return "core"
    for prefix in TOP:
        if module == prefix or module.startswith(prefix + "."):
            return "top"
    if module == "api" or module.startswith("api."):
        return "api"
    for prefix in COMPONENTS:
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    raise AssertionError(f"{module} belongs to no layer: add it to tests/test_layering.py")


def allowed(importer: str, imported: str) -> bool:
    src, dst = layer_of(importer), layer_of(imported)
    if src == "top" or dst == "core" or src == dst:
        return src != "core" or dst == "core"
    if src == "api":
        return dst == "asset_models"
    return False


def edges() -> dict[tuple[str, str], list[str]]:
    """(importer layer, imported layer) -> the module pairs behind it."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, path in project_modules().items():
        for target in sorted(imports_of(path, name)):
            src, dst = layer_of(name), layer_of(target)
            if src != dst:
                out[(src, dst)].append(f"{name} -> {target}")
    return dict(out)


@pytest.mark.parametrize("name", sorted(project_modules()))
def test_imports_follow_the_layers(name: str) -> None:
    wrong = [t for t in sorted(imports_of(project_modules()[name], name)) if not allowed(name, t)]
    assert not wrong, (f"{name} ({layer_of(name)}) must not import {', '.join(wrong)}: "
                       "see the layers in tests/test_layering.py")


def test_every_module_has_a_layer() -> None:
    for name in project_modules():
        layer_of(name)


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    assert not allowed("storage.store", "api.app")
    assert not allowed("sitewise_edge.config", "connectors.base")
    assert not allowed("api.sitewise.data", "storage.query")
    assert allowed("api.sitewise.data", "asset_models.registry")
    assert allowed("sitewise_edge.runtime.gateway", "storage.store")
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from storage.store import Store\n    import api.app\n")
    assert {"storage.store", "api.app"} <= imports_of(source, "asset_models.x")


CLOCK_READS = {("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "monotonic_ns"),
               ("datetime", "now"), ("datetime", "utcnow")}
CLOCK_OWNERS = ("sitewise_edge.clock", "sitewise_edge.simulators")  # the simulators are the plant's own clock


def clock_reads(path: Path) -> list[int]:
    """Lines that read the machine's clock directly (``time.time()``, ``datetime.now()``, ...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in CLOCK_READS]


def test_only_the_clock_module_reads_the_clock() -> None:
    """Components take a ``sitewise_edge.clock.Clock`` (the runtime passes its own), so tests can drive time."""
    wrong = [f"{name}:{line}" for name, path in project_modules().items()
             if not name.startswith(CLOCK_OWNERS) for line in clock_reads(path)]
    assert not wrong, f"direct clock reads (use a Clock): {wrong}"


if __name__ == "__main__":
    for (src, dst), pairs in sorted(edges().items()):
        print(f"{src:24} -> {dst:24} {len(pairs):3}  e.g. {pairs[0]}")
    sys.exit(0)
