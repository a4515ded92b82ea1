"""The code's shape: no import cycle in the package (src/scdrbench), no module over about 400 lines without a
reason written at its top, no function over 80 lines without a reason written at its top."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

SRC = ROOT / "src"
LONG = 450  # "about 400"
REASON = "Longer than 400 lines"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """Every ``scdrbench.*`` import of every module, lazy (in-function) imports included.

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module in modules:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    edges.add(sub if sub in modules else node.module)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_long_modules_say_why():
    for path in _modules().values():
        lines = path.read_text().splitlines()
        if len(lines) > LONG:
            head = "\n".join(lines[:15])
            assert REASON in head, f"{path.relative_to(ROOT)}: {len(lines)} lines, no reason"


LONG_FUNCTION = 80
FUNCTION_REASON = "Longer than 80 lines"


def long_functions(source: str) -> list[tuple[str, int, int]]:
    """``(name, first line, length)`` of every function over :data:`LONG_FUNCTION` lines (its
    docstring included) without a comment saying why: ``# Longer than 80 lines: ...`` between
    its ``def`` and its first statement after the docstring."""
    lines = source.splitlines()
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = node.end_lineno - node.lineno + 1
        if length <= LONG_FUNCTION:
            continue
        body = node.body
        has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        first = body[1] if has_doc and len(body) > 1 else body[0]
        head = "\n".join(lines[node.lineno - 1 : first.lineno - 1])
        if FUNCTION_REASON not in head:
            out.append((node.name, node.lineno, length))
    return out


def test_long_functions_say_why():
    found = [
        f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
        for path in _modules().values()
        for name, line, length in long_functions(path.read_text())
    ]
    assert not found, "functions over 80 lines without a reason: " + ", ".join(found)


def test_the_long_function_finder_finds_one():
    body = "".join(f"    x{i} = {i}\n" for i in range(LONG_FUNCTION))
    long = f'def f():\n    """Doc."""\n{body}'
    assert long_functions(long) == [("f", 1, LONG_FUNCTION + 2)]
    reason = f'def f():\n    """Doc."""\n    # {FUNCTION_REASON}: one loop.\n{body}'
    assert long_functions(reason) == []
    short = "def g():\n" + "".join(f"    x{i} = {i}\n" for i in range(LONG_FUNCTION - 1))
    assert long_functions(short) == []


def test_package_inits_only_re_export():
    """A package's ``__init__.py`` names what it offers (at most 40 lines, no function or class
    of its own): jobs and command lines are modules of their own."""
    for path in SRC.rglob("__init__.py"):
        tree = ast.parse(path.read_text())
        defined = [
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        assert not defined, f"{path.relative_to(ROOT)} defines {defined}"
        assert len(path.read_text().splitlines()) <= 40, f"{path.relative_to(ROOT)} is long"


def test_tables_and_figures_do_not_load_the_scoring_job():
    import subprocess
    import sys

    code = (
        "import sys, scdrbench.summary.tables, scdrbench.summary.figures\n"
        "assert 'scdrbench.metrics.score' not in sys.modules, 'the scoring job was imported'\n"
        "assert 'scdrbench.summary.cli' not in sys.modules, 'the summary CLI was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
