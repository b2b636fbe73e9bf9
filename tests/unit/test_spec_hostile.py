"""Hostile input at validation time (issue 13): every field that reaches a Dockerfile, a shell or a
path has a strict grammar, and validate refuses what breaks it with file, line, key and a hint.

Each case here was accepted before these grammars: a newline in a value added a Dockerfile
instruction, ``;`` or ``$( )`` reached a RUN shell, a path left its place or a credential reached
the image history. The renderer escapes on output as well; these tests hold the loader alone.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from imagefactory.errors import SpecError, SpecIssue
from imagefactory.spec.checks import looks_secret
from imagefactory.spec.loader import load_catalog

from .conftest import Edit

APP = "images/app/rag-api/image.yaml"
BASE = "images/base/debian12/image.yaml"
RUNTIME = "images/runtime/llm/image.yaml"
PROJECT = "imagefactory.yaml"
HEX = "0123456789abcdef" * 4


def issues_of(root: Path) -> list[SpecIssue]:
    with pytest.raises(SpecError) as caught:
        load_catalog(root)
    return caught.value.issues


def refused(root: Path, key: str) -> SpecIssue:
    """The one issue at ``key``; it has a line and a hint, and shows no raw control character."""
    issues = issues_of(root)
    matching = [i for i in issues if i.key_path == key]
    assert len(matching) == 1, f"expected one issue at {key}, got {issues}"
    issue = matching[0]
    assert issue.line is not None and issue.hint, issue
    assert "\n" not in issue.message and "\x1b" not in issue.message, issue
    return issue


# --------------------------------------------------------------------------- Dockerfile fields


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("[python3, python3-venv", '["python3\\nRUN id", python3-venv', "packages[0]"),
        ("[python3, python3-venv", '["python3;id", python3-venv', "packages[0]"),
        ("[python3, python3-venv", '["$(id)", python3-venv', "packages[0]"),
        ("[python3, python3-venv", "[a, python3-venv", "packages[0]"),  # Debian: 2+ characters
        ("  - numpy==2.2.6", '  - "numpy==2.2.6\\nRUN id"', "pip[0]"),
        ("  - numpy==2.2.6", '  - "numpy @ https://u:pw@pypi.corp/numpy.whl"', "pip[0]"),
        ("venv: /opt/venv", "venv: opt/venv", "venv"),
        ("venv: /opt/venv", "venv: /opt/../venv", "venv"),
        ("user: app\n\nvariants", 'user: "app\\nRUN id"\n\nvariants', "user"),
        ("user: app\n\nvariants", 'user: "app;id"\n\nvariants', "user"),
    ],
)
def test_runtime_fields_have_a_grammar(
    catalog_dir: Path, edit: Edit, old: str, new: str, key: str
) -> None:
    edit(RUNTIME, old, new)
    refused(catalog_dir, key)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        (
            "shell: /usr/sbin/nologin\n\nuser",
            'shell: "/bin/sh\\nRUN id"\n\nuser',
            "create_users[0].shell",
        ),
        ("shell: /usr/sbin/nologin\n\nuser", "shell: /bin/sh;id\n\nuser", "create_users[0].shell"),
        (
            "    home: /home/app\n    shell",
            "    home: /home/my app\n    shell",
            "create_users[0].home",
        ),
        (
            "    home: /home/app\n    shell",
            "    home: //home/app\n    shell",
            "create_users[0].home",
        ),
        ("  - name: app\n    uid", "  - name: 1app\n    uid", "create_users[0].name"),
        ("  - name: app\n    uid", "  - name: a.b\n    uid", "create_users[0].name"),
        ("workdir: /home/app", 'workdir: "/home/app\\nRUN id"', "workdir"),
        ("workdir: /home/app", "workdir: /home/app $HOME", "workdir"),
        (
            "  packages: [ca-certificates, tzdata, passwd]\n\n",
            '  packages: ["tzdata\\nid"]\n\n',
            "bootstrap.packages[0]",
        ),
        (
            "    installed: [ca-certificates, tzdata]",
            '    installed: ["a b"]',
            "tests.packages.installed[0]",
        ),
    ],
)
def test_base_fields_have_a_grammar(
    catalog_dir: Path, edit: Edit, old: str, new: str, key: str
) -> None:
    edit(BASE, old, new)
    refused(catalog_dir, key)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("dest: /opt/rag-api/rag_api", "dest: /opt/rag api", "files[0].dest"),
        ("dest: /opt/rag-api/rag_api", 'dest: "/opt/x\\nRUN id"', "files[0].dest"),
        ("owner: root:root", "owner: root:root;id", "files[0].owner"),
        ("ports: [8080]", 'ports: ["٨٠٨٠"]', "ports[0]"),  # Arabic-Indic digits: int() takes them
        ("ports: [8080]", 'ports: ["08080"]', "ports[0]"),
        ("  com.example-bank.image.tier: app", '  "tier\\nRUN id": app', 'labels["tier\\nRUN id"]'),
        ("  com.example-bank.image.tier: app", "  Tier Name: app", 'labels["Tier Name"]'),
        (
            "description: Retrieval API",
            'description: "Retrieval\\e[31m"\n# Retrieval API',
            "description",
        ),
        ("entrypoint: [python,", 'entrypoint: ["py\\0thon",', "entrypoint[0]"),
        ("      path: /healthz", '      path: "/healthz\\r"', "tests.services[0].http.path"),
    ],
)
def test_app_fields_have_a_grammar(
    catalog_dir: Path, edit: Edit, old: str, new: str, key: str
) -> None:
    edit(APP, old, new)
    refused(catalog_dir, key)


def test_env_values_keep_dollars_and_tabs(catalog_dir: Path, edit: Edit) -> None:
    edit(
        APP, '  RAG_API_PORT: "8080"', '  RAG_API_PORT: "8080"\n  NOTE: "price $5 and ${HOME}\\tok"'
    )
    spec = load_catalog(catalog_dir).images["app/rag-api"].spec
    assert spec.env["NOTE"] == "price $5 and ${HOME}\tok"


def test_a_line_break_in_an_env_value_is_refused_at_validate(catalog_dir: Path, edit: Edit) -> None:
    """Docker cannot store a line break in an ENV or LABEL value (an instruction ends there);
    validate says so, where it is written, before render refuses it."""
    edit(APP, '  RAG_API_PORT: "8080"', '  RAG_API_PORT: "8080"\n  NOTE: "one\\ntwo"')
    issue = refused(catalog_dir, "env.NOTE")
    assert "line break" in issue.message and "ENV or LABEL" in (issue.hint or "")


def test_good_values_still_load(catalog_dir: Path, edit: Edit) -> None:
    edit(RUNTIME, "[python3, python3-venv", "[python3=3.11.2-1+b1, libc6:amd64, python3-venv")
    edit(BASE, "  - name: app\n    uid", "  - name: _app-user\n    uid")
    edit(BASE, "user: app\n", "user: _app-user\n")
    edit(BASE, "name: app\n      uid", "name: _app-user\n      uid")
    edit(BASE, "      owner: app\n", "      owner: _app-user\n")
    edit(APP, "ports: [8080]", 'ports: [8080, "65535/udp"]')
    load_catalog(catalog_dir)


def test_a_file_name_with_a_space_is_refused(catalog_dir: Path, edit: Edit) -> None:
    (catalog_dir / "images/app/rag-api/my app").mkdir()
    edit(APP, "  - src: app/rag_api", "  - src: my app")
    refused(catalog_dir, "files[0].src")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: os.mkfifo(d / "pipe"), "FIFO"),
        (lambda d: (d / "loop").symlink_to("loop"), "symlink loop"),
        (lambda d: (d / "gone").symlink_to("nowhere"), "dangling symlink"),
        (lambda d: (d / "root").symlink_to("/"), "pointing outside"),
    ],
    ids=["fifo", "loop", "dangling", "root"],
)
def test_what_cannot_be_copied_fails_validate_not_render(
    catalog_dir: Path, make: Callable[[Path], object], expected: str
) -> None:
    make(catalog_dir / "images/app/rag-api/app/rag_api")
    assert expected in refused(catalog_dir, "files[0].src").message


@pytest.mark.parametrize("name", ["evil\nRUN id", "tab\there", "esc\x1b[31m"])
def test_a_file_name_with_a_control_character_is_refused(catalog_dir: Path, name: str) -> None:
    (catalog_dir / "images/app/rag-api/app/rag_api" / name).write_text("x")
    issue = refused(catalog_dir, "files[0].src")
    assert "control character" in issue.message


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('stdout: "CPU|GPU"', 'stdout: "CPU|(GPU"', "tests.commands[0].stdout"),
        ('stdout: "CPU|GPU"', 'stdout: "CPU|GPU"\n      stderr: "[a"', "tests.commands[0].stderr"),
    ],
)
def test_test_regexes_compile(catalog_dir: Path, edit: Edit, old: str, new: str, key: str) -> None:
    edit(RUNTIME, old, new)
    assert "not a regular expression" in refused(catalog_dir, key).message


@pytest.mark.parametrize("pattern", ["(" * 5000 + ")" * 5000, "a{99999999999999999999}"])
def test_a_regex_too_deep_or_too_large_is_refused_not_a_crash(
    catalog_dir: Path, edit: Edit, pattern: str
) -> None:
    edit(RUNTIME, 'stdout: "CPU|GPU"', f'stdout: "{pattern}"')
    assert "not a regular expression" in refused(catalog_dir, "tests.commands[0].stdout").message


def test_file_check_and_label_regexes_compile(catalog_dir: Path, edit: Edit) -> None:
    utc = "    - path: /usr/share/zoneinfo/UTC\n"
    edit(BASE, utc, f"{utc}      contains: '*x'\n")
    edit(APP, '    user: "10001:10001"', "    user: \"10001:10001\"\n    labels: {a: '(('}")
    keys = {i.key_path for i in issues_of(catalog_dir)}
    assert keys == {"tests.files[1].contains", "tests.metadata.labels.a"}


# --------------------------------------------------------------------------- parents


@pytest.mark.parametrize(
    "value",
    [
        f'"@sha256:{HEX}"',
        f'"docker.io/x y@sha256:{HEX}"',
        f'"docker.io/Library/debian@sha256:{HEX}"',
    ],
)
def test_an_external_parent_needs_a_reference(catalog_dir: Path, edit: Edit, value: str) -> None:
    edit(APP, "from: runtime/llm:cpu", f"from: {value}")
    assert "REGISTRY/PATH" in (refused(catalog_dir, "from").hint or "")


def test_a_digest_with_a_trailing_newline_is_refused(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, "from: runtime/llm:cpu", f'from: "docker.io/library/debian@sha256:{HEX}\\n"')
    refused(catalog_dir, "from")


# --------------------------------------------------------------------------- catalog level


def test_refs_that_share_an_output_folder(catalog_dir: Path) -> None:
    for name in ("tools/cli", "tools_cli"):
        folder = catalog_dir / "images" / name.replace("/", "-")
        folder.mkdir(parents=True)
        (folder / "image.yaml").write_text(f"name: {name}\nversion: 1.0.0\nfrom: base/debian12\n")
    issues = [i for i in issues_of(catalog_dir) if "output folder" in i.message]
    assert len(issues) == 2
    assert all("'tools/cli' and 'tools_cli'" in i.message for i in issues)
    assert all(i.key_path == "name" and i.line == 1 for i in issues)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("packages: !!set {curl: null}", "write a list"),
        ("description: 2024-01-31", "quote it"),
        ("description: !!binary aGVsbG8=", "as text"),
        ("description: !!python/name:os.system", "remove the tag"),
    ],
)
def test_yaml_values_that_are_not_plain_data(
    catalog_dir: Path, edit: Edit, value: str, words: str
) -> None:
    edit(
        APP,
        "description: Retrieval API over the lab's policy documents, with a health endpoint.",
        value,
    )
    key = value.partition(":")[0]
    assert words in (refused(catalog_dir, key).hint or "")


# --------------------------------------------------------------------------- project settings


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("state: .imagefactory/state.json", "state: ../state.json", "state"),
        ("state: .imagefactory/state.json", "state: /tmp/state.json", "state"),
        ("catalog: images", "catalog: ..", "catalog"),
        (
            "    debian: http://deb.debian.org/debian\n",
            "    debian: http://u:pw@deb.corp/debian\n",
            "build.mirrors.debian",
        ),
        (
            "  mirrors:\n",
            "  proxy: {https: 'http://u:pw@proxy.corp:3128'}\n  mirrors:\n",
            "build.proxy.https",
        ),
        (
            "  mirrors:\n",
            "  mirrors:\n    pypi: https://tok@nexus.corp/simple\n",
            "build.mirrors.pypi",
        ),
        ("  mirrors:\n", "  proxy: {http: 'proxy.corp:3128'}\n  mirrors:\n", "build.proxy.http"),
    ],
)
def test_project_settings_stay_inside_and_hold_no_credentials(
    catalog_dir: Path, edit: Edit, old: str, new: str, key: str
) -> None:
    edit(PROJECT, old, new)
    assert [i.key_path for i in issues_of(catalog_dir) if i.key_path == key] == [key]


def test_state_through_a_symlink_outside_the_project(
    catalog_dir: Path, edit: Edit, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere")
    (catalog_dir / "link").symlink_to(outside)
    edit(PROJECT, "state: .imagefactory/state.json", "state: link/state.json")
    assert "outside the project" in refused(catalog_dir, "state").message


def test_a_catalog_linked_outside_the_project_is_not_read(
    catalog_dir: Path, edit: Edit, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "images"
    shutil.copytree(catalog_dir / "images", outside)
    (outside / "base/debian12/image.yaml").write_text("name: [broken\n")
    (catalog_dir / "link").symlink_to(outside)
    edit(PROJECT, "catalog: images", "catalog: link")
    issues = issues_of(catalog_dir)
    assert [i.key_path for i in issues] == ["catalog"], issues
    assert "outside the project" in issues[0].message


# --------------------------------------------------------------------------- secrets


SECRET_NAMES = [
    "PASSPHRASE", "DB_PWD", "PWD", "PASSWD", "CREDS", "CREDENTIALS", "JWT", "TOKENS", "NETRC",
    "AUTH", "APIKEY", "API_KEY", "PRIVATE_KEY", "ACCESS_KEY", "SECRET_KEY", "SESSION", "COOKIE",
    "AWS_SESSION_TOKEN", "GITHUB_TOKENS", "dbPassword", "apiKey", "SSH_PASSPHRASE", "MY_SECRETS",
]  # fmt: skip
PLAIN_NAMES = [
    "PATH", "TZ", "LANG", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PIP_DEFAULT_TIMEOUT",
    "NVIDIA_DRIVER_CAPABILITIES", "RAG_API_PORT", "HTTP_PROXY", "PIP_INDEX_URL", "HOME",
]  # fmt: skip


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_spellings(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_plain_names_are_not_secrets(name: str) -> None:
    assert not looks_secret(name)


def test_secret_looking_env_is_refused_like_a_build_arg(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, '  RAG_API_PORT: "8080"', '  RAG_API_PORT: "8080"\n  DB_PWD: hunter2')
    assert "image config" in refused(catalog_dir, "env.DB_PWD").message


@pytest.mark.parametrize("section", ["env", "build_args"])
def test_a_url_with_credentials_in_a_value(catalog_dir: Path, edit: Edit, section: str) -> None:
    lines = "  PIP_INDEX_URL: https://me:pw@nexus.corp/simple\n"
    edit(APP, "env:\n", f"env:\n{lines}" if section == "env" else f"build_args:\n{lines}env:\n")
    assert "credentials" in refused(catalog_dir, f"{section}.PIP_INDEX_URL").message
