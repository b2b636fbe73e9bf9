"""container-structure-test files → ImageTests: each CST test kind, the regex and mode
translations, and the precise errors for what cannot be converted."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagefactory.errors import SpecError, SpecIssue, UserError
from imagefactory.imagetest.checks import _file_probe
from imagefactory.spec.cst.fields import go_expansions
from imagefactory.spec.cst.gomode import ModeProblem, parse_go_mode
from imagefactory.spec.cst.goregex import RegexProblem, combine_regexes, exact_regex, go_regex
from imagefactory.spec.cst.reader import load_cst, read_cst
from imagefactory.spec.models import CommandCheck, FileCheck, ImageTests

from .conftest import FIXTURES

CST = FIXTURES / "cst"


def write(tmp_path: Path, text: str, name: str = "cst.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def issues_of(path: Path) -> list[SpecIssue]:
    with pytest.raises(SpecError) as caught:
        load_cst(path)
    return caught.value.issues


def one_issue(path: Path) -> SpecIssue:
    [issue] = issues_of(path)
    return issue


def convert(tmp_path: Path, body: str) -> ImageTests:
    return load_cst(write(tmp_path, 'schemaVersion: "2.0.0"\n' + textwrap.dedent(body)))


def searches(pattern: str | None, text: str) -> bool:
    assert pattern is not None
    return re.search(pattern, text) is not None


# --------------------------------------------------------------------------- fixtures


def test_distroless_fixture_converts_every_test() -> None:
    suite = read_cst(CST / "distroless_base.yaml")
    tests = suite.tests
    assert len(tests.files) == len(suite.file_check_names) == 17
    assert suite.file_check_names[:3] == ("root", "tmp", "passwd")
    assert suite.file_check_names[-1] == "UTC zone file"
    by_name = dict(zip(suite.file_check_names, tests.files, strict=True))
    assert by_name["root"] == FileCheck(
        path="/", type="directory", mode="0755", owner="0", group="0"
    )
    assert by_name["tmp"] == FileCheck(path="/tmp", type="directory", mode="1777")
    assert by_name["nonroot home"] == FileCheck(
        path="/home/nonroot", type="directory", mode="0700", owner="65532", group="65532"
    )
    assert by_name["localtime link"] == FileCheck(path="/etc/localtime", type="symlink")
    assert by_name["certs copyright"] == FileCheck(path="/usr/share/doc/ca-certificates/copyright")
    assert by_name["no shell"] == FileCheck(path="/bin/sh", exists=False)
    assert tests.metadata.env == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    }
    assert tests.metadata.user == "65532"
    assert tests.metadata.workdir == "/home/nonroot"
    assert tests.metadata.entrypoint == []
    assert tests.commands == []


def test_distroless_content_regexes_behave_like_cst() -> None:
    suite = read_cst(CST / "distroless_base.yaml")
    by_name = dict(zip(suite.file_check_names, suite.tests.files, strict=True))
    passwd = (
        "root:x:0:0:root:/root:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    )
    assert searches(by_name["known users"].contains, passwd)
    assert not searches(by_name["known users"].contains, passwd + "app:x:1000:1000::/:/bin/sh\n")
    group = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nnonroot:x:65532:\n"
    assert searches(by_name["known groups"].contains, group)
    assert not searches(by_name["known groups"].contains, group + "app:x:1000:\n")
    assert not searches(by_name["known groups"].contains, "nobody:x:65534:\n" + group)
    os_release = 'PRETTY_NAME="Distroless"\nVERSION="Debian GNU/Linux 12 (bookworm)"\n'
    assert searches(by_name["os-release"].contains, os_release)
    assert not searches(by_name["os-release"].contains, 'PRETTY_NAME="Distroless"\n')


def test_command_fixture_keeps_names_argv_and_expectations() -> None:
    tests = load_cst(CST / "app_commands.yaml")
    commands = {c.name: c for c in tests.commands}
    assert list(commands) == [
        "python version",
        "dependencies are consistent",
        "app imports",
        "bad flag fails",
        "venv on PATH",
        "settings from the environment",
        "no compilers",
        "version strings",
    ]
    assert commands["python version"] == CommandCheck(
        name="python version", run=["python3", "--version"], stdout=r"^Python 3\.11\.\d+\n\Z"
    )
    assert commands["bad flag fails"].exit_code == 2
    assert commands["venv on PATH"].run == ["sh", "-c", "echo $PATH"]
    assert commands["settings from the environment"].run[:2] == ["env", "APP_MODE=readonly"]
    assert searches(commands["python version"].stdout, "Python 3.11.7\n")
    assert not searches(commands["python version"].stdout, "Python 3.12.1\n")
    pip = commands["dependencies are consistent"].stdout
    assert searches(pip, "No broken requirements found.\n")
    assert not searches(pip, "No broken requirements found.\nfoo 1 has requirement bar\n")
    assert not searches(pip, "No broken requirements found.\nbar is NOT INSTALLED\n")
    imports = commands["app imports"]
    assert imports.stdout == "^app\\n\\Z"
    assert searches(imports.stderr, "")
    assert not searches(imports.stderr, "Traceback (most recent call last):\n")
    assert searches(commands["no compilers"].stdout, "")
    assert not searches(commands["no compilers"].stdout, "/usr/bin/gcc\n")
    assert searches(commands["version strings"].stdout, "0.115.12\n")


def test_command_fixture_metadata() -> None:
    metadata = load_cst(CST / "app_commands.yaml").metadata
    assert metadata.env == {"PYTHONUNBUFFERED": "1", "APP_PORT": "8080"}
    assert metadata.entrypoint == ["/opt/venv/bin/uvicorn"]
    assert metadata.cmd == ["app:api", "--host", "0.0.0.0", "--port", "8080"]
    assert metadata.workdir == "/srv/app"
    assert metadata.user == "app"
    assert metadata.exposed_ports == ["8080/tcp"]
    assert metadata.unexposed_ports == ["22/tcp", "22/udp", "80/tcp", "80/udp"]
    labels = metadata.labels
    vendor = labels["org.opencontainers.image.vendor"]
    assert re.fullmatch(vendor, "Example Bank")
    assert not re.fullmatch(vendor, "Example Bank Ltd")
    version = labels["org.opencontainers.image.version"]
    assert re.fullmatch(version, "1.4.2") and not re.fullmatch(version, "1.4.2-rc1")
    source = labels["org.opencontainers.image.source"]  # CST searches: a prefix is enough
    assert re.fullmatch(source, "https://git.example.com/platform/rag-api.git")
    assert not re.fullmatch(source, "https://git.example.com/platform/other")


def test_converted_tests_survive_a_model_round_trip() -> None:
    for name in ("distroless_base.yaml", "app_commands.yaml"):
        tests = load_cst(CST / name)
        assert ImageTests.model_validate(tests.model_dump()) == tests


def test_unsupported_fixture_reports_every_field_with_its_line() -> None:
    path = CST / "unsupported.yaml"
    found = [(i.key_path, i.line) for i in issues_of(path)]
    assert found == [
        ("commandTests[0].setup", 5),
        ("commandTests[1].args[0]", 11),
        ("commandTests[2].envVars[0].value", 16),
        ("fileExistenceTests[0].path", 21),
        ("fileExistenceTests[1].permissions", 25),
        ("metadataTest.envVars[0].isRegex", 30),
        ("metadataTest.volumes", 31),
        ("licenseTests", 32),
    ]
    with pytest.raises(SpecError) as caught:
        load_cst(path)
    text = str(caught.value)
    assert isinstance(caught.value, UserError)
    assert "unsupported.yaml:5: commandTests[0].setup: test 'gunicorn flask'" in text
    assert "'dtrwxrwxrwx'" in text


# --------------------------------------------------------------------------- CST's own files

UPSTREAM = CST / "upstream"  # tests/*.yaml of GoogleContainerTools/container-structure-test
LICENSE = "'licenseTests' cannot be converted"
RUN_OPTIONS = "'containerRunOptions' cannot be converted"
RENAMED_ENV = "'env' cannot be converted: container-structure-test 1.13.0 renamed it to 'envVars'"
RENAMED_UNBOUND = "'unboundEnv' cannot be converted: container-structure-test 1.13.0 renamed it"
NO_VOLUMES = "'unmountedVolumes' cannot be converted"
UNSET = "'unboundEnvVars' cannot be converted"
#: Each vendored file: None when it converts, else every issue as (line, key path, message part).
UPSTREAM_OUTCOMES: dict[str, list[tuple[int, str, str]] | None] = {
    "amd64/fluent_bit_test.yaml": None,
    "arm64/fluent_bit_test.yaml": None,
    "amd64/ubuntu_20_04_containeropts_test.yaml": [(14, "containerRunOptions", RUN_OPTIONS)],
    "arm64/ubuntu_22_04_containeropts_user_test.yaml": [(10, "containerRunOptions", RUN_OPTIONS)],
    "amd64/ubuntu_20_04_failure_test.yaml": [(30, "licenseTests", LICENSE)],
    "amd64/ubuntu_20_04_test.yaml": [(41, "licenseTests", LICENSE)],
    "amd64/ubuntu_22_04_tar_test.yaml": [(20, "licenseTests", LICENSE)],
    "debian_test.yaml": [(41, "licenseTests", LICENSE)],
    "ppc64le/ubuntu_22_04_test.yaml": [(41, "licenseTests", LICENSE)],
    "debian_failure_test.yaml": [
        (10, "commandTests[1].name", "duplicate key 'name'"),
        (24, "fileExistenceTests[0].isDirectory", "unknown key 'isDirectory'"),
        (28, "fileExistenceTests[1].isDirectory", "unknown key 'isDirectory'"),
        (32, "licenseTests", LICENSE),
    ],
    "debian_metadata_test.yaml": [(3, "metadataTest.env", RENAMED_ENV)],
    "debian_metadata_tests.yaml": [(3, "metadataTest.env", RENAMED_ENV)],
    "amd64/ubuntu_20_04_metadata_test.yaml": [
        (3, "metadataTest.env", RENAMED_ENV),
        (22, "metadataTest.unmountedVolumes", NO_VOLUMES),
    ],
    "ppc64le/ubuntu_20_04_metadata_env_test.yaml": [
        (3, "metadataTest.env", RENAMED_ENV),
        (13, "metadataTest.unboundEnv", RENAMED_UNBOUND),
    ],
    "ppc64le/ubuntu_20_04_metadata_test.yaml": [
        (3, "metadataTest.env", RENAMED_ENV),
        (13, "metadataTest.unboundEnv", RENAMED_UNBOUND),
        (24, "metadataTest.unmountedVolumes", NO_VOLUMES),
    ],
    "ppc64le/ubuntu_20_04_metadata_failure_test.yaml": [
        (3, "metadataTest.env", RENAMED_ENV),
        (9, "metadataTest.unboundEnv", RENAMED_UNBOUND),
        (11, "metadataTest.unboundEnvVars", UNSET),
    ],
    "s390x/ubuntu_22_04_metadata_test.yaml": [
        (12, "metadataTest.envVars[3].isRegex", "compared exactly"),
        (13, "metadataTest.unboundEnvVars", UNSET),
        (24, "metadataTest.unmountedVolumes", NO_VOLUMES),
    ],
}


def test_every_vendored_file_has_an_expected_outcome() -> None:
    found = {p.relative_to(UPSTREAM).as_posix() for p in UPSTREAM.rglob("*.yaml")}
    assert found == set(UPSTREAM_OUTCOMES)


@pytest.mark.parametrize("name", sorted(UPSTREAM_OUTCOMES))
def test_vendored_cst_files(name: str) -> None:
    path = UPSTREAM / name
    expected = UPSTREAM_OUTCOMES[name]
    if expected is None:
        tests = load_cst(path)
        assert tests.commands or tests.files
        return
    with pytest.raises(SpecError) as caught:
        load_cst(path)
    issues = caught.value.issues
    assert [(i.line, i.key_path) for i in issues] == [(line, key) for line, key, _ in expected]
    text = str(caught.value)
    for issue, (line, key, part) in zip(issues, expected, strict=True):
        assert part in issue.message
        assert f"{name.rsplit('/', 1)[-1]}:{line}: {key}: " in text


def test_fluent_bit_file_converts_like_cst_runs_it() -> None:
    tests = load_cst(UPSTREAM / "amd64/fluent_bit_test.yaml")
    assert tests.commands == [
        CommandCheck(
            name="fluent-bit",
            run=["/fluent-bit/bin/fluent-bit", "--version"],
            stdout="Fluent Bit v4.0.4",
        )
    ]
    assert tests.files == [
        FileCheck(path="/", owner="0", group="0"),
        FileCheck(path="/lib/x86_64-linux-gnu/libc.so.6"),
        FileCheck(path="/etc/passwd", contains="root:x:0:0:root:/root:/sbin/nologin"),
    ]


# --------------------------------------------------------------------------- schemaVersion 1.0.0


def convert_v1(tmp_path: Path, body: str) -> ImageTests:
    return load_cst(write(tmp_path, 'schemaVersion: "1.0.0"\n' + textwrap.dedent(body)))


def test_version_1_command_is_the_whole_argv(tmp_path: Path) -> None:
    tests = convert_v1(
        tmp_path,
        """
        globalEnvVars: [{key: LANG, value: C.UTF-8}]
        commandTests:
          - name: bad apt-get
            command: ['apt-get', 'dslkfjasl']
            expectedError: ['Invalid operation']
            exitCode: 100
          - name: path
            command: ['sh', '-c', 'echo $PATH']
        fileExistenceTests:
          - {name: home, path: $HOME, permissions: drwxr-xr-x}
        """,
    )
    assert tests.commands == [
        CommandCheck(
            name="bad apt-get",
            run=["env", "LANG=C.UTF-8", "apt-get", "dslkfjasl"],
            exit_code=100,
            stderr="Invalid operation",
        ),
        CommandCheck(name="path", run=["env", "LANG=C.UTF-8", "sh", "-c", "echo $PATH"]),
    ]
    # CST's v1 file existence test stats the path as written (v2 expands $VAR first).
    assert tests.files == [FileCheck(path="$HOME", type="directory", mode="0755")]


def test_version_1_has_only_its_own_keys(tmp_path: Path) -> None:
    issues = issues_of(
        write(
            tmp_path,
            """
            schemaVersion: "1.0.0"
            commandTests:
              - name: v2 style
                command: apt-get
                args: [help]
              - name: empty
                command: []
              - name: expanded
                command: [echo, $HOME]
            fileExistenceTests:
              - {name: root, path: /, uid: 0}
            metadataTest: {user: root}
            """,
        )
    )
    assert [(i.key_path, i.line) for i in issues] == [
        ("commandTests[0].command", 4),
        ("commandTests[0].args", 5),
        ("commandTests[1].command", 7),
        ("commandTests[2].command[1]", 9),
        ("fileExistenceTests[0].uid", 11),
        ("metadataTest", 12),
    ]
    assert "command is a list" in issues[0].message
    assert issues[0].hint == "write command: [apt-get, ...]"
    assert issues[1].message == "unknown key 'args'"
    assert "program first" in issues[2].message
    assert "$HOME" in issues[3].message and issues[3].hint is not None
    assert "command: [sh, -c" in issues[3].hint
    assert issues[4].message == "unknown key 'uid'"
    assert issues[5].message == "unknown key 'metadataTest'"


# --------------------------------------------------------------------------- commands


def test_command_defaults_and_args(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        """
        commandTests:
          - name: "true"
            command: "true"
          - name: ls
            command: /bin/ls
            args: ["-la", "/etc"]
            exitCode: 1
        """,
    )
    assert tests.commands == [
        CommandCheck(name="true", run=["true"]),
        CommandCheck(name="ls", run=["/bin/ls", "-la", "/etc"], exit_code=1),
    ]


def test_global_and_test_env_vars_go_through_env(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        """
        globalEnvVars:
          - {key: LANG, value: C.UTF-8}
          - {key: MODE, value: global}
        commandTests:
          - name: one
            command: printenv
            args: [MODE]
            envVars: [{key: MODE, value: local}]
          - name: two
            command: printenv
        """,
    )
    one, two = tests.commands
    assert one.run == ["env", "LANG=C.UTF-8", "MODE=global", "MODE=local", "printenv", "MODE"]
    assert two.run == ["env", "LANG=C.UTF-8", "MODE=global", "printenv"]


def test_shell_scripts_may_use_variables_other_commands_may_not(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        """
        commandTests:
          - name: bash
            command: /bin/bash
            args: ["-ec", "test -d $HOME && echo ${PATH}"]
        """,
    )
    assert tests.commands[0].run[-1] == "test -d $HOME && echo ${PATH}"
    issue = one_issue(
        write(
            tmp_path,
            """
            schemaVersion: "2.0.0"
            commandTests:
              - name: echo
                command: echo
                args: ["ok", "${HOME}"]
            """,
        )
    )
    assert issue.key_path == "commandTests[0].args[1]"
    assert issue.line == 5
    assert "test 'echo'" in issue.message and "${HOME}" in issue.message
    assert issue.hint is not None and "sh" in issue.hint


def test_dollar_signs_that_go_leaves_alone_are_fine(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        """
        commandTests:
          - name: grep
            command: grep
            args: ["-E", "end$", "/etc/hosts", "cost: 5$ | 3$."]
        """,
    )
    assert tests.commands[0].run[2] == "end$"
    assert go_expansions("a$ b$| $$ $1 ${X} $Y_2") == ["$$", "$1", "${X}", "$Y_2"]


@pytest.mark.parametrize("key", ["setup", "teardown"])
def test_setup_and_teardown_are_refused(tmp_path: Path, key: str) -> None:
    issue = one_issue(
        write(
            tmp_path,
            f"""
            schemaVersion: "2.0.0"
            commandTests:
              - name: with {key}
                command: "true"
                {key}: [["touch", "/tmp/x"]]
            """,
        )
    )
    assert issue.key_path == f"commandTests[0].{key}"
    assert issue.line == 5
    assert issue.message.startswith(f"test 'with {key}': '{key}' cannot be converted")


def test_empty_setup_is_harmless(tmp_path: Path) -> None:
    tests = convert(tmp_path, "commandTests: [{name: x, command: id, setup: [], teardown: []}]\n")
    assert tests.commands[0].run == ["id"]


def test_wrong_types_name_the_key_path_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        schemaVersion: "2.0.0"
        commandTests:
          - name: a
            command: "true"
          - name: b
            command: "true"
          - name: c
            command: "true"
            exitCode: "1"
            args: [-c, 1]
        """,
    )
    issues = issues_of(path)
    assert [(i.key_path, i.line) for i in issues] == [
        ("commandTests[2].exitCode", 9),
        ("commandTests[2].args[1]", 10),
    ]
    assert issues[0].message == "expected an integer, got a string ('1')"
    assert issues[1].hint is not None and "quote" in issues[1].hint


def test_missing_name_and_command(tmp_path: Path) -> None:
    issues = issues_of(
        write(tmp_path, 'schemaVersion: "2.0.0"\ncommandTests:\n  - args: [x]\n  - name: ""\n')
    )
    assert [(i.key_path, i.message) for i in issues] == [
        ("commandTests[0].command", "required key is missing"),
        ("commandTests[0].name", "required key is missing"),
        ("commandTests[1].command", "required key is missing"),
        ("commandTests[1].name", "must not be empty"),
    ]


def test_version_1_command_lists_get_a_conversion_hint(tmp_path: Path) -> None:
    issue = one_issue(
        write(
            tmp_path,
            'schemaVersion: "2.0.0"\ncommandTests:\n  - name: certs\n    command: ["/check"]\n',
        )
    )
    assert issue.key_path == "commandTests[0].command"
    assert "1.0.0" in issue.message and issue.hint is not None and "args" in issue.hint


def test_unknown_keys_get_a_near_miss(tmp_path: Path) -> None:
    issue = one_issue(
        write(
            tmp_path,
            """
            schemaVersion: "2.0.0"
            commandTests:
              - name: typo
                command: "true"
                expectedOuput: ["x"]
            """,
        )
    )
    assert issue.key_path == "commandTests[0].expectedOuput"
    assert issue.message == "unknown key 'expectedOuput'"
    assert issue.hint == "did you mean 'expectedOutput'?"


def test_env_vars_with_expansions_are_refused(tmp_path: Path) -> None:
    issue = one_issue(
        write(
            tmp_path,
            """
            schemaVersion: "2.0.0"
            globalEnvVars:
              - key: PATH
                value: /env/bin:$PATH
            """,
        )
    )
    assert issue.key_path == "globalEnvVars[0].value"
    assert issue.line == 4
    assert "$PATH" in issue.message


def test_env_var_names_must_be_names(tmp_path: Path) -> None:
    issue = one_issue(
        write(
            tmp_path,
            'schemaVersion: "2.0.0"\ncommandTests:\n'
            "  - {name: x, command: id, envVars: [{key: my-var, value: '1'}]}\n",
        )
    )
    assert issue.key_path == "commandTests[0].envVars[0].key"


def test_excluded_error_and_output_stay_on_their_streams(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        """
        commandTests:
          - name: quiet
            command: app
            expectedOutput: ["ready"]
            excludedError: ["(?i)warn"]
        """,
    )
    check = tests.commands[0]
    assert check.stdout == "ready"
    assert searches(check.stderr, "info: started\n")
    assert not searches(check.stderr, "WARNING: slow disk\n")


# --------------------------------------------------------------------------- file existence


@pytest.mark.parametrize(
    ("text", "kind", "mode"),
    [
        ("-rw-r--r--", "file", "0644"),
        ("-rwxr-xr-x", "file", "0755"),
        ("----------", "file", "0000"),
        ("drwxr-xr-x", "directory", "0755"),
        ("drwx------", "directory", "0700"),
        ("dtrwxrwxrwx", "directory", "1777"),
        ("urwxr-xr-x", "file", "4755"),
        ("grwxr-xr-x", "file", "2755"),
        ("ugrwxr-xr-x", "file", "6755"),
        ("dgrwxrwxr-x", "directory", "2775"),
        ("Lrwxrwxrwx", "symlink", "0777"),
    ],
)
def test_go_mode_strings(text: str, kind: str, mode: str) -> None:
    parsed = parse_go_mode(text)
    assert (parsed.type, parsed.mode) == (kind, mode)


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("drwxrwxrwt", "not a Go file mode string", "'dtrwxrwxrwx'"),
        ("-rwsr-xr-x", "not a Go file mode string", "'urwxr-xr-x'"),
        ("lrwxrwxrwx", "exclusive-use", "'Lrwxrwxrwx'"),
        ("tdrwxrwxrwx", "not how Go writes a mode", "'dtrwxrwxrwx'"),
        ("prw-r--r--", "named pipe", None),
        ("Dcrw-rw-rw-", "device", None),
        ("rw-r--r--", "not a Go file mode string", "write it as Go prints it"),
        ("0644", "not a Go file mode string", "write it as Go prints it"),
    ],
)
def test_bad_mode_strings(text: str, message: str, hint: str | None) -> None:
    with pytest.raises(ModeProblem) as caught:
        parse_go_mode(text)
    assert message in caught.value.message
    if hint is None:
        assert caught.value.hint is None
    else:
        assert caught.value.hint is not None and hint in caught.value.hint


def test_existence_defaults_to_should_exist(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        """
        fileExistenceTests:
          - {name: hosts, path: /etc/hosts}
          - {name: gone, path: /etc/dummy, shouldExist: false}
          - {name: unset ids, path: /etc, uid: -1, gid: -1}
        """,
    )
    assert tests.files == [
        FileCheck(path="/etc/hosts"),
        FileCheck(path="/etc/dummy", exists=False),
        FileCheck(path="/etc"),
    ]


@pytest.mark.parametrize(
    ("fields", "executable", "mode"),
    [
        ("isExecutableBy: any", True, None),
        ("isExecutableBy: owner", "owner", None),
        ("isExecutableBy: group", "group", None),
        ("isExecutableBy: other", "other", None),
        ("isExecutableBy: owner, permissions: -rwxr--r--", "owner", "0744"),
        ("isExecutableBy: group, permissions: -rw-r-xr--", "group", "0654"),
        ("isExecutableBy: other, permissions: -rw-r--r-x", "other", "0645"),
        ("isExecutableBy: any, permissions: -rw-r--r-x", True, "0645"),
    ],
)
def test_executable_by(tmp_path: Path, fields: str, executable: object, mode: str | None) -> None:
    tests = convert(
        tmp_path, f"fileExistenceTests:\n  - {{name: bin, path: /usr/bin/date, {fields}}}\n"
    )
    assert tests.files[0].executable == executable
    assert tests.files[0].mode == mode


@pytest.mark.parametrize(
    ("executable", "mode", "passes"),
    [
        ("owner", 0o744, True),
        ("owner", 0o055, False),
        ("group", 0o010, True),
        ("group", 0o705, False),
        ("other", 0o001, True),
        ("other", 0o770, False),
        (True, 0o001, True),
        (True, 0o644, False),
        (False, 0o644, True),
        (False, 0o100, False),
    ],
)
def test_executable_by_is_checked_on_that_bit(
    executable: Literal["owner", "group", "other"] | bool, mode: int, passes: bool
) -> None:
    # CST's file_existence.go: owner is mode & 0100, group 0010, other 0001, any 0111.
    target = SimpleNamespace(exists=True, mode=mode)
    host = SimpleNamespace(file=lambda path: target)
    ok, wanted, actual = _file_probe(host, FileCheck(path="/bin/x", executable=executable))
    assert ok is passes
    assert actual == ("" if passes else f"mode {mode:04o}")
    if not passes and isinstance(executable, str):
        assert wanted == f"executable by {executable}"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("isExecutableBy: group, permissions: -rwxr--r--", "can never pass"),
        ("isExecutableBy: any, permissions: -rw-r--r--", "can never pass"),
        ("isExecutableBy: everyone", "unknown isExecutableBy 'everyone'"),
    ],
)
def test_executable_by_that_cannot_map(tmp_path: Path, fields: str, message: str) -> None:
    issue = one_issue(
        write(
            tmp_path,
            'schemaVersion: "2.0.0"\n'
            f"fileExistenceTests:\n  - {{name: bin, path: /usr/bin/date, {fields}}}\n",
        )
    )
    assert issue.key_path == "fileExistenceTests[0].isExecutableBy"
    assert message in issue.message and "test 'bin'" in issue.message


def test_should_not_exist_with_attributes_is_refused(tmp_path: Path) -> None:
    issues = issues_of(
        write(
            tmp_path,
            'schemaVersion: "2.0.0"\nfileExistenceTests:\n'
            "  - {name: x, path: /x, shouldExist: false, uid: 0, permissions: -rw-r--r--}\n",
        )
    )
    assert sorted(i.key_path for i in issues) == [
        "fileExistenceTests[0].permissions",
        "fileExistenceTests[0].uid",
    ]
    assert all("can never be checked" in i.message for i in issues)


def test_symlink_permissions_other_than_777_never_match(tmp_path: Path) -> None:
    issue = one_issue(
        write(
            tmp_path,
            'schemaVersion: "2.0.0"\nfileExistenceTests:\n'
            "  - {name: link, path: /l, permissions: Lrw-r--r--}\n",
        )
    )
    assert "symlink" in issue.message and issue.hint == "write 'Lrwxrwxrwx'"


def test_existence_path_with_variables_is_refused(tmp_path: Path) -> None:
    issue = one_issue(
        write(tmp_path, 'schemaVersion: "2.0.0"\nfileExistenceTests:\n  - {name: h, path: $HOME}\n')
    )
    assert issue.key_path == "fileExistenceTests[0].path"


def test_bad_ids(tmp_path: Path) -> None:
    issues = issues_of(
        write(
            tmp_path,
            'schemaVersion: "2.0.0"\nfileExistenceTests:\n'
            "  - {name: x, path: /x, uid: root, gid: -5, shouldExist: 'yes'}\n",
        )
    )
    assert sorted((i.key_path, i.message) for i in issues) == [
        ("fileExistenceTests[0].gid", "expected a user or group id (0 or more), got -5"),
        ("fileExistenceTests[0].shouldExist", "expected true or false, got a string ('yes')"),
        ("fileExistenceTests[0].uid", "expected an integer, got a string ('root')"),
    ]


# --------------------------------------------------------------------------- file content


def test_content_single_regex_passes_through(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        """
        fileContentTests:
          - name: sources
            path: /etc/apt/sources.list
            expectedContents: ['.*deb\\.debian\\.org.*']
        """,
    )
    assert tests.files == [
        FileCheck(path="/etc/apt/sources.list", contains=r".*deb\.debian\.org.*")
    ]


def test_content_without_expectations_checks_existence(tmp_path: Path) -> None:
    tests = convert(tmp_path, "fileContentTests: [{name: x, path: /etc/hostname}]\n")
    assert tests.files == [FileCheck(path="/etc/hostname")]


def test_content_excluded_only(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        "fileContentTests: [{name: x, path: /etc/sudoers, excludedContents: ['NOPASSWD']}]\n",
    )
    contains = tests.files[0].contains
    assert searches(contains, "root ALL=(ALL:ALL) ALL\n")
    assert not searches(contains, "app ALL=(ALL) NOPASSWD: ALL\n")


def test_bad_regexes_point_at_the_pattern(tmp_path: Path) -> None:
    issues = issues_of(
        write(
            tmp_path,
            """
            schemaVersion: "2.0.0"
            fileContentTests:
              - name: lookahead
                path: /etc/passwd
                expectedContents:
                  - 'root'
                  - '(?=root)'
              - name: unicode
                path: /etc/passwd
                excludedContents: ['\\pL+']
            """,
        )
    )
    assert [(i.key_path, i.line) for i in issues] == [
        ("fileContentTests[0].expectedContents[1]", 7),
        ("fileContentTests[1].excludedContents[0]", 10),
    ]
    assert "test 'lookahead'" in issues[0].message and "RE2" in issues[0].message
    assert "Unicode classes" in issues[1].message


def test_duplicate_group_names_cannot_be_joined(tmp_path: Path) -> None:
    issue = one_issue(
        write(
            tmp_path,
            'schemaVersion: "2.0.0"\nfileContentTests:\n'
            "  - {name: x, path: /p, expectedContents: ['(?P<v>a)', '(?P<v>b)']}\n",
        )
    )
    assert issue.key_path == "fileContentTests[0].expectedContents"
    assert "cannot be joined" in issue.message


# --------------------------------------------------------------------------- metadata


def test_metadata_env_vars_are_checked(tmp_path: Path) -> None:
    # CST's pkg/types/v2/metadata.go reads envVars (renamed from env in 1.13.0, PR #314).
    tests = convert(tmp_path, "metadataTest:\n  envVars: [{key: LANG, value: C.UTF-8}]\n")
    assert tests.metadata.env == {"LANG": "C.UTF-8"}


def test_metadata_empty_values_and_missing_value(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        """
        metadataTest:
          envVars:
            - {key: EMPTY, value: ''}
            - {key: ALSO_EMPTY}
          labels:
            - {key: empty-label, value: ''}
          workdir: ''
          user: ''
        """,
    )
    metadata = tests.metadata
    assert metadata.env == {"EMPTY": "", "ALSO_EMPTY": ""}
    assert re.fullmatch(metadata.labels["empty-label"], "")
    assert not re.fullmatch(metadata.labels["empty-label"], "x")
    assert metadata.workdir is None and metadata.user is None  # CST: "" means not checked


def test_metadata_exact_label_escapes_regex_characters(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        "metadataTest:\n  labels: [{key: hash, value: 'a.b+(c)'}]\n",
    )
    pattern = tests.metadata.labels["hash"]
    assert pattern == exact_regex("a.b+(c)")
    assert re.fullmatch(pattern, "a.b+(c)") and re.search(pattern, "a.b+(c)")
    assert not re.fullmatch(pattern, "aXbb(c)") and not re.search(pattern, "a.b+(c)\n")


def test_metadata_labels_on_the_same_key_all_apply(tmp_path: Path) -> None:
    tests = convert(
        tmp_path,
        """
        metadataTest:
          labels:
            - {key: v, value: '^1\\.', isRegex: true}
            - {key: v, value: '-rc', isRegex: true}
        """,
    )
    pattern = tests.metadata.labels["v"]
    assert re.fullmatch(pattern, "1.2-rc1")
    assert not re.fullmatch(pattern, "1.2")
    assert not re.fullmatch(pattern, "2.0-rc1")


@pytest.mark.parametrize(
    ("body", "key_path", "message"),
    [
        ("env: [{key: A, value: b}]", "metadataTest.env", "renamed it to 'envVars'"),
        ("unboundEnv: [{key: A}]", "metadataTest.unboundEnv", "renamed it to 'unboundEnvVars'"),
        ("unboundEnvVars: [{key: A}]", "metadataTest.unboundEnvVars", "unset"),
        ("volumes: [/data]", "metadataTest.volumes", "no volumes"),
        ("unmountedVolumes: [/data]", "metadataTest.unmountedVolumes", "no volumes"),
        (
            "envVars: [{key: A, value: '^x', isRegex: true}]",
            "metadataTest.envVars[0].isRegex",
            "exactly",
        ),
        (
            "envVars: [{key: 1A, value: x}]",
            "metadataTest.envVars[0].key",
            "not an environment variable",
        ),
        ("envVars: [{key: A, value: x}, {key: A, value: y}]", "metadataTest.envVars[1]", "never"),
        ("exposedPorts: ['8080/tcp']", "metadataTest.exposedPorts[0]", "port numbers only"),
        ("unexposedPorts: ['0']", "metadataTest.unexposedPorts[0]", "not a port number"),
        ("entrypoint: /bin/app", "metadataTest.entrypoint", "expected a list of strings"),
        (
            "labels: [{key: x, value: '(?<=a)b', isRegex: true}]",
            "metadataTest.labels[0].value",
            "RE2",
        ),
        ("user: 0", "metadataTest.user", "expected a string"),
        ("workdirr: /", "metadataTest.workdirr", "unknown key 'workdirr'"),
    ],
)
def test_metadata_that_cannot_map(tmp_path: Path, body: str, key_path: str, message: str) -> None:
    issue = one_issue(write(tmp_path, f'schemaVersion: "2.0.0"\nmetadataTest:\n  {body}\n'))
    assert issue.key_path == key_path
    assert message in issue.message
    assert issue.line == 3


def test_metadata_ports_accept_numbers(tmp_path: Path) -> None:
    tests = convert(tmp_path, "metadataTest:\n  exposedPorts: [8080, '9090']\n")
    assert tests.metadata.exposed_ports == ["8080/tcp", "9090/tcp"]


# --------------------------------------------------------------------------- the document


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ('schemaVersion: "3.0.0"\n', "unsupported schemaVersion '3.0.0'", '"1.0.0"'),
        ("schemaVersion: 2\n", "unsupported schemaVersion 2", "2.0.0"),
        ("globalEnvVars: []\n", "required key is missing", "schemaVersion"),
    ],
)
def test_schema_version(tmp_path: Path, text: str, message: str, hint: str) -> None:
    # A wrong version stops at once: the rest would be judged by the wrong schema.
    issue = one_issue(write(tmp_path, text + "commandTests: [{command: [a, b]}]\n"))
    assert issue.key_path == "schemaVersion"
    assert issue.message == message
    assert issue.hint is not None and hint in issue.hint


def test_bad_yaml_gives_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'schemaVersion: "2.0.0"\ncommandTests:\n  - name: [x\n')
    issue = one_issue(path)
    assert issue.message.startswith("invalid YAML")
    assert issue.file == path and issue.line is not None and issue.line >= 3


def test_not_a_mapping(tmp_path: Path) -> None:
    issue = one_issue(write(tmp_path, "- just\n- a list\n"))
    assert issue.key_path == "" and "expected a mapping" in issue.message


def test_missing_file(tmp_path: Path) -> None:
    issue = one_issue(tmp_path / "absent.yaml")
    assert "cannot read the file" in issue.message


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    issue = one_issue(
        write(
            tmp_path, 'schemaVersion: "2.0.0"\nmetadataTest: {user: a}\nmetadataTest: {user: b}\n'
        )
    )
    assert issue.key_path == "metadataTest" and "duplicate key" in issue.message


def test_sections_of_the_wrong_type(tmp_path: Path) -> None:
    issues = issues_of(
        write(
            tmp_path,
            'schemaVersion: "2.0.0"\ncommandTests: {name: x}\nfileContentTests: [just-a-string]\n',
        )
    )
    assert [(i.key_path, i.message) for i in issues] == [
        ("commandTests", "expected a list, got a mapping"),
        ("fileContentTests[0]", "expected a mapping, got a string ('just-a-string')"),
    ]


@pytest.mark.parametrize("key", ["licenseTests", "containerRunOptions"])
def test_unsupported_sections(tmp_path: Path, key: str) -> None:
    issue = one_issue(write(tmp_path, f'schemaVersion: "2.0.0"\n{key}: {{user: root}}\n'))
    assert issue.key_path == key and "cannot be converted" in issue.message


def test_empty_file_with_only_a_version(tmp_path: Path) -> None:
    assert convert(tmp_path, "") == ImageTests()


def test_json_files_work_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{"schemaVersion": "2.0.0", "commandTests": [{"name": "id", "command": "id"}]}',
        "cst.json",
    )
    assert load_cst(path).commands == [CommandCheck(name="id", run=["id"])]


# --------------------------------------------------------------------------- Go regexes


@pytest.mark.parametrize(
    ("go", "python"),
    [
        ("plain text", "plain text"),
        ("^a.*b$", "^a.*b\\Z"),
        ("end\\z", "end\\Z"),
        ("(?m)^a$", "(?m:^a$)"),
        ("(?i)hello", "(?i:hello)"),
        ("(?s:a.b)$", "(?s:a.b)\\Z"),
        ("[[:digit:]]+", "[0-9]+"),
        ("[^[:space:]x]", "[^\\t\\n\\v\\f\\r x]"),
        ("[]a]", "[\\]a]"),
        ("[a[b]", "[a\\[b]"),
        ("[$]", "[$]"),
        ("\\Q1.5*\\E+", "1\\.5\\*+"),
        ("\\x{263a}", "\\U0000263a"),
        ("(?P<v>\\d+)", "(?P<v>\\d+)"),
        ("(?<v>\\d+)", "(?P<v>\\d+)"),
        ("a\\$b", "a\\$b"),
        ("", ""),
    ],
)
def test_go_regex_translation(go: str, python: str) -> None:
    assert go_regex(go) == python


@pytest.mark.parametrize(
    ("go", "message"),
    [
        ("(?=a)", "lookaround"),
        ("(?<!a)b", "lookaround"),
        ("(a)\\1", "backreference"),
        ("\\pL", "Unicode classes"),
        ("(?U)a+", "ungreedy"),
        ("a(?i)b", "middle of a pattern"),
        ("[[:^digit:]]", "negated POSIX class"),
        ("[abc", "not closed"),
        ("a\\", "lone backslash"),
        ("\\Z", "not an escape of Go"),
        ("a**", "Python cannot compile"),
    ],
)
def test_go_regex_refusals(go: str, message: str) -> None:
    with pytest.raises(RegexProblem) as caught:
        go_regex(go)
    assert message in caught.value.message


def test_go_dollar_does_not_match_before_a_final_newline() -> None:
    # Go: regexp.MustCompile(`ok$`).MatchString("ok\n") is false; Python's re.search is true.
    assert re.search("ok$", "ok\n")
    assert not re.search(go_regex("ok$"), "ok\n")
    assert re.search(go_regex("(?m)ok$"), "ok\nnext")


PATTERNS = ["a", "b+", "^a", "c\\Z", "(?i:B)", "\\d", "a\\nb"]


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="abcB1\n", max_size=12),
    expected=st.lists(st.sampled_from(PATTERNS), max_size=3),
    excluded=st.lists(st.sampled_from(PATTERNS), max_size=3),
)
def test_joined_regex_means_all_expected_and_no_excluded(
    text: str, expected: list[str], excluded: list[str]
) -> None:
    joined = combine_regexes(expected, excluded)
    wanted = all(re.search(p, text) for p in expected) and not any(
        re.search(p, text) for p in excluded
    )
    if joined is None:
        assert not expected and not excluded
        return
    assert (re.search(joined, text) is not None) == wanted
    whole = combine_regexes(expected, excluded, whole=True)
    assert whole is not None
    assert (re.fullmatch(whole, text) is not None) == wanted
