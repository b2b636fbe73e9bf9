"""Shell-less images (``distroless:``): what validate refuses for them (file, line, key path,
hint), the final stage they render to, and the filesystem checks read from layer tarballs
(no daemon: the layers are made here)."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import pytest

from imagefactory.errors import SpecError, SpecIssue
from imagefactory.imagetest.checks import filesystem_checks
from imagefactory.imagetest.layers import LayerHost, layer_checks
from imagefactory.sbom.rootfs import from_layers, wanted
from imagefactory.spec.companions import companion_issues
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import FileCheck, ImageTests, UserCheck

from .conftest import SHELL_LESS_EXAMPLE, Edit
from .test_render import dockerfile

IMAGE = f"{SHELL_LESS_EXAMPLE}/image.yaml"
REF = "app/rag-api-distroless"


def issues_of(root: Path) -> list[SpecIssue]:
    with pytest.raises(SpecError) as caught:
        load_catalog(root)
    return caught.value.issues


# --------------------------------------------------------------------------- validate


def test_command_checks_are_refused_with_file_line_key_and_hint(
    catalog_dir: Path, edit: Edit
) -> None:
    edit(
        IMAGE, "tests:\n", "tests:\n  commands:\n    - name: a shell\n      run: [sh, -c, 'true']\n"
    )
    [issue] = issues_of(catalog_dir)
    assert issue.file == catalog_dir / IMAGE
    assert issue.key_path == "tests.commands"
    assert issue.line == (catalog_dir / IMAGE).read_text().splitlines().index("  commands:") + 1
    assert "shell-less" in issue.message and "no shell" in issue.message
    assert issue.hint is not None and "files, packages, users" in issue.hint


def test_a_variant_that_makes_an_image_shell_less_is_named_where_its_commands_are(
    catalog_dir: Path, edit: Edit
) -> None:
    """runtime/llm has command checks; a variant overlay that sets distroless: makes them
    refused for that variant only (the document's key path: that is where they are written)."""
    edit(
        "images/runtime/llm/image.yaml",
        "      labels:\n        com.example-bank.accelerator: cpu\n",
        "      labels:\n        com.example-bank.accelerator: cpu\n      distroless: true\n",
    )
    issues = issues_of(catalog_dir)
    commands = [i for i in issues if i.key_path == "tests.commands"]
    assert len(commands) == 1 and "runtime/llm:cpu" in commands[0].message
    # and app/rag-api, built on it, is refused: a shell-less parent has no shell for RUN
    [built_on] = [i for i in issues if i.key_path == "from"]
    assert built_on.file == catalog_dir / "images/app/rag-api/image.yaml"
    assert "runtime/llm:cpu, which is shell-less" in built_on.message


@pytest.mark.parametrize(
    ("addition", "key", "words"),
    [
        ("entrypoint: [/bin/sh, -c, 'python -m x']\n", "entrypoint", "starts /bin/sh"),
        ("healthcheck:\n  cmd: [bash, -c, 'true']\n", "healthcheck.cmd", "starts bash"),
        ("playbooks: [ansible/runtime.yml]\n", "playbooks", "Ansible"),
    ],
)
def test_what_needs_a_shell_at_run_or_build_time_is_refused(
    catalog_dir: Path, edit: Edit, addition: str, key: str, words: str
) -> None:
    edit(IMAGE, "distroless: true\n", f"distroless: true\n{addition}")
    [issue] = [i for i in issues_of(catalog_dir) if i.key_path == key]
    assert words in issue.message and issue.hint


def test_a_packer_target_is_refused(catalog_dir: Path, edit: Edit) -> None:
    edit(IMAGE, "targets: [docker]", "targets: [docker, packer]")
    [issue] = issues_of(catalog_dir)
    assert issue.key_path == "targets" and "Packer" in issue.message


def test_keep_packages_is_a_grammar_not_a_shell_word(catalog_dir: Path, edit: Edit) -> None:
    edit(IMAGE, "distroless: true", "distroless:\n  keep_packages: [netbase, '$(id)']")
    [issue] = issues_of(catalog_dir)
    assert issue.key_path == "distroless.keep_packages[1]"


def test_custom_tests_and_structure_test_commands_are_refused(catalog_dir: Path) -> None:
    folder = catalog_dir / SHELL_LESS_EXAMPLE
    (folder / "tests").mkdir()
    (folder / "tests" / "test_x.py").write_text("def test_x(host):\n    pass\n")
    (folder / "structure-tests").mkdir()
    cst = folder / "structure-tests" / "extra.yaml"
    cst.write_text(
        'schemaVersion: "2.0.0"\ncommandTests:\n  - name: python\n    command: python\n'
        "    args: [--version]\n"
    )
    issues = companion_issues(load_catalog(catalog_dir))
    assert {(i.file, i.key_path) for i in issues} == {
        (folder / "tests" / "test_x.py", ""),
        (cst, "commandTests"),
    }
    assert all("shell-less" in i.message and i.hint for i in issues)


# --------------------------------------------------------------------------- render


def test_the_final_stage_is_scratch_with_the_lineage_config(catalog_dir: Path) -> None:
    text = dockerfile(load_catalog(catalog_dir), REF)
    first, final = text.split("\nFROM scratch\n")
    assert "bash /run/imagefactory/shell-less.sh --venv /opt/venv" in first
    assert "--path /opt/rag-api/rag_api --path /opt/rag-api --path /home/app --account app" in first
    assert final.startswith("COPY --from=0 /imagefactory-final/ /\n")
    # what app/rag-api and runtime/llm:cpu set, restated: a scratch stage inherits nothing
    for line in (
        'PATH="/opt/venv/bin:',
        "WORKDIR /opt/rag-api",
        "EXPOSE 8080",
        'ENTRYPOINT ["python", "-m", "uvicorn"',
        'CMD ["python", "-c", "import urllib.request;',
        'com.example-bank.accelerator="cpu"',
        'org.imagefactory.ref="app/rag-api-distroless"',
    ):
        assert line in final, line
    assert final.rstrip().endswith("USER 10001:10001")


def test_a_value_past_the_grammar_still_reaches_the_closure_script_as_one_shell_word(
    catalog_dir: Path,
) -> None:
    """The grammar keeps shell characters out of paths; the renderer escapes them anyway."""
    catalog = load_catalog(catalog_dir)
    image = catalog.images[REF]
    hostile = image.spec.model_copy(update={"workdir": "/opt/a;b $(id)"})
    catalog = dataclasses.replace(
        catalog, images={**catalog.images, REF: dataclasses.replace(image, spec=hostile)}
    )
    text = dockerfile(catalog, REF)
    assert "--path '/opt/a;b $(id)' --path /home/app" in text


# --------------------------------------------------------------------------- layers

PASSWD = b"root:x:0:0:root:/root:/bin/bash\napp:x:10001:10001::/home/app:/usr/sbin/nologin\n"
GROUP = b"root:x:0:\napp:x:10001:\n"
STATUS = b"Package: python3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6\n"
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\n'
METADATA = b"Metadata-Version: 2.1\nName: FastAPI\nVersion: 0.115.12\n"
DIST_INFO = "opt/venv/lib/python3.11/site-packages/fastapi-0.115.12.dist-info/METADATA"


def _layer(path: Path, entries: list[tuple[str, str, bytes | str, int, int]]) -> Path:
    """A layer tarball: (name, kind, content or link target, mode, uid) per entry."""
    with tarfile.open(path, "w") as tar:
        for name, kind, content, mode, uid in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid = mode, uid, uid
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, str(content)
                tar.addfile(info)
            else:
                data = content if isinstance(content, bytes) else content.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def host(tmp_path: Path) -> LayerHost:
    lower = _layer(
        tmp_path / "1.tar",
        [
            ("bin", "link", "usr/bin", 0o777, 0),
            ("usr", "dir", b"", 0o755, 0),
            ("usr/bin", "dir", b"", 0o755, 0),
            ("usr/bin/bash", "file", b"\x7fELF", 0o755, 0),
            ("usr/bin/python3.11", "file", b"\x7fELF", 0o755, 0),
            ("etc", "dir", b"", 0o755, 0),
            ("etc/passwd", "file", PASSWD, 0o644, 0),
            ("etc/group", "file", GROUP, 0o644, 0),
            ("etc/os-release", "link", "../usr/lib/os-release", 0o777, 0),
            ("usr/lib/os-release", "file", OS_RELEASE, 0o644, 0),
            ("var/lib/dpkg/status.d/python3.11-minimal", "file", STATUS, 0o644, 0),
            (DIST_INFO, "file", METADATA, 0o644, 0),
            ("home/app", "dir", b"", 0o750, 10001),
            ("opt/rag-api/main.py", "file", b"app = 1\n", 0o644, 0),
        ],
    )
    upper = _layer(tmp_path / "2.tar", [("usr/bin/.wh.bash", "file", b"", 0o644, 0)])
    extra = {"etc/passwd", "etc/group", "opt/rag-api/main.py"}  # what read_image adds
    root = from_layers([lower, upper], lambda p: wanted(p) or p in extra)
    return LayerHost(root)


def test_the_layer_host_answers_what_testinfra_would(host: LayerHost) -> None:
    tests = ImageTests.model_validate(
        {
            "packages": {"installed": ["python3.11-minimal"], "absent": ["bash", "dash"]},
            "pip": {"installed": ["fastapi"], "absent": ["flask"]},
            "files": [
                {"path": "/bin/bash", "exists": False},  # removed by the upper layer's whiteout
                {"path": "/bin/python3.11", "type": "file", "executable": True},  # via bin → usr/bin
                {"path": "/bin", "type": "symlink"},
                {"path": "/usr/bin", "type": "directory", "mode": "0755", "owner": "root"},
                {"path": "/home/app", "type": "directory", "owner": "app", "group": "app",
                 "mode": "0750"},
                {"path": "/etc/os-release", "contains": "ID=debian"},  # read through the link
                {"path": "/opt/rag-api/main.py", "contains": "^app = 1$", "executable": False},
            ],
            "users": [{"name": "app", "uid": 10001, "gid": 10001, "home": "/home/app"}],
        }
    )  # fmt: skip
    results = list(filesystem_checks(tests, host, "/opt/venv"))
    assert [(r.kind, r.name) for r in results if not r.passed] == []
    assert len(results) == 13


def test_a_failed_layer_check_says_expected_and_actual(host: LayerHost) -> None:
    tests = ImageTests(
        files=[FileCheck(path="/home/app", owner="root", mode="0755")],
        users=[UserCheck(name="app", shell="/bin/bash"), UserCheck(name="nobody")],
    )
    files, shell, nobody = filesystem_checks(tests, host, "/opt/venv")
    assert not files.passed
    assert (files.expected, files.actual) == ("mode 0755; owner root", "mode 0750; owner app")
    assert (shell.expected, shell.actual) == ("shell /bin/bash", "shell /usr/sbin/nologin")
    assert nobody.actual == "no such user"


def test_a_command_check_on_a_shell_less_image_fails_with_the_reason(host: LayerHost) -> None:
    tests = ImageTests.model_validate({"commands": [{"name": "sh", "run": ["sh", "-c", "true"]}]})
    [result] = layer_checks(tests, host, "/opt/venv")
    assert not result.passed and "shell-less" in result.actual
