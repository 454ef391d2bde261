"""No function of the product code (the Lambda code, the CDK stack, the operator CLI and the
simulator's summary it prints) has more than 20 decision points: past that a function is read
as a maze, and its parts deserve names.

A decision point is each ``if``/``elif``, each ``else`` of an if/for/while that is not an elif,
each conditional expression, each ``for``/``while``/``async for``, each ``except`` handler, each
``match`` case, each ``if`` filter of a comprehension, and each extra operand of an
``and``/``or`` (``a and b and c`` adds two). A nested function (or a method of a nested class)
is counted on its own, not in its parent; a lambda belongs to the function it is written in."""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = (
    ROOT / "functions",
    ROOT / "infra" / "smart_vault_infra",
    ROOT / "infra" / "smart_vault_cli",
    ROOT / "infra" / "smart_vault_sim" / "summary.py",  # what `smart-vault simulate` prints
)
LIMIT = 20

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _is_elif(node: ast.If) -> bool:
    """An ``elif`` parses as an If alone in its parent's ``orelse``, starting at the parent's
    column (``else:`` then an indented ``if`` starts deeper, and is an else)."""
    return len(node.orelse) == 1 and (
        isinstance(inner := node.orelse[0], ast.If) and inner.col_offset == node.col_offset
    )


def _points(node: ast.AST) -> int:
    """The decision points of one node itself, not of its children."""
    if isinstance(node, ast.If):
        return 1 + (1 if node.orelse and not _is_elif(node) else 0)
    if isinstance(node, ast.For | ast.AsyncFor | ast.While):
        return 1 + (1 if node.orelse else 0)
    if isinstance(node, ast.IfExp | ast.ExceptHandler | ast.match_case):
        return 1
    if isinstance(node, ast.comprehension):
        return len(node.ifs)
    if isinstance(node, ast.BoolOp):
        return len(node.values) - 1
    return 0


def branches(function: FunctionNode) -> int:
    """The decision points of a function's own body, its nested functions left out."""
    count = 0
    pending: list[ast.AST] = list(ast.iter_child_nodes(function))
    while pending:
        node = pending.pop()
        if isinstance(node, FunctionNode):
            continue
        count += _points(node)
        pending.extend(ast.iter_child_nodes(node))
    return count


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, FunctionNode]]:
    """Every function and method with its dotted name, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, FunctionNode):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def _counts() -> dict[str, int]:
    found = {}
    for tree in TREES:
        for path in [tree] if tree.is_file() else sorted(tree.rglob("*.py")):
            where = path.relative_to(ROOT)
            for name, node in functions(ast.parse(path.read_text())):
                found[f"{where}:{name}"] = branches(node)
    return found


def _count_of(source: str) -> dict[str, int]:
    return {name: branches(node) for name, node in functions(ast.parse(textwrap.dedent(source)))}


def test_the_counter_counts_every_kind_of_decision_point_once() -> None:
    source = """
        def outer(items, flag):
            if flag and items or not items:      # if 1, and/or 2
                pass
            elif flag:                           # elif 1
                pass
            else:                                # else 1
                if items:                        # if 1 (an else holding an if, not an elif)
                    pass
            value = 1 if flag else 2             # conditional expression 1
            for item in items:                   # for 1
                pass
            else:                                # else of a for 1
                pass
            while flag:                          # while 1
                flag = False
            try:
                pass
            except KeyError:                     # handler 1
                pass
            except ValueError:                   # handler 1
                pass
            match value:
                case 1:                          # case 1
                    pass
                case _:                          # case 1
                    pass
            kept = [i for i in items if i if i > 1]  # comprehension filters 2
            check = lambda x: x if x else None   # conditional in a lambda 1, the parent's

            def inner(x):                        # counted on its own
                return x and x and x             # and 2

            return kept, check, inner
    """
    assert _count_of(source) == {"outer": 17, "outer.inner": 2}


def test_the_counter_names_methods_by_their_class() -> None:
    source = """
        class Plan:
            def keep(self, n):
                return [i for i in range(n) if i]
    """
    assert _count_of(source) == {"Plan.keep": 1}


def test_no_product_function_has_more_than_twenty_decision_points() -> None:
    counts = _counts()
    assert len(counts) > 100, "the walk found too few functions: are the trees still there?"
    offenders = sorted(f"{name} {count}" for name, count in counts.items() if count > LIMIT)
    assert not offenders, f"functions over {LIMIT} decision points:\n" + "\n".join(offenders)
