"""The layers of docs/architecture.md and every import between them, relative ones too.

Each module of `orchestrator` is walked with `ast` (imports inside functions included,
`from . import x` resolved against the module's package); every edge between two layers
must be one the document allows. The pure core also imports no I/O library.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "orchestrator"

ALLOWED: dict[str, frozenset[str]] = {
    "base": frozenset(),  # orchestrator/__init__.py (the version) and errors.py
    "core": frozenset(),
    "config": frozenset({"core", "base"}),
    "ontap": frozenset({"core", "base"}),
    "ledger": frozenset({"core", "base"}),
    "observe": frozenset({"core", "ledger", "base"}),
    "simulator": frozenset(),  # a fake ONTAP: it knows nothing of the tool it fakes
    "engine": frozenset({"core", "ontap", "ledger", "observe", "base"}),
    "commands": frozenset(
        {"cli", "config", "core", "engine", "ledger", "observe", "ontap", "simulator", "base"}
    ),
    "cli": frozenset({"commands", "core", "engine", "observe", "base"}),
    "entry": frozenset({"cli"}),  # `python -m orchestrator` and `-m orchestrator.simulator`
}
"""Which layers a layer may import (itself always). `commands -> cli`: demo replays the
real command line."""

CORE_FORBIDDEN = {"httpx", "anyio", "structlog", "yaml", "sqlite3", "click", "rich", "h11"}
CORE_FORBIDDEN |= {"socket", "subprocess", "ssl", "importlib"}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield ".".join(parts), path


def layer(module: str) -> str:
    """The layer of a dotted module name (`orchestrator.engine.pool` -> `engine`)."""
    parts = module.split(".")
    if parts[-1] == "__main__":
        return "entry"
    if len(parts) == 1 or parts[1] in {"__init__", "errors"}:
        return "base"
    return parts[1]


def imports(module: str, path: Path) -> set[str]:
    """Every module `module` imports, relative imports resolved to absolute names."""
    is_package = path.name == "__init__.py"
    package = module.rsplit(".", 1)[0] if not is_package else module.removesuffix(".__init__")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(_from_names(node, package))
    return names


def _from_names(node: ast.ImportFrom, package: str) -> set[str]:
    if node.level == 0:
        return {node.module or ""}
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    if node.module:
        return {f"{base}.{node.module}"}
    return {f"{base}.{alias.name}" for alias in node.names}  # `from . import x`


MODULES = list(_modules())


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_every_import_between_layers_is_an_allowed_edge(module: str, path: Path) -> None:
    own = layer(module)
    for name in imports(module, path):
        if name.split(".")[0] != "orchestrator" or layer(name) == own:
            continue
        assert layer(name) in ALLOWED[own], f"{module} ({own}) imports {name} ({layer(name)})"


@pytest.mark.parametrize(
    ("module", "path"),
    [(m, p) for m, p in MODULES if layer(m) == "core"],
    ids=[m for m, _ in MODULES if layer(m) == "core"],
)
def test_core_module_imports_no_io(module: str, path: Path) -> None:
    """Every core module stays pure: no I/O library, no dynamic import."""
    for name in imports(module, path):
        assert name.split(".")[0] not in CORE_FORBIDDEN, f"{module} imports {name}"


def test_the_walk_sees_every_layer_and_resolves_relative_imports(tmp_path: Path) -> None:
    """Not vacuous: each layer has modules, and `from ..x import y` is resolved (a relative
    import from the core into the engine would be caught)."""
    assert {layer(m) for m, _ in MODULES} == set(ALLOWED)
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from ..engine import pool\nfrom . import waves\n", encoding="utf-8")
    found = imports("orchestrator.core.sneaky", sneaky)
    assert found == {"orchestrator.engine", "orchestrator.core.waves"}
    assert layer("orchestrator.engine") not in ALLOWED["core"]
    package = tmp_path / "__init__.py"
    package.write_text("from .store import Ledger\n", encoding="utf-8")
    assert imports("orchestrator.ledger.__init__", package) == {"orchestrator.ledger.store"}


ENGINE_LEDGER_TYPES = frozenset({"orchestrator.ledger.records"})
"""The only ledger module the engine imports: the records it reads and writes. The rest
of storage it reaches through its own port, `engine/store.py::RunStore` (awaited), which
the commands hand it (`ledger.async_ledger.AsyncLedger`): no blocking `Ledger` call can be
written into the engine."""


@pytest.mark.parametrize(
    ("module", "path"),
    [(m, p) for m, p in MODULES if layer(m) == "engine"],
    ids=[m for m, _ in MODULES if layer(m) == "engine"],
)
def test_the_engine_reaches_storage_only_through_its_port(module: str, path: Path) -> None:
    for name in imports(module, path):
        if layer(name) == "ledger":
            assert name in ENGINE_LEDGER_TYPES, f"{module} imports {name}: use RunStore"


def test_the_port_rule_catches_an_engine_import_of_the_ledger(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from ..ledger.store import Ledger\n", encoding="utf-8")
    (name,) = imports("orchestrator.engine.sneaky", sneaky)
    assert layer(name) == "ledger" and name not in ENGINE_LEDGER_TYPES
