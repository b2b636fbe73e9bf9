"""The house rules, read off the source: each package imports only the layers below it, only
``cli`` talks to the terminal (typer, rich), only ``tools`` starts processes (the Docker façade
too runs the docker CLI through it), and the package imports exactly the distributions
pyproject.toml declares: none missing, none declared for nothing.

Every ``import`` statement counts, also those inside functions (they are how a module defers a
cost, not how it escapes a rule).
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "imagefactory"

#: Lowest first. A module may import its own package and any package of a lower layer. The
#: ground modules (the package root) import each other freely but nothing above them.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__init__", "errors", "tools", "atomic", "ci_env", "git", "parallel", "scratch"}),
    frozenset({"spec"}),
    frozenset({"project"}),
    frozenset({"render"}),
    frozenset({"registry"}),
    frozenset({"sbom"}),
    frozenset({"signing"}),
    frozenset({"evidence"}),
    frozenset({"scan"}),
    frozenset({"build"}),
    frozenset({"freshness"}),
    frozenset({"imagetest"}),
    frozenset({"gitops"}),
    frozenset({"release"}),
    frozenset({"report"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
#: What a module outside its one owner may not import.
OWNED = {
    "typer": "cli",
    "rich": "cli",
    "subprocess": "tools",
    "pty": "tools",
    "multiprocessing": "tools",
}
#: Calls that start a process without the subprocess module.
PROCESS_CALLS = frozenset(
    {"system", "popen", "execv", "execve", "execvp", "execvpe", "spawnv", "spawnvp", "fork"}
)


@dataclass(frozen=True)
class Module:
    name: str  # dotted, without the "imagefactory." prefix; "" for the package itself
    is_package: bool  # an __init__.py
    source: str


@dataclass(frozen=True)
class Edge:
    module: str  # dotted, without the "imagefactory." prefix
    imported: str  # dotted, absolute
    line: int


def _read(path: Path) -> Module:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    is_package = parts[-1] == "__init__"
    name = ".".join(parts[:-1] if is_package else parts)
    return Module(name, is_package, path.read_text(encoding="utf-8"))


def _imports(module: Module) -> list[Edge]:
    name = module.name
    package = name if module.is_package else name.rpartition(".")[0]
    edges: list[Edge] = []
    for node in ast.walk(ast.parse(module.source)):
        if isinstance(node, ast.Import):
            edges += [Edge(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(["imagefactory", *base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target == "imagefactory":  # from imagefactory import tools: the module itself
                edges += [
                    Edge(name, f"imagefactory.{_root(a.name)}", node.lineno) for a in node.names
                ]
            else:
                edges.append(Edge(name, target, node.lineno))
    return edges


def _root(name: str) -> str:
    """What ``from imagefactory import name`` reads: a module, or (a dunder) the package root."""
    return "__init__" if name.startswith("__") else name


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    raise AssertionError(f"imagefactory.{module} is in no layer: add its package to LAYERS")


def _modules() -> list[Module]:
    return [_read(p) for p in sorted(PACKAGE.rglob("*.py")) if "templates" not in p.parts]


def layer_violations(modules: list[Module]) -> list[str]:
    problems = []
    for module in modules:
        for edge in _imports(module):
            if not edge.imported.startswith("imagefactory."):
                continue
            target = edge.imported.removeprefix("imagefactory.")
            own, other = _layer(edge.module or "__init__"), _layer(target)
            same_package = edge.module.split(".")[0] == target.split(".")[0]
            if other > own or (other == own and not same_package and own != 0):
                problems.append(f"imagefactory.{edge.module}:{edge.line} imports {edge.imported}")
    return problems


def ownership_violations(modules: list[Module]) -> list[str]:
    problems = []
    for module in modules:
        name = module.name
        for edge in _imports(module):
            top = edge.imported.split(".")[0]
            owner = OWNED.get(top)
            if owner is not None and name != owner and not name.startswith(owner + "."):
                problems.append(f"imagefactory.{name}:{edge.line} imports {top} ({owner} owns it)")
        for node in ast.walk(ast.parse(module.source)):
            if (
                name != "tools"
                and isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "os"
                and node.func.attr in PROCESS_CALLS
            ):
                problems.append(f"imagefactory.{name}:{node.lineno} calls os.{node.func.attr}")
    return problems


def test_every_module_is_in_a_layer() -> None:
    for module in _modules():
        _layer(module.name or "__init__")


def test_packages_import_only_downward() -> None:
    assert layer_violations(_modules()) == []


def test_only_owners_use_the_terminal_docker_and_processes() -> None:
    assert ownership_violations(_modules()) == []


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("spec.x", "from imagefactory.render.dockerfile import render\n"),
        ("project.x", "from ..build import run\n"),
        ("render.x", "from imagefactory.registry import client\n"),
        ("tools", "import imagefactory.spec.models\n"),
        ("gitops.x", "def f():\n    from imagefactory.release.core import push\n"),
        ("registry.x", "from imagefactory import cli\n"),
    ],
)
def test_a_back_edge_fails(name: str, source: str) -> None:
    """The check itself: a lower layer importing a higher one is reported (also relative,
    function-local and ``from imagefactory import x`` imports)."""
    assert len(layer_violations([Module(name, False, source)])) == 1


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("build.run", "from imagefactory.spec import models\nfrom . import docker\n"),
        ("cli.app", "from imagefactory.release import core\n"),
        ("tools", "from imagefactory import errors\n"),
    ],
)
def test_a_downward_or_sibling_edge_passes(name: str, source: str) -> None:
    assert layer_violations([Module(name, False, source)]) == []


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("build.run", "import subprocess\n"),
        ("imagetest.x", "import pty\n"),
        ("release.x", "from rich.console import Console\n"),
        ("gitops.x", "import os\nos.system('git push')\n"),
    ],
)
def test_an_owned_import_elsewhere_fails(name: str, source: str) -> None:
    assert len(ownership_violations([Module(name, False, source)])) == 1


def imported_distributions(modules: list[Module]) -> set[str]:
    """The installed distributions (canonical names) whose modules ``modules`` import."""
    provided = importlib.metadata.packages_distributions()
    tops = {edge.imported.split(".")[0] for module in modules for edge in _imports(module)}
    third_party = tops - set(sys.stdlib_module_names) - {"imagefactory", ""}
    missing = sorted(top for top in third_party if top not in provided)
    assert not missing, f"imported but installed by no distribution: {missing}"
    return {canonicalize_name(d) for top in third_party for d in provided[top]}


def _declared() -> tuple[set[str], set[str]]:
    """pyproject.toml's run-time dependencies, and its optional ones but dev's (canonical)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    optional = {
        canonicalize_name(Requirement(r).name)
        for extra, requirements in project["optional-dependencies"].items()
        if extra != "dev"
        for r in requirements
    }
    return required, optional


def _requirements_of(names: set[str]) -> set[str]:
    """What the distributions ``names`` themselves require (pydantic brings pydantic-core)."""
    return {
        canonicalize_name(Requirement(r).name)
        for name in names
        for r in importlib.metadata.requires(name) or []
        if "extra ==" not in r
    }


def undeclared_imports(modules: list[Module]) -> set[str]:
    """Distributions ``modules`` import that pyproject.toml does not name (nor, as pydantic
    names pydantic-core, a distribution it names)."""
    required, optional = _declared()
    allowed = required | optional | _requirements_of(required | optional)
    return imported_distributions(modules) - allowed


def test_every_imported_distribution_is_declared() -> None:
    assert undeclared_imports(_modules()) == set()


def test_every_required_dependency_is_imported() -> None:
    """A run-time dependency no module imports is one every install pays for nothing (as
    python-on-whales was, once the Docker façade ran the docker CLI through tools.run)."""
    required, _ = _declared()
    assert required - imported_distributions(_modules()) == set()


def test_an_undeclared_import_is_found() -> None:
    """The check itself: boto3 is installed (a dev dependency) but not the package's, also
    when imported inside a function."""
    module = Module("registry.x", False, "def f():\n    from boto3 import client\n")
    assert undeclared_imports([module]) == {"boto3"}
