"""Read container-structure-test files (schemaVersion 2.0.0) as imagefactory tests.

:func:`load_cst` turns one CST YAML (or JSON) file into an :class:`ImageTests`, so the engine that
runs the catalog's declarative checks runs it too. Every CST field either maps onto our model
with the meaning CST gives it, or the file is refused with a :class:`SpecError` whose issues name
the file, the line, the key path (``commandTests[2].setup``), the test and the field. Nothing is
dropped silently. All issues of a file are reported together.

The mapping (CST's behaviour is that of its docker driver):

* ``commandTests[]`` → ``commands[]``, one check each with the CST name. ``run`` is
  ``[command, *args]``. ``expectedOutput``/``excludedOutput`` join into one ``stdout`` regex,
  ``expectedError``/``excludedError`` into one ``stderr`` regex; ``exitCode`` → ``exit_code``.
  ``envVars`` (after the file's ``globalEnvVars``, which they override) are set by running
  ``env K=V … command args``, so such an image needs an ``env`` program. ``setup`` and
  ``teardown`` are refused: they change the image the command runs in.
* ``fileExistenceTests[]`` → ``files[]``. ``shouldExist`` → ``exists``; ``permissions`` (Go's
  mode string: ``-rw-r--r--``, ``drwxr-xr-x``, ``dtrwxrwxrwx``, ``urwxr-xr-x``, ``Lrwxrwxrwx``)
  → ``type`` + ``mode`` (no mode for symlinks); ``uid``/``gid`` → ``owner``/``group`` as numeric
  strings; ``isExecutableBy: any`` → ``executable: true``, and ``owner``/``group``/``other``
  only next to ``permissions`` that already say so.
* ``fileContentTests[]`` → ``files[]`` with ``contains`` joining ``expectedContents`` and
  ``excludedContents``.
* ``metadataTest`` → ``metadata``: ``env`` → ``env`` (exact values; ``isRegex`` refused),
  ``labels`` → ``labels`` (an exact value escaped and anchored, a regex kept), ``entrypoint``,
  ``cmd``, ``workdir``, ``user`` as they are, ``exposedPorts: [N]`` → ``N/tcp``,
  ``unexposedPorts: [N]`` → ``N/tcp`` and ``N/udp``.
* Refused: ``licenseTests``, ``containerRunOptions``, ``metadataTest.unboundEnv``,
  ``volumes``, ``unmountedVolumes`` and ``envVars`` (CST itself ignores ``envVars`` there).

*Regexes.* CST compiles Go RE2 patterns and uses ``MatchString`` (a search anywhere in the
text); our checks use Python's ``re``. Each pattern is translated where the dialects differ
(``$`` and ``\\z`` → ``\\Z`` as Go's ``$`` does not match before a final newline, POSIX
classes, ``\\Q…\\E``, ``\\x{…}``, ``(?<name>``, leading ``(?i)``) and refused where RE2 has
no such construct (lookaround, backreferences: CST could never run it) or Python lacks it
(``\\pL``, ``(?U)``). Several patterns join into ``\\A(?=[\\s\\S]*?(?:A))(?![\\s\\S]*?(?:B))[\\s\\S]*``,
which matches exactly when A is found and B is not, with ``re.search`` and ``re.fullmatch`` alike.

CST expands ``$VAR`` in ``command``, ``args``, existence-test ``path`` and env values from the
image's environment before it runs anything. Checks are written before the image runs, so that
is refused, except inside ``sh -c`` style scripts, where the shell expands the same variables.

A file check has no name in our model: :func:`read_cst` also returns the CST name of each
``files`` entry, in order, for whoever reports them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from imagefactory.errors import SpecError, SpecIssue
from imagefactory.spec.cst.gomode import GoMode, ModeProblem, parse_go_mode
from imagefactory.spec.cst.goregex import RegexProblem, combine_regexes, exact_regex, go_regex
from imagefactory.spec.issues import format_key_path, near_miss
from imagefactory.spec.models import (
    ENV_NAME_PATTERN,
    CommandCheck,
    FileCheck,
    ImageTests,
    MetadataCheck,
)
from imagefactory.spec.yamldoc import KeyPath, YamlDocument, read_yaml

CST_SCHEMA_VERSION = "2.0.0"
CST_DIR = "structure-tests"

TOP_KEYS = (
    "schemaVersion",
    "globalEnvVars",
    "commandTests",
    "fileExistenceTests",
    "fileContentTests",
    "metadataTest",
    "licenseTests",
    "containerRunOptions",
)
COMMAND_KEYS = (
    "name",
    "setup",
    "teardown",
    "envVars",
    "exitCode",
    "command",
    "args",
    "expectedOutput",
    "excludedOutput",
    "expectedError",
    "excludedError",
)
EXISTENCE_KEYS = ("name", "path", "shouldExist", "permissions", "uid", "gid", "isExecutableBy")
CONTENT_KEYS = ("name", "path", "expectedContents", "excludedContents")
METADATA_KEYS = (
    "env",
    "envVars",
    "unboundEnv",
    "exposedPorts",
    "unexposedPorts",
    "entrypoint",
    "cmd",
    "workdir",
    "volumes",
    "unmountedVolumes",
    "labels",
    "user",
)
ENV_VAR_KEYS = ("key", "value", "isRegex")

M = TypeVar("M", bound=BaseModel)

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"})
EXECUTABLE_BITS = {"any": 0o111, "owner": 0o100, "group": 0o010, "other": 0o001}


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


# --------------------------------------------------------------------------- $VAR expansion


def go_expansions(text: str) -> list[str]:
    """The ``$name``/``${name}`` references Go's ``os.Expand`` (which CST uses) replaces."""
    found = []
    for match in re.finditer(r"\$(\{[^}]*\}?|[A-Za-z0-9_]+|[*#$@!?-])", text):
        found.append(match.group(0))
    return found


def _is_shell_script(command: str, args: list[str]) -> bool:
    """``sh -c 'script'`` and friends: the shell expands ``$VAR`` from the same environment."""
    if command.rsplit("/", 1)[-1] not in SHELLS:
        return False
    return any(re.fullmatch(r"-[a-zA-Z]*c[a-zA-Z]*", arg) for arg in args)


# --------------------------------------------------------------------------- conversion


class _FileTest(NamedTuple):
    test: dict[str, Any]
    issues_before: int  # issues already found: more after parsing means this test is bad
    name: str | None
    label: str  # the name, or "#<index>" for a test without one
    path: str | None


class _Converter:
    """Walks one CST document, collecting every issue before giving up."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.issues: list[SpecIssue] = []

    # -- issue helpers

    def issue(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        self.issues.append(
            SpecIssue(self.doc.path, format_key_path(path), message, self.doc.line_of(path), hint)
        )

    def unsupported(self, path: KeyPath, test: str | None, why: str, hint: str | None) -> None:
        last_key = max(i for i, part in enumerate(path) if isinstance(part, str))
        field = format_key_path(path[last_key:])
        where = f"test '{test}': " if test else ""
        self.issue(path, f"{where}'{field}' cannot be converted: {why}", hint)

    # -- typed readers: each returns None (and records an issue) when the value is wrong

    def mapping(self, value: Any, path: KeyPath, keys: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.issue(path, f"expected a mapping, got {_kind(value)}", "write 'key: value' lines")
            return None
        for key in value:
            if key not in keys:
                guess = near_miss(str(key), keys)
                self.issue(
                    (*path, str(key)),
                    f"unknown key '{key}'",
                    f"did you mean '{guess}'?" if guess else "allowed keys: " + ", ".join(keys),
                )
        return value

    def items(self, value: Any, path: KeyPath) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.issue(path, f"expected a list, got {_kind(value)}", "write '- item' lines")
            return []
        return value

    def text(self, value: Any, path: KeyPath, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.issue(path, "required key is missing")
            return None
        if not isinstance(value, str):
            self.issue(path, f"expected a string, got {_kind(value)}", _quote_hint(value))
            return None
        if required and not value:
            self.issue(path, "must not be empty")
            return None
        return value

    def texts(self, value: Any, path: KeyPath) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            self.issue(path, f"expected a list of strings, got {_kind(value)}", "write [a, b]")
            return None
        result = []
        for index, item in enumerate(value):
            text = self.text(item, (*path, index))
            if text is not None:
                result.append(text)
        return result if len(result) == len(value) else None

    def boolean(self, value: Any, path: KeyPath, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.issue(path, f"expected true or false, got {_kind(value)}")
            return default
        return value

    def integer(self, value: Any, path: KeyPath) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.issue(path, f"expected an integer, got {_kind(value)}")
            return None
        return value

    def regexes(self, value: Any, path: KeyPath, test: str | None) -> list[str] | None:
        patterns = self.texts(value, path)
        if patterns is None:
            return [] if value is None else None
        result = []
        for index, pattern in enumerate(patterns):
            try:
                result.append(go_regex(pattern))
            except RegexProblem as exc:
                where = f"test '{test}': " if test else ""
                self.issue((*path, index), f"{where}regex {pattern!r}: {exc.message}", exc.hint)
        return result if len(result) == len(patterns) else None

    def combined(
        self,
        expected: list[str] | None,
        excluded: list[str] | None,
        path: KeyPath,
        test: str,
        *,
        whole: bool = False,
    ) -> str | None:
        if expected is None or excluded is None:
            return None
        try:
            return combine_regexes(expected, excluded, whole=whole)
        except RegexProblem as exc:
            self.issue(
                path,
                f"test '{test}': the regexes cannot be joined into one: {exc.message}",
                "give each named group a different name",
            )
            return None

    def model(self, build: Callable[[], M], path: KeyPath, test: str | None) -> M | None:
        try:
            return build()
        except ValidationError as exc:
            where = f"test '{test}': " if test else ""
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"])
                self.issue(path, f"{where}cannot express this check ({field}: {error['msg']})")
            return None

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
        data = self.mapping(doc.data, (), TOP_KEYS)
        if data is None or not self._schema_version(data):
            raise SpecError(self.issues)
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
            files.append(self._existence(item, ("fileExistenceTests", index)))
        for index, item in enumerate(
            self.items(data.get("fileContentTests"), ("fileContentTests",))
        ):
            files.append(self._content(item, ("fileContentTests", index)))
        metadata = self._metadata(data.get("metadataTest"), ("metadataTest",))
        if self.issues:
            raise SpecError(self.issues)
        tests = ImageTests(
            commands=[c for c in commands if c is not None],
            files=[f for f, _ in files if f is not None],
            metadata=metadata or MetadataCheck(),
        )
        return CstSuite(doc.path, tests, tuple(name for _, name in files))

    def _schema_version(self, data: dict[str, Any]) -> bool:
        version = data.get("schemaVersion")
        path = ("schemaVersion",)
        if version is None:
            self.issue(
                path,
                "required key is missing",
                f'the first line is schemaVersion: "{CST_SCHEMA_VERSION}"',
            )
            return False
        if version == CST_SCHEMA_VERSION:
            return True
        hint = f'imagefactory reads schemaVersion "{CST_SCHEMA_VERSION}" only'
        if str(version).startswith("1."):
            hint += (
                '; to convert a 1.0.0 file, write command: "prog" with args: [...] instead of '
                "command: [prog, ...] and set schemaVersion to 2.0.0"
            )
        self.issue(path, f"unsupported schemaVersion {version!r}", hint)
        return False

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
        test = self.mapping(item, path, COMMAND_KEYS)
        if test is None:
            return None
        before = len(self.issues)
        name = self.text(test.get("name"), (*path, "name"), required=True)
        label = name or f"#{path[-1]}"
        command_value = test.get("command")
        if isinstance(command_value, list):
            self.issue(
                (*path, "command"),
                f"test '{label}': command is a list (schemaVersion 1.0.0 style)",
                "in 2.0.0, command is the program and args holds the rest",
            )
            command = None
        else:
            command = self.text(command_value, (*path, "command"), required=True)
        args = self.texts(test.get("args"), (*path, "args")) or []
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
                (*path, "args"),
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

    def _check_expansions(self, command: str, args: list[str], path: KeyPath, test: str) -> None:
        hint = "run it through a shell, which expands the variable from the same environment: "
        hint += "command: sh, args: ['-c', '...']"
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
                    (*path, "args", index),
                    test,
                    f"CST replaces {go_expansions(arg)[0]} from the image's environment before "
                    "running; imagefactory runs the command as written",
                    hint,
                )

    def _file_test(self, item: Any, path: KeyPath, keys: tuple[str, ...]) -> _FileTest | None:
        """What every file test starts with: its mapping, name and path (None: no mapping)."""
        test = self.mapping(item, path, keys)
        if test is None:
            return None
        before = len(self.issues)
        name = self.text(test.get("name"), (*path, "name"), required=True)
        file_path = self.text(test.get("path"), (*path, "path"), required=True)
        return _FileTest(test, before, name, name or f"#{path[-1]}", file_path)

    def _existence(self, item: Any, path: KeyPath) -> tuple[FileCheck | None, str]:
        head = self._file_test(item, path, EXISTENCE_KEYS)
        if head is None:
            return None, ""
        test, before, name, label, file_path = head
        if file_path is not None and go_expansions(file_path):
            self.unsupported(
                (*path, "path"),
                label,
                f"CST replaces {go_expansions(file_path)[0]} from the image's environment",
                "write the path out in full",
            )
        exists = self.boolean(test.get("shouldExist"), (*path, "shouldExist"), True)
        permissions = self.text(test.get("permissions"), (*path, "permissions"))
        uid = self._owner_id(test.get("uid"), (*path, "uid"))
        gid = self._owner_id(test.get("gid"), (*path, "gid"))
        executable_by = self.text(test.get("isExecutableBy"), (*path, "isExecutableBy"))
        if not exists:
            for key in ("permissions", "uid", "gid", "isExecutableBy"):
                if test.get(key) not in (None, "", -1):
                    self.issue(
                        (*path, key),
                        f"test '{label}': shouldExist is false, so '{key}' can never be checked",
                        f"remove '{key}'",
                    )
        mode = self._mode(permissions, (*path, "permissions"), label) if permissions else None
        executable = (
            self._executable(executable_by, mode, (*path, "isExecutableBy"), label)
            if mode is not None or not permissions
            else None
        )
        if len(self.issues) > before or name is None or file_path is None:
            return None, label
        check = self.model(
            lambda: FileCheck(
                path=file_path,
                exists=exists,
                type=mode.type if mode else None,
                mode=mode.mode if mode and mode.type != "symlink" else None,
                owner=None if uid is None else str(uid),
                group=None if gid is None else str(gid),
                executable=executable,
            ),
            path,
            label,
        )
        return check, name

    def _owner_id(self, value: Any, path: KeyPath) -> int | None:
        number = self.integer(value, path)
        if number is None or number == -1:  # CST's "not checked"
            return None
        if number < 0:
            self.issue(path, f"expected a user or group id (0 or more), got {number}")
            return None
        return number

    def _mode(self, text: str, path: KeyPath, test: str) -> GoMode | None:
        try:
            mode = parse_go_mode(text)
        except ModeProblem as exc:
            self.issue(path, f"test '{test}': {exc.message}", exc.hint)
            return None
        if mode.type == "symlink" and mode.bits != 0o777:
            self.issue(
                path,
                f"test '{test}': a symlink's permissions are always rwxrwxrwx on Linux, "
                f"so '{text}' never matches",
                "write 'Lrwxrwxrwx'",
            )
            return None
        return mode

    def _executable(
        self, who: str | None, mode: GoMode | None, path: KeyPath, test: str
    ) -> bool | None:
        if not who:
            return None
        bits = EXECUTABLE_BITS.get(who)
        if bits is None:
            self.issue(
                path,
                f"test '{test}': unknown isExecutableBy '{who}'",
                "use one of: " + ", ".join(EXECUTABLE_BITS),
            )
            return None
        if mode is not None:
            if mode.bits & bits == 0:
                self.issue(
                    path,
                    f"test '{test}': the permissions have no execute bit for '{who}', "
                    "so this test can never pass",
                )
                return None
            return True
        if who != "any":
            self.unsupported(
                path,
                test,
                f"a file check can require 'executable by someone' but not by '{who}' alone",
                "use isExecutableBy: any, or give the full permissions (e.g. '-rwxr-xr-x')",
            )
            return None
        return True

    def _content(self, item: Any, path: KeyPath) -> tuple[FileCheck | None, str]:
        head = self._file_test(item, path, CONTENT_KEYS)
        if head is None:
            return None, ""
        test, before, name, label, file_path = head
        contains = self.combined(
            self.regexes(test.get("expectedContents"), (*path, "expectedContents"), label),
            self.regexes(test.get("excludedContents"), (*path, "excludedContents"), label),
            (*path, "expectedContents"),
            label,
        )
        if len(self.issues) > before or name is None or file_path is None:
            return None, label
        check = self.model(lambda: FileCheck(path=file_path, contains=contains), path, label)
        return check, name

    def _metadata(self, value: Any, path: KeyPath) -> MetadataCheck | None:
        if value is None:
            return None
        test = self.mapping(value, path, METADATA_KEYS)
        if test is None:
            return None
        before = len(self.issues)
        for key, why, hint in (
            (
                "envVars",
                "container-structure-test reads 'env' in metadataTest and silently ignores "
                "'envVars' (its README is wrong), so these variables were never checked",
                "rename it to 'env'",
            ),
            ("unboundEnv", "a metadata check cannot require a variable to be unset", None),
            ("volumes", "a metadata check has no volumes", None),
            ("unmountedVolumes", "a metadata check has no volumes", None),
        ):
            if test.get(key):
                self.unsupported((*path, key), None, why, hint or f"remove '{key}'")
        env: dict[str, str] = {}
        for index, item in enumerate(self.items(test.get("env"), (*path, "env"))):
            self._metadata_env(item, (*path, "env", index), env)
        labels: dict[str, list[str]] = {}
        labels_exact: dict[str, str] = {}
        for index, item in enumerate(self.items(test.get("labels"), (*path, "labels"))):
            self._label(item, (*path, "labels", index), labels, labels_exact)
        entrypoint = self.texts(test.get("entrypoint"), (*path, "entrypoint"))
        cmd = self.texts(test.get("cmd"), (*path, "cmd"))
        workdir = self.text(test.get("workdir"), (*path, "workdir")) or None
        user = self.text(test.get("user"), (*path, "user")) or None
        # CST compares port numbers whatever the protocol. "Exposed" becomes N/tcp (stricter
        # for a UDP-only port); "not exposed" becomes neither N/tcp nor N/udp (the same).
        exposed = [
            f"{n}/tcp" for n in self._ports(test.get("exposedPorts"), (*path, "exposedPorts"))
        ]
        unexposed = [
            f"{n}/{protocol}"
            for n in self._ports(test.get("unexposedPorts"), (*path, "unexposedPorts"))
            for protocol in ("tcp", "udp")
        ]
        label_regexes: dict[str, str] = {}
        for key, patterns in labels.items():
            # The engine matches label values with re.fullmatch; CST searches. An exact value
            # (\A…\Z) means the same either way; anything else takes the joined form.
            exact = len(patterns) == 1 and patterns[0] == exact_regex(labels_exact.get(key, ""))
            joined = self.combined(patterns, [], (*path, "labels"), f"label {key}", whole=not exact)
            if joined is not None:
                label_regexes[key] = joined
        if len(self.issues) > before:
            return None
        return self.model(
            lambda: MetadataCheck(
                env=env,
                labels=label_regexes,
                entrypoint=entrypoint,
                cmd=cmd,
                workdir=workdir,
                user=user,
                exposed_ports=exposed,
                unexposed_ports=unexposed,
            ),
            path,
            None,
        )

    def _metadata_env(self, item: Any, path: KeyPath, env: dict[str, str]) -> None:
        entry = self.mapping(item, path, ENV_VAR_KEYS)
        if entry is None:
            return
        key = self.text(entry.get("key"), (*path, "key"), required=True)
        value = self.text(entry.get("value"), (*path, "value"))
        value = "" if value is None and entry.get("value") is None else value
        if self.boolean(entry.get("isRegex"), (*path, "isRegex"), False):
            self.unsupported(
                (*path, "isRegex"),
                None,
                "metadata env values are compared exactly; a regex cannot be expressed",
                "write the exact value and drop isRegex",
            )
            return
        if key is None or value is None:
            return
        if not re.fullmatch(ENV_NAME_PATTERN, key):
            self.issue((*path, "key"), f"'{key}' is not an environment variable name")
            return
        if key in env and env[key] != value:
            self.issue(
                path,
                f"'{key}' is expected twice with different values, so the test can never pass",
            )
            return
        env[key] = value

    def _label(
        self, item: Any, path: KeyPath, labels: dict[str, list[str]], exact: dict[str, str]
    ) -> None:
        entry = self.mapping(item, path, ENV_VAR_KEYS)
        if entry is None:
            return
        key = self.text(entry.get("key"), (*path, "key"), required=True)
        value = self.text(entry.get("value"), (*path, "value"))
        value = "" if value is None and entry.get("value") is None else value
        is_regex = self.boolean(entry.get("isRegex"), (*path, "isRegex"), False)
        if key is None or value is None:
            return
        if is_regex:
            try:
                pattern = go_regex(value)
            except RegexProblem as exc:
                self.issue(
                    (*path, "value"), f"label {key}: regex {value!r}: {exc.message}", exc.hint
                )
                return
        else:
            pattern = exact_regex(value)
            exact[key] = value
        labels.setdefault(key, []).append(pattern)

    def _ports(self, value: Any, path: KeyPath) -> list[str]:
        result = []
        for index, item in enumerate(self.items(value, path)):
            at = (*path, index)
            text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
            if not isinstance(text, str):
                self.issue(at, f"expected a port number, got {_kind(item)}")
            elif "/" in text:
                self.issue(
                    at,
                    f"'{text}': container-structure-test compares port numbers only, "
                    "so a protocol suffix never matches",
                    f"write '{text.partition('/')[0]}'",
                )
            elif not (text.isdigit() and 1 <= int(text) <= 65535):
                self.issue(at, f"'{text}' is not a port number (1-65535)")
            else:
                result.append(text)
        return result


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _quote_hint(value: Any) -> str | None:
    if isinstance(value, bool | int | float):
        return "quote it: YAML reads unquoted numbers and yes/no/true/false as other types"
    return None
