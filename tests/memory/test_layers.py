"""memory sits below agents (DESIGN "Layout"): nothing in memory/ imports agents, studio or amodal_site,
not even under TYPE_CHECKING. What it needs of the agent comes through memory.config."""

from __future__ import annotations

import ast
from pathlib import Path

import memory

HIGHER = {"agents", "studio", "amodal_site"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_memory_imports_no_higher_layer():
    files = sorted(Path(memory.__file__).parent.rglob("*.py"))
    assert len(files) > 10
    offending = {str(path): sorted(imported_roots(path) & HIGHER) for path in files}
    assert {path: roots for path, roots in offending.items() if roots} == {}
