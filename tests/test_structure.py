"""The code's shape: no import cycle in any Python folder (src/, scripts/, benchmarks/, tests/),
package ``__init__`` files that only re-export, no module over about 400 lines and no function
in src/ over 80 lines without a reason written at its top."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

LONG = 450  # "about 400"
REASON = "Longer than 400 lines"
INIT_LINES = 40  # a package __init__ re-exports; it holds no job, CLI or algorithm

#: Each Python folder and how its modules are imported: ``package`` folders by dotted name from
#: their root (``scdrbench.methods.tsne``, ``tests.conftest``), ``scripts`` folders by bare file
#: name from beside them (benchmarks/ has ``pythonpath = ["benchmarks"]`` in pyproject.toml; a
#: job script runs with its own folder first on the import path).
FOLDERS = {"src": ("src", "package"), "tests": (".", "package")}
FOLDERS |= {"scripts": ("scripts", "scripts"), "benchmarks": ("benchmarks", "scripts")}


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """``{node: path}`` of every module; a node is ``folder:module name``."""
    out = {}
    for folder, (root, _) in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            out[f"{folder}:{_module_name(path, ROOT / root)}"] = path
    return out


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """``(module, [names])`` of every import, lazy (in-function) ones included; relative
    imports resolved against ``module``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            found.append((base, [a.name for a in node.names]))
    return found


def import_graph() -> dict[str, set[str]]:
    """Every import between the project's own modules, in all of its Python folders.

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.
    """
    modules = _modules()
    by_folder: dict[str, dict[str, str]] = {}
    for node in modules:
        folder, name = node.split(":", 1)
        by_folder.setdefault(folder, {})[name] = node
    # the packages' modules are importable from anywhere, a scripts folder's only beside them
    packages = {
        k: v
        for f, (_, kind) in FOLDERS.items()
        if kind == "package"
        for k, v in by_folder[f].items()
    }
    graph: dict[str, set[str]] = {}
    for node, path in modules.items():
        folder, name = node.split(":", 1)
        lookup = packages | (by_folder[folder] if FOLDERS[folder][1] == "scripts" else {})
        edges = set()
        tree = ast.parse(path.read_text())
        for base, names in _imported_names(tree, name, path.name == "__init__.py"):
            for sub in names:
                if (hit := lookup.get(f"{base}.{sub}")) is not None:
                    edges.add(hit)
                    break
            else:
                if (hit := lookup.get(base)) is not None:
                    edges.add(hit)
        graph[node] = edges - {node}
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


def test_no_import_cycle_in_any_python_folder():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_graph_sees_every_folder_and_its_kind_of_import():
    """The scan is not vacuous: it finds the edges each folder's imports make (a package
    import, a lazy one, a benchmark's bare sibling import, a test's import of conftest)."""
    graph = import_graph()
    assert {f.split(":")[0] for f in graph} == set(FOLDERS)
    assert "src:scdrbench.common.errors" in graph["src:scdrbench.common.config"]
    assert "src:scdrbench.methods" in graph["src:scdrbench.common.config"]  # lazy import
    assert "benchmarks:ladder_setup" in graph["benchmarks:ladder_report"]
    assert "benchmarks:ladder_report" in graph["benchmarks:ladder"]
    assert "tests:tests.conftest" in graph["tests:tests.test_structure"]
    assert "src:scdrbench.stages.embed" in graph["scripts:embed"]


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_long_modules_say_why():
    for path in _modules().values():
        lines = path.read_text().splitlines()
        if len(lines) > LONG:
            head = "\n".join(lines[:15])
            assert REASON in head, f"{path.relative_to(ROOT)}: {len(lines)} lines, no reason"


def test_package_inits_only_re_export():
    inits = sorted((ROOT / "src").rglob("__init__.py"))
    assert inits
    big = {
        str(p.relative_to(ROOT)): n
        for p in inits
        if (n := len(p.read_text().splitlines())) > INIT_LINES
    }
    assert not big, f"__init__.py files over {INIT_LINES} lines: {big}"


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
        for path in sorted((ROOT / "src").rglob("*.py"))
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
