"""Read container-structure-test files (schemaVersion 2.0.0 and 1.0.0) as imagefactory tests.

:func:`load_cst` turns one CST YAML (or JSON) file into an :class:`ImageTests`, so the engine that
runs the catalog's declarative checks runs it too. Every CST field either maps onto our model
with the meaning CST gives it, or the file is refused with a :class:`SpecError` whose issues name
the file, the line, the key path (``commandTests[2].setup``), the test and the field. Nothing is
dropped silently; all issues of a file are reported together. The mapping, field by field, is
docs/structure-tests.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory.errors import SpecError, SpecIssue
from imagefactory.spec.cst.fields import ENV_VAR_KEYS, go_expansions, kind
from imagefactory.spec.cst.files import FileTests
from imagefactory.spec.cst.metadata import MetadataTest
from imagefactory.spec.issues import format_key_path
from imagefactory.spec.models import (
    ENV_NAME_PATTERN,
    CommandCheck,
    FileCheck,
    ImageTests,
    MetadataCheck,
)
from imagefactory.spec.yamldoc import KeyPath, read_yaml

CST_SCHEMA_VERSIONS = ("2.0.0", "1.0.0")
CST_DIR = "structure-tests"

# The keys of CST's pkg/types/v1 (schemaVersion 1.0.0): no metadata test, no container run
# options, a command is one list (program and arguments) and has no args.
V1_TOP_KEYS = (
    "schemaVersion",
    "globalEnvVars",
    "commandTests",
    "fileExistenceTests",
    "fileContentTests",
    "licenseTests",
)
V1_COMMAND_KEYS = (
    "name",
    "setup",
    "teardown",
    "envVars",
    "exitCode",
    "command",
    "expectedOutput",
    "excludedOutput",
    "expectedError",
    "excludedError",
)
# pkg/types/v2 (schemaVersion 2.0.0): command is the program, args the rest.
TOP_KEYS = (*V1_TOP_KEYS, "metadataTest", "containerRunOptions")
COMMAND_KEYS = (*V1_COMMAND_KEYS, "args")
SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"})


@dataclass(frozen=True)
class CstSuite:
    """One converted CST file: the tests, and the CST name of each ``tests.files`` entry."""

    path: Path
    tests: ImageTests
    file_check_names: tuple[str, ...]


def structure_test_files(folder: Path) -> list[Path]:
    """The container-structure-test files of an image folder, in the order they run."""
    return sorted((folder / CST_DIR).glob("*.yaml"))


def load_cst(path: Path) -> ImageTests:
    """The tests of one container-structure-test file; :class:`SpecError` if it cannot map."""
    return read_cst(path).tests


def read_cst(path: Path) -> CstSuite:
    """Like :func:`load_cst`, also giving the CST names of the file checks."""
    return _Converter(read_yaml(path)).convert()


def _is_shell_script(command: str, args: list[str]) -> bool:
    """``sh -c 'script'`` and friends: the shell expands ``$VAR`` from the same environment."""
    if command.rsplit("/", 1)[-1] not in SHELLS:
        return False
    return any(re.fullmatch(r"-[a-zA-Z]*c[a-zA-Z]*", arg) for arg in args)


class _Converter(FileTests, MetadataTest):
    """Walks one CST document: its commands here, files and metadata in their modules."""

    v1 = False  # schemaVersion 1.0.0: CST's pkg/types/v1 keys and command form

    # -- the document

    def convert(self) -> CstSuite:
        doc = self.doc
        for problem in doc.problems:
            self.issues.append(
                SpecIssue(
                    doc.path,
                    format_key_path(problem.key_path),
                    problem.message,
                    problem.line,
                    problem.hint,
                )
            )
        if any(p.fatal for p in doc.problems):
            raise SpecError(self.issues)
        if not isinstance(doc.data, dict):
            self.mapping(doc.data, (), TOP_KEYS)
            raise SpecError(self.issues)
        version = self._schema_version(doc.data)
        if version is None:
            raise SpecError(self.issues)
        self.v1 = version == "1.0.0"
        data = self.mapping(doc.data, (), V1_TOP_KEYS if self.v1 else TOP_KEYS)
        assert data is not None
        env = self._env_vars(data.get("globalEnvVars"), ("globalEnvVars",), None)
        for key, why in (
            ("licenseTests", "imagefactory has no license checks"),
            (
                "containerRunOptions",
                "commands run with the engine's own options (user, privileges, mounts, env)",
            ),
        ):
            if data.get(key):
                self.unsupported((key,), None, why, f"remove '{key}' from the file")
        commands = [
            self._command(item, ("commandTests", index), env)
            for index, item in enumerate(self.items(data.get("commandTests"), ("commandTests",)))
        ]
        files: list[tuple[FileCheck | None, str]] = []
        for index, item in enumerate(
            self.items(data.get("fileExistenceTests"), ("fileExistenceTests",))
        ):
            files.append(self.existence(item, ("fileExistenceTests", index), v1=self.v1))
        for index, item in enumerate(
            self.items(data.get("fileContentTests"), ("fileContentTests",))
        ):
            files.append(self.content(item, ("fileContentTests", index)))
        metadata = self.metadata(data.get("metadataTest"), ("metadataTest",))
        if self.issues:
            raise SpecError(self.issues)
        tests = ImageTests(
            commands=[c for c in commands if c is not None],
            files=[f for f, _ in files if f is not None],
            metadata=metadata or MetadataCheck(),
        )
        return CstSuite(doc.path, tests, tuple(name for _, name in files))

    def _schema_version(self, data: dict[str, Any]) -> str | None:
        version = data.get("schemaVersion")
        path = ("schemaVersion",)
        hint = "imagefactory reads the versions container-structure-test reads: " + ", ".join(
            f'"{v}"' for v in CST_SCHEMA_VERSIONS
        )
        if version is None:
            self.issue(path, "required key is missing", f"the first line is schemaVersion: {hint}")
            return None
        if version in CST_SCHEMA_VERSIONS:
            return str(version)
        self.issue(path, f"unsupported schemaVersion {version!r}", hint)
        return None

    def _env_vars(
        self, value: Any, path: KeyPath, test: str | None
    ) -> list[tuple[str, str]] | None:
        """``[{key, value}]`` for commands, as ``K=V`` pairs; None (with issues) when invalid."""
        result: list[tuple[str, str]] = []
        ok = True
        for index, item in enumerate(self.items(value, path)):
            at = (*path, index)
            entry = self.mapping(item, at, ENV_VAR_KEYS)
            if entry is None:
                ok = False
                continue
            key = self.text(entry.get("key"), (*at, "key"), required=True)
            text = self.text(entry.get("value"), (*at, "value"), required=True)
            self.boolean(entry.get("isRegex"), (*at, "isRegex"), False)
            if key is None or text is None:
                ok = False
                continue
            if not re.fullmatch(ENV_NAME_PATTERN, key):
                self.issue((*at, "key"), f"'{key}' is not an environment variable name")
                ok = False
            if go_expansions(text):
                self.unsupported(
                    (*at, "value"),
                    test,
                    f"CST expands {', '.join(go_expansions(text))} from the image's environment, "
                    "which cannot be known before the image runs",
                    "write the value out in full",
                )
                ok = False
            result.append((key, text))
        return result if ok else None

    def _command(
        self, item: Any, path: KeyPath, global_env: list[tuple[str, str]] | None
    ) -> CommandCheck | None:
        test = self.mapping(item, path, V1_COMMAND_KEYS if self.v1 else COMMAND_KEYS)
        if test is None:
            return None
        before = len(self.issues)
        name = self.text(test.get("name"), (*path, "name"), required=True)
        label = name or f"#{path[-1]}"
        command, args = self._argv(test.get("command"), test.get("args"), path, label)
        for key in ("setup", "teardown"):
            if test.get(key):
                self.unsupported(
                    (*path, key),
                    label,
                    f"{key} commands change the image the test runs in, and imagefactory runs "
                    "each command in the image as built",
                    "move the work into the command itself (sh -c 'step1 && step2'), or into "
                    "the image",
                )
        env = self._env_vars(test.get("envVars"), (*path, "envVars"), label)
        exit_code = self.integer(test.get("exitCode"), (*path, "exitCode"))
        stdout = self.combined(
            self.regexes(test.get("expectedOutput"), (*path, "expectedOutput"), label),
            self.regexes(test.get("excludedOutput"), (*path, "excludedOutput"), label),
            (*path, "expectedOutput"),
            label,
        )
        stderr = self.combined(
            self.regexes(test.get("expectedError"), (*path, "expectedError"), label),
            self.regexes(test.get("excludedError"), (*path, "excludedError"), label),
            (*path, "expectedError"),
            label,
        )
        if command is not None:
            self._check_expansions(command, args, path, label)
        if "" in args:
            self.unsupported(
                self._arg_path(path, args.index("")),
                label,
                "an empty argument cannot be written in a command check's run list",
                None,
            )
        if len(self.issues) > before or name is None or command is None:
            return None
        prefix: list[str] = []
        variables = [*(global_env or []), *(env or [])]
        if variables:
            if "=" in command or command.startswith("-"):
                self.unsupported(
                    (*path, "command"),
                    label,
                    f"'{command}' cannot follow 'env' (it would read it as an option or a "
                    "variable)",
                    None,
                )
                return None
            prefix = ["env", *(f"{k}={v}" for k, v in variables)]
        return self.model(
            lambda: CommandCheck(
                name=name,
                run=[*prefix, command, *args],
                exit_code=exit_code or 0,
                stdout=stdout,
                stderr=stderr,
            ),
            path,
            label,
        )

    def _argv(
        self, command_value: Any, args_value: Any, path: KeyPath, test: str
    ) -> tuple[str | None, list[str]]:
        """The program and its arguments: 2.0.0's ``command`` + ``args``, 1.0.0's one list."""
        at = (*path, "command")
        if not self.v1:
            if isinstance(command_value, list):
                self.issue(
                    at,
                    f"test '{test}': command is a list (schemaVersion 1.0.0 style)",
                    "in 2.0.0, command is the program and args holds the rest",
                )
                return None, []
            command = self.text(command_value, at, required=True)
            return command, self.texts(args_value, (*path, "args")) or []
        if command_value is None:
            self.issue(at, "required key is missing")
            return None, []
        if not isinstance(command_value, list):
            self.issue(
                at,
                f"test '{test}': in schemaVersion 1.0.0, command is a list (the program, then "
                f"its arguments), got {kind(command_value)}",
                f"write command: [{command_value}, ...]",
            )
            return None, []
        argv = self.texts(command_value, at)
        if argv is None:
            return None, []
        if not argv or not argv[0]:
            self.issue(at, f"test '{test}': the command list needs the program first")
            return None, []
        return argv[0], argv[1:]

    def _arg_path(self, path: KeyPath, index: int) -> KeyPath:
        return (*path, "command", index + 1) if self.v1 else (*path, "args", index)

    def _check_expansions(self, command: str, args: list[str], path: KeyPath, test: str) -> None:
        hint = "run it through a shell, which expands the variable from the same environment: "
        hint += "command: [sh, -c, '...']" if self.v1 else "command: sh, args: ['-c', '...']"
        if go_expansions(command):
            self.unsupported(
                (*path, "command"),
                test,
                f"CST replaces {go_expansions(command)[0]} from the image's environment before "
                "running; imagefactory runs the command as written",
                hint,
            )
        if _is_shell_script(command, args):
            return
        for index, arg in enumerate(args):
            if go_expansions(arg):
                self.unsupported(
                    self._arg_path(path, index),
                    test,
                    f"CST replaces {go_expansions(arg)[0]} from the image's environment before "
                    "running; imagefactory runs the command as written",
                    hint,
                )
