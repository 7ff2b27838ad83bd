"""The package's import graph, read from the source (ast, nothing imported), and the rules
it must keep: no cycles; the analysis side never pulls in the run side (harness, backends,
energy meters, ...), so a figure can be redrawn where no simulator is installed; the model
package stands alone; and nothing edits the import path (pyproject.toml installs the one
namespace, docs/architecture.md).

Every import counts, the ones inside functions too: a deferred import still runs, later.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
# Where each part of the namespace lives (pyproject.toml, [tool.setuptools.package-dir]).
PACKAGE_DIRS = {"spikescale": REPO / "workflow" / "spikescale", "spikescale.models": REPO / "models",
                "spikescale.analysis": REPO / "analysis"}
# The run side: what measures a run. The analysis side reads runs.csv and run files only.
RUN_SIDE = ("spikescale.harness", "spikescale.backends", "spikescale.energy", "spikescale.spinnaker",
            "spikescale.supervise", "spikescale.allocation", "spikescale.comm", "spikescale.jobs",
            "spikescale.resources", "spikescale.software")
# Top-level names that exist only because the repository root is on the path when run
# from there: an import of them breaks in a fresh process started elsewhere.
NOT_PACKAGES = ("analysis", "models", "workflow")


def module_files() -> dict[str, Path]:
    """Every module of the namespace, by its dotted name."""
    modules = {}
    for prefix, root in PACKAGE_DIRS.items():
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([prefix, *parts])] = path
    return modules


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST):
    """Every Import and ImportFrom that runs, at any depth (not under `if TYPE_CHECKING`)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if not _is_type_checking(node):
            stack.extend(ast.iter_child_nodes(node))


def imported_names(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The dotted names one module imports (its own namespace's and any other)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: from the package, level - 1 steps up
            anchor = package.split(".")
            anchor = anchor[:len(anchor) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            out.add(submodule if submodule in modules else base)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the namespace's modules it imports."""
    modules = module_files()
    graph = {}
    for name, path in modules.items():
        graph[name] = {target for target in imported_names(name, path, modules)
                       if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None. Depth first, iterative, in sorted order."""
    state = {}  # absent: not seen; 1: on the current path; 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path, children = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while path:
            child = next(children[-1], None)
            if child is None:
                state[path.pop()] = 2
                children.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif child not in state:
                state[child] = 1
                path.append(child)
                children.append(iter(sorted(graph[child])))
    return None


def all_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles until none is left, each found after the last edge of the one before is cut."""
    graph = {name: set(targets) for name, targets in graph.items()}
    found = []
    while (cycle := find_cycle(graph)) is not None:
        found.append(cycle)
        graph[cycle[-2]].discard(cycle[-1])
    return found


def with_parents(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph plus what Python adds: importing a.b.c runs a/__init__ and a/b/__init__."""
    out = {}
    for name, targets in graph.items():
        parents = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
        out[name] = set(targets) | {p for p in parents if p in graph}
    return out


def reach(graph: dict[str, set[str]], start: str, stop: frozenset = frozenset()) -> dict[str, list[str]]:
    """Every module `start` pulls in, with one import chain to it; not through `stop`."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        here = todo.pop()
        for target in sorted(graph[here]):
            if target not in chains:
                chains[target] = chains[here] + [target]
                if target not in stop:
                    todo.append(target)
    return chains


def _in(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _run_side_reached(stop: frozenset) -> list[str]:
    graph = with_parents(import_graph())
    found = []
    for name in sorted(graph):
        if _in(name, ["spikescale.analysis"]):
            for target, chain in reach(graph, name, stop).items():
                if _in(target, RUN_SIDE):
                    found.append(" -> ".join(chain))
                    break
    return found


# ---------------------------------------------------------------- the graph

def test_the_graph_is_read_from_every_folder():
    graph = import_graph()
    for module in ("spikescale.config", "spikescale.plan", "spikescale.models.pd14.derived",
                   "spikescale.analysis.strong_scaling", "spikescale.backends.nest"):
        assert module in graph
    assert "spikescale.models.pd14.params" in graph["spikescale.models.pd14.derived"]


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    assert all_cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}) == [["a", "b", "a"], ["c", "d", "c"]]


def test_no_import_cycles():
    cycles = all_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_name_the_installed_namespace():
    """`import analysis.x` works only from the repository root; spikescale.analysis.x works anywhere."""
    bad = []
    modules = module_files()
    for name, path in modules.items():
        for target in imported_names(name, path, modules):
            if target.split(".")[0] in NOT_PACKAGES:
                bad.append(f"{path.relative_to(REPO)}: {target}")
    assert not bad, "imports outside the spikescale namespace:\n" + "\n".join(bad)


def test_analysis_does_not_import_the_run_side():
    """No analysis module reaches the run side (it reads runs through spikescale.load)."""
    found = _run_side_reached(stop=frozenset())
    assert not found, "the analysis side pulls in the run side:\n" + "\n".join(found)


def test_models_import_only_models():
    graph = with_parents(import_graph())
    bad = []
    for name in sorted(graph):
        if _in(name, ["spikescale.models"]):
            bad += [" -> ".join(chain) for target, chain in reach(graph, name).items()
                    if not _in(target, ["spikescale.models"]) and target != "spikescale"]
    assert not bad, "spikescale.models imports the workflow side:\n" + "\n".join(bad)


# ---------------------------------------------------------------- the import path

# Code that changes where Python looks for modules; text in comments and docstrings may name them.
PATH_EDITS = re.compile(r"sys\.path\s*(\.\s*(insert|append|extend|remove)\b|\[|\+=|=(?!=))"
                        r"|\bPYTHONPATH\s*[+:]?=|[\"']PYTHONPATH[\"']|^\s*PYTHONPATH\s*:")
# Not the repository's own files: environments, history, outputs, caches.
SKIP_DIRS = {".git", ".snakemake", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache", ".test-results",
             "results", ".eggs"}
TEXT_SUFFIXES = {".py", ".smk", ".sh", ".mk", ".cfg", ".toml", ".yaml", ".yml", ".ini"}
TEXT_NAMES = {"Makefile", "Snakefile"}


def _code_lines(path: Path):
    """(line number, line) of code: Python without comments and docstrings; other files
    without `#` comments."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    if path.suffix != ".py":
        return [(number, line.split("#", 1)[0]) for number, line in enumerate(lines, 1)]
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            lines[row - 1] = lines[row - 1][:col]
    docstrings = set()
    for node in ast.walk(ast.parse(text, str(path))):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    return [(number, line) for number, line in enumerate(lines, 1) if number not in docstrings]


def _is_script(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"#!"


def _repository_files():
    """The files that could set the path: Python, rules, make, shell scripts, settings."""
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")
                         and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(folder, name)
            if path.suffix in TEXT_SUFFIXES or name in TEXT_NAMES or (not path.suffix and _is_script(path)):
                yield path


def test_path_edit_pattern():
    for code in ("sys.path.insert(0, x)", "sys.path.append(x)", "sys.path[:0] = [x]", "sys.path = [x]",
                 "env['PYTHONPATH'] = x", 'dict(env, **{"PYTHONPATH": x})', "PYTHONPATH=. pytest",
                 "export PYTHONPATH:=x", "  PYTHONPATH: ."):
        assert PATH_EDITS.search(code), code
    for text in ("if sys.path == x:", "nothing edits sys.path or PYTHONPATH", "print(sys.path)"):
        assert not PATH_EDITS.search(text), text


def test_nothing_edits_the_import_path():
    this = Path(__file__).resolve()
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for path in _repository_files() if path.resolve() != this
             for number, line in _code_lines(path) if PATH_EDITS.search(line)]
    assert not found, "the import path is edited (install the package instead, pyproject.toml):\n" + "\n".join(found)
