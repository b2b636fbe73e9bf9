"""The generated GitOps layout: golden files, Kubernetes schemas (strict), kubectl kustomize,
and the Argo CD Application CRD schema."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from imagefactory.errors import UserError
from imagefactory.gitops.manifests import Pinned, render_repository
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.gitops import load_settings
from imagefactory.spec.loader import load_catalog

from .conftest import REPO, Edit

GOLDEN = Path(__file__).parent / "golden" / "gitops"
ARGO_SCHEMA = yaml.safe_load((GOLDEN / "argocd-application-schema.yaml").read_text())
KUBERNETES = "1.32.0"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
PROD_DIGEST = "sha256:" + "c" * 64


@pytest.fixture
def catalog(catalog_dir: Path) -> Catalog:
    shutil.copy(REPO / "gitops.yaml", catalog_dir / "gitops.yaml")
    return load_catalog(catalog_dir)


@pytest.fixture
def written(catalog: Catalog, tmp_path: Path) -> dict[str, str]:
    files = render_repository(
        catalog, load_settings(catalog), {("app/rag-api", "prod"): Pinned(PROD_DIGEST, "0.2.1")}
    )
    for relative, text in files.items():
        (tmp_path / "out" / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / relative).write_text(text)
    return files


def test_the_layout_matches_the_golden_files(
    written: dict[str, str], golden: Callable[[Path, str], None]
) -> None:
    apps = ("rag-api", "rag-api-distroless")  # the example's applications
    assert sorted(written) == sorted(
        [
            "apps/argocd/project.yaml",
            *(
                f"apps/argocd/{app}-{env}.yaml"
                for app in apps
                for env in ("dev", "preprod", "prod")
            ),
            *(
                f"apps/{app}/base/{name}.yaml"
                for app in apps
                for name in ("deployment", "kustomization", "networkpolicy", "service")
            ),
            *(
                f"apps/{app}/overlays/dev/{name}.yaml"
                for app in apps
                for name in ("kustomization", "resources")
            ),
            *(
                f"apps/{app}/overlays/{env}/{name}.yaml"
                for app in apps
                for env in ("preprod", "prod")
                for name in ("kustomization", "pdb", "resources")
            ),
        ]
    )
    for relative, text in written.items():
        golden(GOLDEN / relative, text)


def _kustomize(folder: Path) -> list[dict[str, object]]:
    built = subprocess.run(
        [KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


@pytest.mark.parametrize("env", ["dev", "preprod", "prod"])
def test_each_overlay_builds_and_validates_strictly(
    written: dict[str, str], tmp_path: Path, env: str
) -> None:
    documents = _kustomize(tmp_path / "out" / "apps/rag-api/overlays" / env)
    kinds = ["Deployment", "NetworkPolicy", "Service"]
    if env != "dev":  # replicas > 1
        kinds.insert(2, "PodDisruptionBudget")
    assert sorted(str(d["kind"]) for d in documents) == kinds
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES, strict=True)
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]  # type: ignore[index]
    [container] = pod["containers"]
    assert deployment["metadata"]["namespace"] == f"bank-ai-lab-{env}"  # type: ignore[index]
    assert spec["replicas"] == {"dev": 1, "preprod": 2, "prod": 3}[env]  # type: ignore[index]
    repo = f"127.0.0.1:5000/bank-ai-lab/{env}/app/rag-api"
    assert container["image"] == (f"{repo}@{PROD_DIGEST}" if env == "prod" else f"{repo}:0.3.0")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["ports"] == [{"containerPort": 8080, "name": "tcp-8080", "protocol": "TCP"}]
    assert container["readinessProbe"]["exec"]["command"][0] == "python"
    assert container["livenessProbe"] == {
        "tcpSocket": {"port": 8080},
        "periodSeconds": 15,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["imagePullSecrets"] == [{"name": "registry-pull"}]
    labels = deployment["metadata"]["labels"]  # type: ignore[index]
    assert labels["app.kubernetes.io/instance"] == "rag-api"
    assert labels["app.kubernetes.io/version"] == ("0.2.1" if env == "prod" else "0.3.0")
    assert labels["app.kubernetes.io/part-of"] == "bank-ai-lab"
    assert "app.kubernetes.io/version" not in spec["selector"]["matchLabels"]  # type: ignore[index]
    limits = {"dev": "512Mi", "preprod": "1Gi", "prod": "2Gi"}[env]
    assert container["resources"]["limits"]["memory"] == limits


def test_base_manifests_validate_strictly(written: dict[str, str]) -> None:
    for name in ("deployment", "service", "networkpolicy"):
        document = yaml.safe_load(written[f"apps/rag-api/base/{name}.yaml"])
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_applications_validate_against_the_crd_schema(written: dict[str, str]) -> None:
    for env in ("dev", "preprod", "prod"):
        document = yaml.safe_load(written[f"apps/argocd/rag-api-{env}.yaml"])
        jsonschema.validate(document, ARGO_SCHEMA)
        assert document["spec"]["source"]["path"] == f"apps/rag-api/overlays/{env}"
        assert document["spec"]["destination"]["namespace"] == f"bank-ai-lab-{env}"
        assert document["spec"]["project"] == "bank-ai-lab"
        assert document["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]


def test_the_schema_fixture_catches_mistakes(written: dict[str, str]) -> None:
    document = yaml.safe_load(written["apps/argocd/rag-api-dev.yaml"])
    document["spec"]["syncPolicy"]["automated"]["selfheal"] = True
    with pytest.raises(jsonschema.ValidationError, match="selfheal"):
        jsonschema.validate(document, ARGO_SCHEMA)
    del document["spec"]["project"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, ARGO_SCHEMA)


def test_strict_kubernetes_validation_catches_mistakes(written: dict[str, str]) -> None:
    document = yaml.safe_load(written["apps/rag-api/base/deployment.yaml"])
    document["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_an_image_running_as_root_is_refused(catalog_dir: Path, edit: Edit) -> None:
    shutil.copy(REPO / "gitops.yaml", catalog_dir / "gitops.yaml")
    edit("images/app/rag-api/image.yaml", "user: app\n", "user: root\n")
    catalog = load_catalog(catalog_dir)
    with pytest.raises(UserError, match="runs as root"):
        render_repository(catalog, load_settings(catalog), {})


def _deployment(catalog: Catalog) -> dict[str, Any]:
    files = render_repository(catalog, load_settings(catalog), {})
    document = yaml.safe_load(files["apps/rag-api/base/deployment.yaml"])
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize(
    ("user", "ids"),
    [
        ("app", (10001, 10001)),
        ("app:app", (10001, 10001)),  # a group name: the group useradd gives the user
        ("app:10002", (10001, 10002)),
        ("10001:app", (10001, 10001)),
        ("10001", (10001, 10001)),  # a numeric id of an account: its group
        ("12345", (12345, 12345)),
    ],
)
def test_users_by_name_resolve_through_create_users_of_the_parents(
    catalog_dir: Path, edit: Edit, user: str, ids: tuple[int, int]
) -> None:
    """``app`` is created (uid 10001) by base/debian12, two parents up from app/rag-api."""
    shutil.copy(REPO / "gitops.yaml", catalog_dir / "gitops.yaml")
    edit("images/app/rag-api/image.yaml", "user: app\n", f'user: "{user}"\n')
    context = _deployment(load_catalog(catalog_dir))["spec"]["template"]["spec"]["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == ids
    assert context["runAsNonRoot"] is True


def test_the_nearest_create_users_gives_the_id(catalog_dir: Path, edit: Edit) -> None:
    shutil.copy(REPO / "gitops.yaml", catalog_dir / "gitops.yaml")
    edit(
        "images/app/rag-api/image.yaml",
        "user: app\n",
        "user: app\ncreate_users:\n  - {name: app, uid: 20001, gid: 20002}\n",
    )
    context = _deployment(load_catalog(catalog_dir))["spec"]["template"]["spec"]["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (20001, 20002)


@pytest.mark.parametrize(
    ("user", "kind", "name"), [("svc", "user", "svc"), ("app:staff", "group", "staff")]
)
def test_a_name_no_create_users_gives_an_id_has_a_hint_that_fits(
    catalog_dir: Path, edit: Edit, user: str, kind: str, name: str
) -> None:
    shutil.copy(REPO / "gitops.yaml", catalog_dir / "gitops.yaml")
    edit("images/app/rag-api/image.yaml", "user: app\n", f"user: {user}\n")
    catalog = load_catalog(catalog_dir)
    with pytest.raises(UserError) as caught:
        render_repository(catalog, load_settings(catalog), {})
    assert f"gives the {kind} '{name}' an id" in caught.value.message
    assert caught.value.hint is not None
    assert f"add {{name: {name}, uid: …}} to create_users (accounts created there: app)" in (
        caught.value.hint
    )
    assert "UID:GID" in caught.value.hint


def test_hostile_scalars_stay_one_value(catalog: Catalog) -> None:
    """A digest or a replica count that is not what its type says (state is a file anyone with
    the checkout can edit; settings can be built around validation) stays one scalar: it never
    adds a key or a document to the manifests."""
    hostile = 'sha256:x"\nkind: Secret\n---\nevil: "1'
    settings = load_settings(catalog)
    dev = settings.environments["dev"].model_copy(update={"replicas": "1\nkind: Secret"})
    settings = settings.model_copy(update={"environments": {**settings.environments, "dev": dev}})
    files = render_repository(catalog, settings, {("app/rag-api", "dev"): Pinned(hostile, "0.3.0")})
    [overlay] = list(yaml.safe_load_all(files["apps/rag-api/overlays/dev/kustomization.yaml"]))
    assert overlay["kind"] == "Kustomization"
    assert overlay["images"][0]["digest"] == hostile
    assert overlay["replicas"] == [{"name": "rag-api", "count": "1\nkind: Secret"}]
    [deployment] = list(yaml.safe_load_all(files["apps/rag-api/base/deployment.yaml"]))
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"


def test_an_image_on_an_external_parent_without_a_user_says_where_to_write_it(
    catalog_dir: Path,
) -> None:
    shutil.copy(REPO / "gitops.yaml", catalog_dir / "gitops.yaml")
    folder = catalog_dir / "images/app/ext"
    folder.mkdir(parents=True)
    (folder / "image.yaml").write_text(
        "name: app/ext\nversion: 1.0.0\n"
        f"from: registry.example/team/base:1@sha256:{'a' * 64}\nports: [8080]\n"
    )
    catalog = load_catalog(catalog_dir)
    with pytest.raises(UserError) as caught:
        render_repository(catalog, load_settings(catalog), {})
    assert caught.value.message.startswith("app/ext runs as the user of its external parent's")
    assert caught.value.hint == (
        "write user: (a name created with create_users, or UID:GID) in app/ext's image.yaml"
    )


BATCH = """name: app/nightly-report
version: 1.0.0
from: runtime/llm:cpu
user: app
cmd: [python, -c, "print('report')"]
"""


@pytest.mark.parametrize(
    ("deploy", "kind"),
    [
        ("", "Job"),
        ("deploy:\n  schedule: '0 2 * * *'\n  writable_paths: [/var/cache/r]\n", "CronJob"),
    ],
)
def test_a_batch_application_runs_as_a_job_or_a_cronjob(
    catalog_dir: Path, tmp_path: Path, deploy: str, kind: str
) -> None:
    shutil.copy(REPO / "gitops.yaml", catalog_dir / "gitops.yaml")
    (catalog_dir / "images/app/nightly-report").mkdir(parents=True)
    (catalog_dir / "images/app/nightly-report/image.yaml").write_text(BATCH + deploy)
    catalog = load_catalog(catalog_dir)
    files = render_repository(catalog, load_settings(catalog), {})
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert f"apps/nightly-report/base/{kind.lower()}.yaml" in files
    assert "apps/nightly-report/base/service.yaml" not in files
    documents = _kustomize(tmp_path / "apps/nightly-report/overlays/prod")
    assert sorted(str(d["kind"]) for d in documents) == [kind, "NetworkPolicy"]  # no PDB
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES, strict=True)
    [workload] = [d for d in documents if d["kind"] == kind]
    spec: Any = workload["spec"]
    job = spec["jobTemplate"]["spec"] if kind == "CronJob" else spec
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    # Argo CD's self-heal would re-create (and re-run) a Job the TTL controller removed
    assert ("ttlSecondsAfterFinished" in job) is (kind == "CronJob")
    [container] = pod["containers"]
    assert "readinessProbe" not in container and "livenessProbe" not in container
    assert container["resources"]["limits"]["memory"] == "2Gi"  # the prod patch reached it
    assert pod["imagePullSecrets"] == [{"name": "registry-pull"}]
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert mounts == (["/tmp", "/var/cache/r"] if kind == "CronJob" else ["/tmp"])
    if kind == "CronJob":
        assert spec["schedule"] == "0 2 * * *"
        assert spec["concurrencyPolicy"] == "Forbid"
    [policy] = [d for d in documents if d["kind"] == "NetworkPolicy"]
    assert policy["spec"]["ingress"] == []  # type: ignore[index]


def test_the_app_project_confines_its_applications(written: dict[str, str]) -> None:
    project = yaml.safe_load(written["apps/argocd/project.yaml"])
    assert project["metadata"]["name"] == "bank-ai-lab"
    assert project["spec"]["sourceRepos"] == [
        "https://gitlab.example-bank.internal/platform/deployments.git"
    ]
    assert [d["namespace"] for d in project["spec"]["destinations"]] == [
        "bank-ai-lab-dev",
        "bank-ai-lab-preprod",
        "bank-ai-lab-prod",
    ]
    assert project["spec"]["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]


def test_argo_cds_default_project_brings_no_app_project(catalog: Catalog) -> None:
    settings = load_settings(catalog)
    argocd = settings.argocd.model_copy(update={"project": "default"})
    files = render_repository(catalog, settings.model_copy(update={"argocd": argocd}), {})
    assert "apps/argocd/project.yaml" not in files
    assert yaml.safe_load(files["apps/argocd/rag-api-dev.yaml"])["spec"]["project"] == "default"
