"""The import graph of the four packages: no cycle anywhere, the Lambda code imports nothing of
infra/, and the emulator never imports the operator CLI (what both need lives below both).
Imports under ``if TYPE_CHECKING:`` are annotations only and are left out; imports inside
functions count (a lazy import is still an arrow)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "smart_vault": ROOT / "functions" / "smart_vault",
    "smart_vault_sim": ROOT / "infra" / "smart_vault_sim",
    "smart_vault_cli": ROOT / "infra" / "smart_vault_cli",
    "smart_vault_infra": ROOT / "infra" / "smart_vault_infra",
}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = (package, *path.relative_to(folder).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    annotations_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                names.add(name if name in MODULES else node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n in MODULES}


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in GRAPH[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    return found


def _arrows(source: str, target: str) -> list[tuple[str, str]]:
    return sorted(
        (a, b) for a, deps in GRAPH.items() for b in deps if a.split(".")[0] == source and b.split(".")[0] == target
    )


def test_the_graph_is_read_from_every_package():
    assert {m.split(".")[0] for m in MODULES} == set(PACKAGES)
    assert GRAPH["smart_vault_sim.simulator"] >= {"smart_vault_sim.drills", "smart_vault_sim.preflight"}


def test_no_module_imports_itself_back_through_others():
    assert _cycles() == []


def test_the_emulator_never_imports_the_operator_cli():
    assert _arrows("smart_vault_sim", "smart_vault_cli") == []


def test_the_lambda_code_imports_nothing_of_infra():
    for package in ("smart_vault_sim", "smart_vault_cli", "smart_vault_infra"):
        assert _arrows("smart_vault", package) == []


# -- the Lambda code's capability layers, as docs/decisions.md names them ---------------------

DECISIONS = ROOT / "docs" / "decisions.md"


def _layers() -> dict[str, int]:
    """The ```layers block of docs/decisions.md: one line per layer, bottom first, as
    ``<rank> <name>: <module or package> ...``; a package imports only its own modules and the
    layers below it."""
    block = DECISIONS.read_text().split("```layers\n", 1)[1].split("```", 1)[0]
    ranks = {}
    for line in block.splitlines():
        rank, _, members = line.partition(" ")
        ranks.update({member: int(rank) for member in members.split(":", 1)[1].split()})
    return ranks


LAYERS = _layers()


def _unit(module: str) -> str:
    """The layer member a Lambda module belongs to: its package under smart_vault, or itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_lambda_module_has_a_layer():
    units = {_unit(m) for m in MODULES if m.startswith("smart_vault.")}
    assert units - set(LAYERS) == set()
    assert set(LAYERS) - units == set()


def test_no_capability_imports_one_beside_or_above_it():
    upward = [
        (a, b)
        for a, deps in GRAPH.items()
        if a.startswith("smart_vault.")
        for b in deps
        if b.startswith("smart_vault.")
        and _unit(a) != _unit(b)
        and LAYERS[_unit(b)] >= LAYERS[_unit(a)]
        and LAYERS[_unit(a)] > 0
    ]
    assert upward == []


def test_the_shared_ground_imports_no_capability():
    ground = {unit for unit, rank in LAYERS.items() if rank == 0}
    upward = sorted(
        (a, b)
        for a, deps in GRAPH.items()
        if a.startswith("smart_vault.") and _unit(a) in ground
        for b in deps
        if b.startswith("smart_vault.") and _unit(b) not in ground
    )
    assert upward == []


def test_the_capabilities_are_packages():
    for unit, rank in LAYERS.items():
        if rank > 0:
            assert (PACKAGES["smart_vault"] / unit / "__init__.py").is_file(), unit
