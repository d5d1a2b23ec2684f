"""The pure core imports no I/O library and no outer layer (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "orchestrator" / "core"
FORBIDDEN = {"httpx", "anyio", "structlog", "yaml", "sqlite3", "click", "rich", "h11", "socket"}
ALLOWED_INTERNAL = "orchestrator.core"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io(module: Path) -> None:
    """Every core module stays pure: no I/O library, no outer orchestrator layer."""
    for name in _imports(module):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{module.name} imports {name}"
        if top == "orchestrator":
            assert name.startswith(ALLOWED_INTERNAL), f"{module.name} imports {name}"


def test_the_check_sees_the_core() -> None:
    """The walk above has modules to walk (a moved folder would make it vacuous)."""
    assert len(list(CORE.glob("*.py"))) >= 5
