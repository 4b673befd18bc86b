"""The package's layering, read from its source with ``ast`` (nothing is imported but in the last test).

* ``restoration/errors.py`` imports nothing of the package, ``restoration/schema.py`` only ``restoration.errors``,
  ``restoration/layers/config.py`` nothing of the package: every module may import them.
* No component (data, models, losses, metrics, archs, layers, utils, optim, inference) imports
  ``restoration.options``, which sits on top of them.
* No import cycle among the package's modules at module level. The graph: a module-level import of ``a.b.c``
  (``import a.b.c``, ``from a.b.c import x``, ``from a.b import c``) makes the importer depend on ``a.b.c`` and
  on the packages ``a.b`` whose ``__init__`` runs first, except the importer's own ancestor packages (those are
  already being imported when it runs). Imports under ``if TYPE_CHECKING:`` never run and are left out.
* An import inside a function says why it is not at the top with a trailing comment from :data:`LAZY_REASONS`;
  imports that only dodged an import cycle belong at the top.
* ``import restoration`` imports no architecture module (``restoration.archs.*_arch``).
* ``restoration.options`` does not import the demo-data builder: building data is the commands' decision.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "restoration"
COMPONENTS = ("data", "models", "losses", "metrics", "archs", "layers", "utils", "optim", "inference")
#: The reasons an import may stay inside a function, written as its trailing comment.
LAZY_REASONS = ("# optional dependency", "# heavy dependency", "# keeps import restoration light")


@dataclass(frozen=True)
class Import:
    """One import statement of a module: the package modules it names, where it is, and its source lines."""

    targets: tuple[str, ...]
    line: int
    in_function: bool
    type_checking: bool
    text: str


def package_modules(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """``{dotted name: file}`` of every module of ``package`` under ``root`` (a package is its ``__init__.py``)."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _named(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> list[str]:
    """The dotted names an import statement loads: the module and, for ``from p import m``, a submodule ``p.m``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1] + ([node.module] if node.module else [])
        source = ".".join(base)
    else:
        source = node.module or ""
    return [source, *(f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules)]


def module_imports(module: str, path: Path, modules: dict[str, Path], package: str = PACKAGE) -> list[Import]:
    """Every import statement of ``module`` with the package modules it names (other imports: no targets)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names = _named(module, path, child, modules)
                targets = tuple(n for n in names if n == package or n.startswith(package + "."))
                text = "\n".join(lines[child.lineno - 1: child.end_lineno])
                found.append(Import(targets, child.lineno, in_function, type_checking, text))
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, type_checking)
            else:
                function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                visit(child, in_function or function, type_checking)

    visit(ast.parse(source, filename=str(path)), False, False)
    return found


def import_graph(modules: dict[str, Path], package: str = PACKAGE) -> dict[str, set[str]]:
    """``{module: the package modules it imports at module level}`` (see the module docstring for the rule)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        parts = module.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}
        deps: set[str] = set()
        for imp in module_imports(module, path, modules, package):
            if imp.in_function or imp.type_checking:
                continue
            for target in imp.targets:
                pieces = target.split(".")
                for i in range(1, len(pieces) + 1):
                    name = ".".join(pieces[:i])
                    if name in modules and name != module and name not in ancestors:
                        deps.add(name)
        graph[module] = deps
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def unexplained_lazy_imports(modules: dict[str, Path], package: str = PACKAGE) -> list[str]:
    """``'module:line: text'`` of every import inside a function whose line ends without a reason."""
    bad = []
    for module, path in modules.items():
        for imp in module_imports(module, path, modules, package):
            if imp.in_function and not imp.text.rstrip().endswith(LAZY_REASONS):
                bad.append(f"{module}:{imp.line}: {imp.text.strip()}")
    return bad


MODULES = package_modules(ROOT)


def _package_targets(module: str) -> set[str]:
    return {t for imp in module_imports(module, MODULES[module], MODULES) for t in imp.targets}


# ----------------------------------------------------------------------------------------------- the checker
def _write(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package_modules(root, "pkg")


def test_the_checker_finds_cycles_and_unexplained_lazy_imports(tmp_path: Path) -> None:
    modules = _write(tmp_path, {
        "pkg/__init__.py": "from pkg.a import f\n",
        "pkg/a.py": "from pkg import b\n\ndef f():\n    import json\n    from pkg.c import g  # heavy dependency\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nfrom . import a\nif TYPE_CHECKING:\n    from pkg import c\n",
        "pkg/c.py": "import pkg.sub.d\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/d.py": "from pkg.sub import e\nfrom ..c import x\n",
        "pkg/sub/e.py": "",
    })
    graph = import_graph(modules, "pkg")
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.sub", "pkg.sub.d"},
                     "pkg.sub": set(), "pkg.sub.d": {"pkg.sub.e", "pkg.c"}, "pkg.sub.e": set()}
    assert import_cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.sub.d"]]
    assert unexplained_lazy_imports(modules, "pkg") == ["pkg.a:4: import json"]


# ----------------------------------------------------------------------------------------------- the package
def test_the_walk_sees_the_whole_package() -> None:
    for name in ("restoration", "restoration.errors", "restoration.schema", "restoration.layers.config",
                 "restoration.options.validate", "restoration.data.degradations.chain", "restoration.optim.plateau"):
        assert name in MODULES, name
    # a module known to import restoration.errors at module level
    assert "restoration.errors" in import_graph(MODULES)["restoration.schema"]


def test_leaves_import_nothing_of_the_package() -> None:
    assert _package_targets("restoration.errors") == set()
    assert _package_targets("restoration.schema") == {"restoration.errors"}
    assert _package_targets("restoration.layers.config") == set()


def test_components_do_not_import_options() -> None:
    bad = []
    for module, path in MODULES.items():
        if module.split(".")[1:2] and module.split(".")[1] in COMPONENTS:
            for imp in module_imports(module, path, MODULES):
                if any(t == "restoration.options" or t.startswith("restoration.options.") for t in imp.targets):
                    bad.append(f"{module}:{imp.line}: {imp.text.strip()}")
    assert not bad, "components import restoration.options:\n" + "\n".join(bad)


def test_parsing_options_builds_no_data() -> None:
    """The commands build the demo dataset (``parse_options(prepare_data=...)``); the options layer never imports it."""
    bad = [f"{module}:{imp.line}: {imp.text.strip()}" for module, path in MODULES.items()
           if module.startswith("restoration.options") for imp in module_imports(module, path, MODULES)
           if "restoration.data.demo" in imp.targets]
    assert not bad, "the options layer imports the demo-data builder:\n" + "\n".join(bad)


def test_no_import_cycles_at_module_level() -> None:
    cycles = import_cycles(import_graph(MODULES))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_every_import_inside_a_function_says_why() -> None:
    bad = unexplained_lazy_imports(MODULES)
    assert not bad, (f"imports inside functions without one of {LAZY_REASONS} (move them to the top unless one "
                     "applies):\n" + "\n".join(bad))


def test_import_restoration_imports_no_architecture() -> None:
    """Registration is lazy: no ``*_arch`` module, and none of the heavy dependencies, is imported."""
    code = ("import sys, restoration; "
            "bad = [m for m in sys.modules if m.startswith('restoration.archs.') and m.endswith('_arch')]; "
            "heavy = [m for m in ('timm', 'torchvision', 'tensorboard', 'lmdb', 'cv2') if m in sys.modules]; "
            "print(bad, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[] []", out
