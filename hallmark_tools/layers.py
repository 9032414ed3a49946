"""The Lambda dependency layers and which function gets which (issue 19, item 2).

- ``lean`` (``layers/hallmark/requirements.txt``): every function;
- ``scoring`` (``layers/scoring/requirements.txt``: numpy, onnxruntime): only the functions whose
  code reaches those modules.

Which modules a function reaches is a static scan: every ``import`` in ``functions/<code>/*.py``
and, transitively, in the ``hallmark`` layer modules those import (deferred imports inside
functions included; ``if TYPE_CHECKING:`` blocks excluded); in the composition root, a wiring
function's deferred imports count only for code that names that function. The CDK app attaches the layers from
:func:`layers_for`, and ``tests/infra/test_layers.py`` checks that every module a function
reaches is in its layers and that each function with its layers stays under Lambda's 250 MB.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER_SRC = ROOT / "layers" / "hallmark" / "python"
REQUIREMENTS = {
    "lean": ROOT / "layers" / "hallmark" / "requirements.txt",
    "scoring": ROOT / "layers" / "scoring" / "requirements.txt",
}
#: modules the Lambda Python runtime provides itself (besides the standard library)
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "awslambdaric"})


def _module_file(module: str) -> Path | None:
    base = LAYER_SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


#: the one composition root: each of its wiring functions imports its concern when called, so a
#: function reaches a wiring function's imports only when its code names that function
COMPOSITION_ROOT = "hallmark.adapters.runtime"


def _skipped(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def _imports_in(nodes: list[ast.stmt], package: str, skip: set[int]) -> set[str]:
    """Absolute module names imported by these statements (relative imports resolved against ``package``)."""
    out: set[str] = set()
    for node in (n for stmt in nodes for n in ast.walk(stmt)):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import submodule`
    return out


def _root_names(nodes: list[ast.stmt], *, inside_root: bool) -> set[str]:
    """The composition root's functions these statements name: ``runtime.x`` where ``runtime`` is
    bound to the root, ``from hallmark.adapters.runtime import x``, or (inside the root) ``x``."""
    root_pkg, _, root_leaf = COMPOSITION_ROOT.rpartition(".")
    walked = [n for stmt in nodes for n in ast.walk(stmt)]
    if inside_root:
        return {n.id for n in walked if isinstance(n, ast.Name)}
    aliases: set[str] = set()
    out: set[str] = set()
    for node in walked:
        if isinstance(node, ast.ImportFrom) and node.module == root_pkg:
            aliases |= {a.asname or a.name for a in node.names if a.name == root_leaf}
        elif isinstance(node, ast.ImportFrom) and node.module == COMPOSITION_ROOT:
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name == COMPOSITION_ROOT and a.asname}
    out |= {n.attr for n in walked
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases}
    return out


@cache
def _parsed(path: Path) -> tuple[ast.Module, set[int]]:
    tree = ast.parse(path.read_text(), str(path))
    return tree, _skipped(tree)


def _imports(path: Path, package: str) -> set[str]:
    tree, skip = _parsed(path)
    return _imports_in(tree.body, package, skip)


def _root_parts(path: Path) -> tuple[list[ast.stmt], dict[str, ast.stmt]]:
    """The composition root split into its module-level code and its top-level functions."""
    tree, _ = _parsed(path)
    functions: dict[str, ast.stmt] = {
        n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    module_level = [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return module_level, functions


@cache
def reached_modules(code_dir: str) -> frozenset[str]:
    """Top-level names of the third-party modules a function's code reaches (not the standard
    library, not the ``hallmark`` layer itself).

    Every import of every reached file counts, deferred ones included, except in the composition
    root: there a wiring function's imports count once any reached code names the function (or
    another counted wiring function calls it), so ``packages_api`` does not reach the scoring
    wiring it never calls."""
    third_party: set[str] = set()
    seen: set[str] = set()
    named: set[str] = set()
    root_path = _module_file(COMPOSITION_ROOT)
    root_used: set[str] = set()
    todo: list[tuple[Path, str, list[ast.stmt] | None]] = [
        (p, "", None) for p in sorted((ROOT / "functions" / code_dir).glob("*.py"))]
    root_reached = False
    while True:
        while todo:
            path, package, nodes = todo.pop()
            if nodes is None and path == root_path:
                root_reached = True
                nodes = _root_parts(path)[0]
            tree, skip = _parsed(path)
            body = tree.body if nodes is None else nodes
            named |= _root_names(body, inside_root=path == root_path)
            for name in _imports_in(body, package, skip):
                top = name.split(".")[0]
                if top == "hallmark":
                    if name in seen:
                        continue
                    seen.add(name)
                    file = _module_file(name)
                    if file is not None:
                        pkg = name if file.name == "__init__.py" else name.rpartition(".")[0]
                        todo.append((file, pkg, None))
                elif top and top not in sys.stdlib_module_names and top != "__future__":
                    third_party.add(top)
        if not root_reached or root_path is None:
            break
        functions = _root_parts(root_path)[1]
        new = {n for n in functions if n in named} - root_used
        if not new:
            break
        root_used |= new
        todo = [(root_path, COMPOSITION_ROOT.rpartition(".")[0], [functions[n]]) for n in sorted(new)]
    return frozenset(third_party)


def requirement_names(layer: str) -> list[str]:
    names = []
    for line in REQUIREMENTS[layer].read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.append(re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0])
    return names


def _requirement_extras(layer: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in REQUIREMENTS[layer].read_text().splitlines():
        line = line.split("#")[0].strip()
        m = re.match(r"([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?", line)
        if m:
            out[m.group(1)] = {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}
    return out


@cache
def distributions(layer: str) -> frozenset[str]:
    """The layer's distributions with their dependencies (as installed here: the same versions pip
    installs for the Lambda platform, this machine's wheels)."""
    from packaging.requirements import Requirement

    todo = list(_requirement_extras(layer).items())
    found: set[str] = set()
    while todo:
        name, extras = todo.pop()
        key = name.lower().replace("_", "-")
        if key in found:
            continue
        found.add(key)
        dist = metadata.distribution(name)
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is not None and not any(
                    req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            todo.append((req.name, set(req.extras)))
    return frozenset(found)


@cache
def provided_modules(layer: str) -> frozenset[str]:
    """Top-level module names the layer's distributions install."""
    by_module = metadata.packages_distributions()
    dists = distributions(layer)
    return frozenset(m for m, ds in by_module.items() if any(d.lower().replace("_", "-") in dists for d in ds))


def layer_bytes(layer: str) -> int:
    """Unzipped size of the layer's installed files (RECORD sizes; bytecode caches excluded)."""
    total = 0
    for name in distributions(layer):
        for f in metadata.distribution(name).files or []:
            if "__pycache__" not in f.parts and f.size:
                total += f.size
    return total


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def layers_for(code_dir: str) -> tuple[str, ...]:
    """The dependency layers a function's code needs: lean, plus scoring when it reaches numpy or
    onnxruntime."""
    scoring_only = provided_modules("scoring") - provided_modules("lean")
    return ("lean", "scoring") if reached_modules(code_dir) & scoring_only else ("lean",)
