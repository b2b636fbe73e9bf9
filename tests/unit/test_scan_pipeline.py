"""The generated pipeline's ``scan:<image>`` jobs (only with scan.scanner_image): golden files
for trivy (the example catalog: plain-HTTP registry with a login) and grype (a synthetic
catalog), valid against GitLab's CI schema; without a scanner image nothing changes (the
golden files of test_gitlab_ci stay as they are)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jsonschema
import yaml

from imagefactory.render.gitlab_ci import STAGES, pipeline, render_pipeline
from imagefactory.spec.loader import load_catalog

from .conftest import copy_example_catalog
from .test_gitlab_ci import GOLDEN, options, schema_validator, write_catalog

__all__ = ["schema_validator"]  # the fixture, shared

TRIVY = "\nscan:\n  scanner_image: registry.example.invalid/mirror/trivy-imagefactory:0.58.1\n"
GRYPE = "\nscan:\n  scanner: grype\n  scanner_image: registry.example.invalid/mirror/grype-imagefactory:0.86\n"


def example(root: Path, extra: str) -> Path:
    root.mkdir()
    copy_example_catalog(root)
    with (root / "imagefactory.yaml").open("a") as stream:
        stream.write(extra)
    return root


def test_trivy_scan_jobs_of_the_example(
    tmp_path: Path,
    golden: Callable[[Path, str], None],
    schema_validator: jsonschema.Draft7Validator,
) -> None:
    catalog = load_catalog(example(tmp_path / "example", TRIVY))
    text = render_pipeline(catalog, options("dind"))
    document = yaml.safe_load(text)
    assert not list(schema_validator.iter_errors(document))
    assert document["stages"] == ["validate", "build", "test", "scan", "push", "promote"]
    job = document["scan:app/rag-api"]
    assert job["stage"] == "scan"
    assert job["image"] == {
        "name": "registry.example.invalid/mirror/trivy-imagefactory:0.58.1",
        "entrypoint": [""],
    }
    assert job["needs"] == [{"job": "test:app/rag-api", "artifacts": True}]
    assert job["rules"] == document["test:app/rag-api"]["rules"]
    assert job["script"] == [
        'REF="$(imagefactory gate app/rag-api --reference)"',
        "trivy version --format json > .imagefactory/scanner-app_rag-api.json",
        'trivy image --format json --output .imagefactory/scan-app_rag-api.json "$REF"',
        "imagefactory gate app/rag-api --report .imagefactory/scan-app_rag-api.json "
        "--scanner-info .imagefactory/scanner-app_rag-api.json",
    ]
    assert job["variables"] == {
        "TRIVY_USERNAME": "$IMAGEFACTORY_REGISTRY_USER",
        "TRIVY_PASSWORD": "$IMAGEFACTORY_REGISTRY_PASSWORD",
        "TRIVY_INSECURE": "true",  # the example's registry speaks plain HTTP
    }
    assert job["artifacts"]["when"] == "always"
    assert sorted(n for n in document if n.startswith("scan:")) == [
        "scan:app/rag-api",
        "scan:app/rag-api-distroless",
        "scan:base/debian12",
        "scan:runtime/llm:cpu",
        "scan:runtime/llm:cuda",
    ]
    golden(GOLDEN / "example-scan-trivy.yml", text)


def test_grype_scan_job(
    tmp_path: Path,
    golden: Callable[[Path, str], None],
    schema_validator: jsonschema.Draft7Validator,
) -> None:
    root = write_catalog(
        tmp_path / "grype",
        {"base/minimal": "bootstrap: {suite: bookworm, variant: minbase}\nuser: root\n"},
    )
    with (root / "imagefactory.yaml").open("a") as stream:
        stream.write(GRYPE)
    catalog = load_catalog(root)
    text = render_pipeline(catalog, options("host", prefix="catalog"))
    document = yaml.safe_load(text)
    assert not list(schema_validator.iter_errors(document))
    job = document["scan:base/minimal"]
    assert "image" not in job  # a host runner: the scanner is on the runner
    assert job["script"] == [
        'REF="$(imagefactory -C catalog gate base/minimal --reference)"',
        'grype "registry:$REF" -o json --file catalog/.imagefactory/scan-base_minimal.json',
        "imagefactory -C catalog gate base/minimal --report catalog/.imagefactory/scan-base_minimal.json",
    ]
    assert job["variables"] == {
        "GRYPE_REGISTRY_AUTH_AUTHORITY": "registry.example.invalid",
        "GRYPE_REGISTRY_AUTH_USERNAME": "$REG_USER",
        "GRYPE_REGISTRY_AUTH_PASSWORD": "$REG_PASSWORD",
    }
    golden(GOLDEN / "single-scan-grype.yml", text)


def test_without_a_scanner_image_there_is_no_scan_stage(tmp_path: Path) -> None:
    catalog = load_catalog(example(tmp_path / "example", "\nscan:\n  scanner: grype\n"))
    jobs = pipeline(catalog, options())
    assert jobs["stages"] == list(STAGES)
    assert not [name for name in jobs if name.startswith("scan:")]
