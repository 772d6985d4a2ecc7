"""The shape issue 9 set for plugins/: small functions, files a reader can hold, and a tree
that shows what runs where (module_utils never imports controller-only plugin_utils)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Tuple

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
MAX_FUNCTION_LINES = 80
MAX_FILE_LINES = 800
PYTHON_FILES = sorted(PLUGINS.rglob("*.py"))


def functions(tree: ast.AST) -> Iterator[Tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda path: str(path.relative_to(PLUGINS)))
def test_no_plugin_file_is_longer_than_800_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_FILE_LINES


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda path: str(path.relative_to(PLUGINS)))
def test_no_plugin_function_is_longer_than_80_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    too_long = [(name, length) for name, length in functions(tree) if length > MAX_FUNCTION_LINES]
    assert too_long == []


@pytest.mark.parametrize(
    "path", sorted((PLUGINS / "module_utils").glob("*.py")), ids=lambda path: path.name
)
def test_module_utils_never_imports_controller_only_plugin_utils(path: Path) -> None:
    assert "plugins.plugin_utils" not in path.read_text(encoding="utf-8")
