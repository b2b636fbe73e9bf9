"""What a command's start imports: every command imports the whole CLI, so a heavy module
imported at the top of any package slows every command (and every CI job) down.

The command modules import the core packages inside the commands that use them: declaring the
commands (which ``--version``, ``--help`` and a bare ``imagefactory`` all do) needs typer, click,
rich and the modules of ``imagefactory.cli`` only. Each check runs in a fresh interpreter, as a
command does; none is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagefactory.cli.app import COMMANDS

#: Modules no command needs at its start. jsonschema's format checkers build an IRI grammar
#: (rfc3987_syntax) that took 1.7 s of the CLI's 2.8 s import; only SBOM validation uses them.
#: The others are what the core packages import: models, templates, YAML, SBOMs, signatures,
#: purls, Debian indexes, the GitLab API.
HEAVY = (
    "jsonschema",
    "rfc3987_syntax",
    "pydantic",
    "jinja2",
    "yaml",
    "cyclonedx",
    "cryptography",
    "packageurl",
    "debian",
    "gitlab",
)
#: The core packages (tests/unit/test_layers.py: LAYERS, below cli).
CORE = (
    "spec",
    "project",
    "render",
    "registry",
    "sbom",
    "signing",
    "evidence",
    "scan",
    "build",
    "freshness",
    "imagetest",
    "gitops",
    "release",
)
#: The core modules a command declaration may load: each holds a constant an option declares
#: (its choices, its default) and imports nothing.
LIGHT = frozenset(
    {
        "imagefactory.render",
        "imagefactory.render.formats",
        "imagefactory.scan",
        "imagefactory.scan.formats",
        "imagefactory.release",
        "imagefactory.release.gc_limit",
        "imagefactory.release.parts",
    }
)

#: Runs ``imagefactory ARGV`` in-process, its output swallowed, and prints the modules loaded.
PROBE = """
import contextlib, io, json, sys
sys.path[:] = json.loads(sys.argv[1])
argv = json.loads(sys.argv[2])
import imagefactory.cli
sys.argv = ["imagefactory", *argv]
code = None
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        imagefactory.cli.main()
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded(*argv: str) -> tuple[object, list[str]]:
    """The exit code of ``imagefactory ARGV`` and every module it loaded, in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(sys.path), json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(proc.stdout)
    return found["code"], found["modules"]


def heavy(modules: list[str]) -> list[str]:
    """The heavy modules among ``modules``: a HEAVY distribution, or a core module not LIGHT."""
    found = []
    for module in modules:
        top, _, rest = module.partition(".")
        core = top == "imagefactory" and rest.split(".")[0] in CORE and module not in LIGHT
        if top in HEAVY or core:
            found.append(module)
    return found


def test_the_cli_starts_without_the_schema_validator() -> None:
    probe = (
        f"import sys, imagefactory.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == ""


@pytest.mark.parametrize(
    "argv", [("--version",), (), ("--help",)], ids=lambda argv: " ".join(argv) or "bare"
)
def test_the_root_starts_without_a_heavy_module(argv: tuple[str, ...]) -> None:
    """``--version``, ``--help`` and the bare start (the root's help) are eager: they exit
    before typer coerces any value, so even typer loads nothing heavy."""
    code, modules = loaded(*argv)
    assert code in (0, 2, None)  # a bare start prints the help with click's usage code
    assert heavy(modules) == []


@pytest.mark.parametrize(
    "argv",
    [
        ("build", "--help"),
        ("plan", "--help"),
        ("graph", "--help"),  # FORMATS in its help
        ("gate", "--help"),  # the report FORMATS in its help
        ("gc", "--help"),  # DEFAULT_LIMIT, its default
        ("version", "bump", "--help"),  # Part, its argument's type
        ("ci", "generate", "--help"),
    ],
    ids=lambda argv: " ".join(argv) or "bare",
)
def test_a_commands_help_loads_no_core_package(argv: tuple[str, ...]) -> None:
    """A command's ``--help`` comes after the root's options are processed, and typer (0.29)
    coerces every value but a flag's (the root's --project, None) through pydantic
    (typer/_adapters.py): that pydantic is typer's, not a core package's."""
    code, modules = loaded(*argv)
    assert code in (0, None)
    found = heavy(modules)
    if "typer._adapters" in modules:
        found = [m for m in found if m.split(".")[0] != "pydantic"]
    assert found == []


def test_a_command_imports_what_it_needs_when_it_runs(catalog_dir: Path) -> None:
    """The check itself: running ``plan`` loads the catalog's models, and the probe sees it."""
    code, modules = loaded("-C", str(catalog_dir), "plan", "--json")
    assert code in (0, None)
    assert {"pydantic", "yaml", "imagefactory.spec.loader", "imagefactory.project.plan"} <= set(
        heavy(modules)
    )


def test_the_light_modules_are_light() -> None:
    """What LIGHT allows imports no heavy module of its own."""
    probe = "import json, sys\n" + "".join(f"import {m}\n" for m in sorted(LIGHT))
    probe += "print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert heavy(json.loads(proc.stdout)) == []
    assert not [m for m in json.loads(proc.stdout) if m.startswith("imagefactory.cli")]


def test_the_root_table_names_every_command_and_its_module() -> None:
    """COMMANDS is what the root lists and loads lazily: it must say exactly which module
    declares each command, or a command would be missing (or load the wrong module)."""
    probe = """
import importlib, json
from typer.main import get_command_name
from imagefactory.cli.app import COMMANDS, app
for module in sorted(set(COMMANDS.values())):
    importlib.import_module(f"imagefactory.cli.{module}")
found = {}
for info in app.registered_commands:
    found[info.name or get_command_name(info.callback.__name__)] = info.callback.__module__
for group in app.registered_groups:
    found[group.name] = group.typer_instance.registered_commands[0].callback.__module__
print(json.dumps({"table": COMMANDS, "found": found}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(proc.stdout)
    declared = {name: f"imagefactory.cli.{module}" for name, module in result["table"].items()}
    assert result["found"] == declared
    modules = {p.stem for p in Path(__file__).parents[2].joinpath("imagefactory/cli").glob("*.py")}
    assert set(result["table"].values()) <= modules


@pytest.mark.parametrize(
    ("argv", "module"),
    [(("--version",), None), (("plan", "--help"), "catalog"), (("ci", "generate", "--help"), "ci")],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_a_command_loads_only_its_own_command_module(
    argv: tuple[str, ...], module: str | None
) -> None:
    """The root loads a command's module when the command runs: --version loads none, and
    ``plan`` not the modules of build, release, gitops…"""
    code, modules = loaded(*argv)
    assert code in (0, None)
    commands = {m.removeprefix("imagefactory.cli.") for m in modules} & set(COMMANDS.values())
    # ci's module builds on catalog's (open_catalog) and render_report
    expected = {"ci": {"ci", "catalog"}, "catalog": {"catalog"}, None: set()}[module]
    assert commands == expected


def test_a_mistyped_command_is_told_the_nearest_name(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imagefactory", "plam"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert proc.returncode == 2
    assert "Did you mean 'plan'?" in proc.stderr
