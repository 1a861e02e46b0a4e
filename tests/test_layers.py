"""The package's layers import only downwards, and no module imports itself back through another."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "customerio_mcp"
LAYERS = ["settings", "errors", "text_safety", "customerio", "tools", "serving", "cli"]
"""Lowest first. ``settings``, ``errors`` and ``text_safety`` are the foundation every layer may use."""
FOUNDATION = {"settings", "errors", "text_safety"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every package module ``path`` imports, at run time or for type checking alike."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("customerio_mcp"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                imported.add(candidate if candidate in modules else node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names if alias.name in modules)
    return imported


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_layers_import_only_downwards() -> None:
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        own = _layer(module)
        if own not in LAYERS:
            continue
        for target in _imports(path, modules):
            theirs = _layer(target)
            if theirs is None or theirs == own or (theirs in FOUNDATION and own not in FOUNDATION):
                continue
            if theirs in LAYERS and LAYERS.index(theirs) > LAYERS.index(own):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for target in graph.get(node, ()):
            if target == path[0]:
                cycles.append(" -> ".join([*path, target]))
            elif target not in path and target > path[0]:
                visit(target, [*path, target])

    for start in sorted(graph):
        visit(start, [start])
    assert cycles == []


def test_settings_know_nothing_of_tools_and_client_and_error_mapping_are_apart() -> None:
    modules = _modules()
    assert not {m for m in _imports(modules["customerio_mcp.settings"], modules) if ".tools" in m}
    assert "customerio_mcp.customerio.client" not in _imports(
        modules["customerio_mcp.customerio.error_mapping"], modules
    )
