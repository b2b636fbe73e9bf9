"""The kustomize-built manifests held to kube-score's and Polaris's rules (each rule a pure
function over one overlay's documents, named after the check id, citing the source file it
follows: zegl/kube-score score/**.go, FairwindsOps/polaris checks/*.yaml), and the generated
AppProject held to Argo CD's AppProject CRD schema."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from imagefactory.gitops.manifests import Pinned, render_repository
from imagefactory.spec.gitops import load_settings
from imagefactory.spec.loader import load_catalog

from .conftest import REPO

Doc = dict[str, Any]
Rule = Callable[[list[Doc]], list[str]]

GOLDEN = Path(__file__).parent / "golden" / "gitops"
PROJECT_SCHEMA = yaml.safe_load((GOLDEN / "argocd-appproject-schema.yaml").read_text())
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
PROD_DIGEST = "sha256:" + "c" * 64
NIGHTLY = """name: app/nightly-report
version: 0.1.0
description: A nightly report.
from: runtime/llm:cpu
user: app
cmd: [python, -c, "print('report')"]
targets: [docker]
"""
WORKLOADS = {"Deployment", "Job", "CronJob"}
DEPRECATED_VERSIONS = {
    "extensions/v1beta1",
    "apps/v1beta1",
    "apps/v1beta2",
    "batch/v1beta1",
    "batch/v2alpha1",
    "policy/v1beta1",
    "networking.k8s.io/v1beta1",
}
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
RECOMMENDED = ("name", "instance", "version", "part-of", "managed-by")


# --- helpers ---------------------------------------------------------------------------------


def _template(doc: Doc) -> Doc:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]  # type: ignore[no-any-return]
    return doc["spec"]["template"]  # type: ignore[no-any-return]


def _pods(docs: list[Doc]) -> list[tuple[str, Doc]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", _template(d))
        for d in docs
        if d["kind"] in WORKLOADS
    ]


def _containers(docs: list[Doc]) -> list[tuple[str, Doc, Doc]]:
    return [
        (f"{where}/{c['name']}", pod["spec"], c)
        for where, pod in _pods(docs)
        for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])
    ]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _security(pod: Doc, container: Doc, key: str) -> Any:
    """The container's securityContext value, falling back to the pod's (kube-score's order)."""
    own = container.get("securityContext", {})
    return own[key] if key in own else pod.get("securityContext", {}).get(key)


# --- the rules -------------------------------------------------------------------------------


def container_resources(docs: list[Doc]) -> list[str]:
    """kube-score container-resources (score/container/container.go): cpu and memory limits
    and requests on every container."""
    return [
        f"{where}: resources.{kind}.{name}"
        for where, _, c in _containers(docs)
        for kind in ("limits", "requests")
        for name in ("cpu", "memory")
        if not c.get("resources", {}).get(kind, {}).get(name)
    ]


def container_ephemeral_storage_request_and_limit(docs: list[Doc]) -> list[str]:
    """kube-score container-ephemeral-storage-request-and-limit (score/container/container.go)."""
    return [
        f"{where}: resources.{kind}.ephemeral-storage"
        for where, _, c in _containers(docs)
        for kind in ("limits", "requests")
        if not c.get("resources", {}).get(kind, {}).get("ephemeral-storage")
    ]


def container_image_tag(docs: list[Doc]) -> list[str]:
    """kube-score container-image-tag (score/container/container.go): a tag that is not
    latest (or a digest)."""
    bad = []
    for where, _, c in _containers(docs):
        image = str(c["image"])
        if "@sha256:" in image:
            continue
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if tag in ("", "latest"):
            bad.append(f"{where}: image {image}")
    return bad


def container_image_pull_policy(docs: list[Doc]) -> list[str]:
    """kube-score container-image-pull-policy (score/container/container.go): Always."""
    return [
        f"{w}: imagePullPolicy"
        for w, _, c in _containers(docs)
        if c.get("imagePullPolicy") != "Always"
    ]


def container_security_context_user_group_id(docs: list[Doc]) -> list[str]:
    """kube-score container-security-context-user-group-id (score/security/security.go):
    runAsUser and runAsGroup above 10000."""
    return [
        f"{where}: {key}"
        for where, pod, c in _containers(docs)
        for key in ("runAsUser", "runAsGroup")
        if not isinstance(_security(pod, c, key), int) or _security(pod, c, key) <= 10000
    ]


def run_as_root_allowed(docs: list[Doc]) -> list[str]:
    """Polaris runAsRootAllowed (checks/runAsRootAllowed.yaml): runAsNonRoot true."""
    return [
        f"{w}: runAsNonRoot"
        for w, pod, c in _containers(docs)
        if _security(pod, c, "runAsNonRoot") is not True
    ]


def container_security_context_privileged(docs: list[Doc]) -> list[str]:
    """kube-score container-security-context-privileged (score/security/security.go) and
    Polaris runAsPrivileged (checks/runAsPrivileged.yaml): privileged false."""
    return [
        f"{w}: privileged"
        for w, _, c in _containers(docs)
        if c.get("securityContext", {}).get("privileged", False) is not False
    ]


def container_security_context_readonlyrootfilesystem(docs: list[Doc]) -> list[str]:
    """kube-score container-security-context-readonlyrootfilesystem
    (score/security/security.go), Polaris notReadOnlyRootFilesystem."""
    return [
        f"{w}: readOnlyRootFilesystem"
        for w, _, c in _containers(docs)
        if c.get("securityContext", {}).get("readOnlyRootFilesystem") is not True
    ]


def privilege_escalation_allowed(docs: list[Doc]) -> list[str]:
    """Polaris privilegeEscalationAllowed (checks/privilegeEscalationAllowed.yaml)."""
    return [
        f"{w}: allowPrivilegeEscalation"
        for w, _, c in _containers(docs)
        if c.get("securityContext", {}).get("allowPrivilegeEscalation") is not False
    ]


def insecure_capabilities(docs: list[Doc]) -> list[str]:
    """Polaris insecureCapabilities / dangerousCapabilities (checks/insecureCapabilities.yaml,
    checks/dangerousCapabilities.yaml): capabilities drop ALL, nothing added."""
    bad = []
    for w, _, c in _containers(docs):
        caps = c.get("securityContext", {}).get("capabilities", {})
        if "ALL" not in caps.get("drop", []) or caps.get("add"):
            bad.append(f"{w}: capabilities")
    return bad


def container_seccomp_profile(docs: list[Doc]) -> list[str]:
    """kube-score container-seccomp-profile (score/security/security.go): a seccompProfile
    on the pod or the container."""
    return [
        f"{w}: seccompProfile"
        for w, pod, c in _containers(docs)
        if (_security(pod, c, "seccompProfile") or {}).get("type")
        not in ("RuntimeDefault", "Localhost")
    ]


def _targeted(docs: list[Doc], pod: Doc, namespace: str | None) -> bool:
    labels = pod["metadata"].get("labels", {})
    return any(
        d["kind"] == "Service"
        and d["metadata"].get("namespace") == namespace
        and _selects(d["spec"].get("selector", {}), labels)
        for d in docs
    )


def pod_probes(docs: list[Doc]) -> list[str]:
    """kube-score pod-probes (score/probes/probes.go): a pod a Service targets has a
    readinessProbe, and its livenessProbe is not the same handler (kube-score compares the
    exec/httpGet/tcpSocket/grpc handlers with reflect.DeepEqual)."""
    bad = []
    handlers = ("exec", "httpGet", "tcpSocket", "grpc")
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        pod = _template(d)
        if not _targeted(docs, pod, d["metadata"].get("namespace")):
            continue
        for c in pod["spec"]["containers"]:
            ready, live = c.get("readinessProbe"), c.get("livenessProbe")
            if not ready:
                bad.append(f"{d['kind']}/{c['name']}: readinessProbe")
            elif live and {h: ready.get(h) for h in handlers} == {h: live.get(h) for h in handlers}:
                bad.append(f"{d['kind']}/{c['name']}: livenessProbe == readinessProbe")
    return bad


def deployment_has_poddisruptionbudget(docs: list[Doc]) -> list[str]:
    """kube-score deployment-has-poddisruptionbudget (score/disruptionbudget/disruptionbudget.go):
    a Deployment with replicas >= 2 has a PDB in its namespace whose selector matches the pod
    labels, with minAvailable or maxUnavailable."""
    bad = []
    for d in docs:
        if d["kind"] != "Deployment" or d["spec"].get("replicas", 1) < 2:
            continue
        labels = _template(d)["metadata"].get("labels", {})
        if not any(
            p["kind"] == "PodDisruptionBudget"
            and p["metadata"].get("namespace") == d["metadata"].get("namespace")
            and _selects(p["spec"].get("selector", {}).get("matchLabels", {}), labels)
            and ("minAvailable" in p["spec"] or "maxUnavailable" in p["spec"])
            for p in docs
        ):
            bad.append(f"Deployment/{d['metadata']['name']}: no PodDisruptionBudget")
    return bad


def pod_networkpolicy(docs: list[Doc]) -> list[str]:
    """kube-score pod-networkpolicy (score/networkpolicy/networkpolicy.go): a NetworkPolicy in
    the pod's namespace selects it, for both Ingress and Egress."""
    bad = []
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        labels = _template(d)["metadata"].get("labels", {})
        types: set[str] = set()
        for n in docs:
            if (
                n["kind"] == "NetworkPolicy"
                and n["metadata"].get("namespace") == d["metadata"].get("namespace")
                and _selects(n["spec"].get("podSelector", {}).get("matchLabels", {}), labels)
            ):
                types |= set(n["spec"].get("policyTypes", []))
        bad += [
            f"{d['kind']}/{d['metadata']['name']}: no {t} policy"
            for t in ("Ingress", "Egress")
            if t not in types
        ]
    return bad


def service_targets_pod(docs: list[Doc]) -> list[str]:
    """kube-score service-targets-pod and service-targetport (score/service/service.go): the
    selector matches a pod in the namespace, and each targetPort names or numbers one of its
    container ports."""
    bad = []
    for s in docs:
        if s["kind"] != "Service":
            continue
        pods = [
            _template(d)
            for d in docs
            if d["kind"] in WORKLOADS
            and d["metadata"].get("namespace") == s["metadata"].get("namespace")
            and _selects(s["spec"].get("selector", {}), _template(d)["metadata"].get("labels", {}))
        ]
        if not pods:
            bad.append(f"Service/{s['metadata']['name']}: targets no pod")
            continue
        ports = {
            v
            for p in pods
            for c in p["spec"]["containers"]
            for cp in c.get("ports", [])
            for v in (cp["containerPort"], cp.get("name"))
        }
        bad += [
            f"Service/{s['metadata']['name']}: targetPort {sp.get('targetPort', sp['port'])}"
            for sp in s["spec"]["ports"]
            if sp.get("targetPort", sp["port"]) not in ports
        ]
    return bad


def pod_topology_spread_constraints(docs: list[Doc]) -> list[str]:
    """kube-score pod-topology-spread-constraints (score/podtopologyspreadconstraints/):
    each constraint has a topologyKey, maxSkew >= 1 and a labelSelector matching the pod;
    imagefactory requires hostname and zone constraints on Deployments."""
    bad = []
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        pod = _template(d)
        constraints = pod["spec"].get("topologySpreadConstraints", [])
        keys = {c.get("topologyKey") for c in constraints}
        if not {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys:
            bad.append(
                f"Deployment/{d['metadata']['name']}: topologySpreadConstraints keys {sorted(map(str, keys))}"
            )
        for c in constraints:
            if c.get("maxSkew", 0) < 1 or not _selects(
                c.get("labelSelector", {}).get("matchLabels", {}), pod["metadata"].get("labels", {})
            ):
                bad.append(f"Deployment/{d['metadata']['name']}: constraint {c.get('topologyKey')}")
    return bad


def stable_version(docs: list[Doc]) -> list[str]:
    """kube-score stable-version (score/stable/stable_version.go): no beta/deprecated
    apiVersion where a stable one exists."""
    return [
        f"{d['kind']}: {d['apiVersion']}" for d in docs if d["apiVersion"] in DEPRECATED_VERSIONS
    ]


def label_values(docs: list[Doc]) -> list[str]:
    """kube-score label-values (score/meta/labels.go): every label value is a valid
    Kubernetes label value (63 characters at most)."""
    found: list[tuple[str, Doc]] = [(d["kind"], d["metadata"]) for d in docs]
    found += [(f"{w} template", p["metadata"]) for w, p in _pods(docs)]
    return [
        f"{where}: {key}={value!r}"
        for where, meta in found
        for key, value in meta.get("labels", {}).items()
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value)
    ]


def cronjob_has_deadline(docs: list[Doc]) -> list[str]:
    """kube-score cronjob-has-deadline and cronjob-restartpolicy (score/cronjob/cronjob.go):
    startingDeadlineSeconds set and a restartPolicy of Never or OnFailure."""
    bad = []
    for d in docs:
        if d["kind"] != "CronJob":
            continue
        if not d["spec"].get("startingDeadlineSeconds"):
            bad.append(f"CronJob/{d['metadata']['name']}: startingDeadlineSeconds")
        if _template(d)["spec"].get("restartPolicy") not in ("Never", "OnFailure"):
            bad.append(f"CronJob/{d['metadata']['name']}: restartPolicy")
    return bad


def automount_service_account_token(docs: list[Doc]) -> list[str]:
    """Polaris automountServiceAccountToken (checks/automountServiceAccountToken.yaml)."""
    return [
        f"{w}: automountServiceAccountToken"
        for w, p in _pods(docs)
        if p["spec"].get("automountServiceAccountToken") is not False
    ]


def host_namespaces(docs: list[Doc]) -> list[str]:
    """Polaris hostNetworkSet, hostPIDSet, hostIPCSet (checks/hostNetworkSet.yaml,
    checks/hostPIDSet.yaml, checks/hostIPCSet.yaml)."""
    return [
        f"{w}: {key}"
        for w, p in _pods(docs)
        for key in ("hostNetwork", "hostPID", "hostIPC")
        if p["spec"].get(key)
    ]


def recommended_labels(docs: list[Doc]) -> list[str]:
    """Kubernetes' recommended labels (app.kubernetes.io/*) on every document and pod
    template, as Polaris's label checks and kube-score's label-values expect them."""
    found: list[tuple[str, Doc]] = [(d["kind"], d["metadata"]) for d in docs]
    found += [(f"{w} template", p["metadata"]) for w, p in _pods(docs)]
    return [
        f"{where}: app.kubernetes.io/{key}"
        for where, meta in found
        for key in RECOMMENDED
        if not meta.get("labels", {}).get(f"app.kubernetes.io/{key}")
    ]


def metadata_and_instance_mismatched(docs: list[Doc]) -> list[str]:
    """Polaris metadataAndInstanceMismatched (checks/metadataAndInstanceMismatched.yaml): when
    app.kubernetes.io/instance is set, it equals metadata.name."""
    return [
        f"{d['kind']}/{d['metadata']['name']}: instance {d['metadata']['labels']['app.kubernetes.io/instance']}"
        for d in docs
        if "app.kubernetes.io/instance" in d["metadata"].get("labels", {})
        and d["metadata"]["labels"]["app.kubernetes.io/instance"] != d["metadata"]["name"]
    ]


RULES: list[Rule] = [
    container_resources,
    container_ephemeral_storage_request_and_limit,
    container_image_tag,
    container_image_pull_policy,
    container_security_context_user_group_id,
    run_as_root_allowed,
    container_security_context_privileged,
    container_security_context_readonlyrootfilesystem,
    privilege_escalation_allowed,
    insecure_capabilities,
    container_seccomp_profile,
    pod_probes,
    deployment_has_poddisruptionbudget,
    pod_networkpolicy,
    service_targets_pod,
    pod_topology_spread_constraints,
    stable_version,
    label_values,
    cronjob_has_deadline,
    automount_service_account_token,
    host_namespaces,
    recommended_labels,
    metadata_and_instance_mismatched,
]


# --- hand-written documents that follow every rule, and one mutation per rule -----------------

NS = "bank-ai-lab-prod"
LABELS = {
    "app.kubernetes.io/name": "web",
    "app.kubernetes.io/instance": "web",
    "app.kubernetes.io/version": "1.0.0",
    "app.kubernetes.io/part-of": "lab",
    "app.kubernetes.io/managed-by": "imagefactory",
}
SELECT = {"app.kubernetes.io/name": "web"}


def _meta(kind: str) -> Doc:
    return {"name": "web", "namespace": NS, "labels": dict(LABELS)}


def _good() -> list[Doc]:
    container = {
        "name": "web",
        "image": "registry.example/app/web@" + PROD_DIGEST,
        "imagePullPolicy": "Always",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"exec": {"command": ["true"]}},
        "livenessProbe": {"tcpSocket": {"port": 8080}},
        "resources": {
            k: {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"}
            for k in ("requests", "limits")
        },
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod = {
        "metadata": {"labels": dict(LABELS)},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "topologySpreadConstraints": [
                {
                    "topologyKey": key,
                    "maxSkew": 1,
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": SELECT},
                }
                for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
            ],
        },
    }
    job_pod = copy.deepcopy(pod)
    job_pod["spec"]["restartPolicy"] = "Never"
    del job_pod["spec"]["topologySpreadConstraints"]
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("Deployment"),
            "spec": {"replicas": 2, "selector": {"matchLabels": SELECT}, "template": pod},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("Service"),
            "spec": {"selector": SELECT, "ports": [{"port": 80, "targetPort": "http"}]},
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _meta("PDB"),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": SELECT}},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("NP"),
            "spec": {"podSelector": {"matchLabels": SELECT}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": _meta("CronJob"),
            "spec": {
                "schedule": "0 2 * * *",
                "startingDeadlineSeconds": 300,
                "jobTemplate": {"spec": {"template": job_pod}},
            },
        },
    ]


def _set(path: str, value: Any) -> Callable[[list[Doc]], None]:
    """A mutation: `<document index>.<key>.<key>…` set to value (None deletes it)."""

    def mutate(docs: list[Doc]) -> None:
        index, *keys = path.split(".")
        node: Any = docs[int(index)]
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return mutate


POD = "0.spec.template.spec"
C = POD + ".containers.0"
MUTATIONS: dict[Rule, Callable[[list[Doc]], None]] = {
    container_resources: _set(C + ".resources.limits.cpu", None),
    container_ephemeral_storage_request_and_limit: _set(
        C + ".resources.requests.ephemeral-storage", None
    ),
    container_image_tag: _set(C + ".image", "registry.example/app/web:latest"),
    container_image_pull_policy: _set(C + ".imagePullPolicy", "IfNotPresent"),
    container_security_context_user_group_id: _set(POD + ".securityContext.runAsGroup", 1000),
    run_as_root_allowed: _set(POD + ".securityContext.runAsNonRoot", None),
    container_security_context_privileged: _set(C + ".securityContext.privileged", True),
    container_security_context_readonlyrootfilesystem: _set(
        C + ".securityContext.readOnlyRootFilesystem", False
    ),
    privilege_escalation_allowed: _set(C + ".securityContext.allowPrivilegeEscalation", None),
    insecure_capabilities: _set(
        C + ".securityContext.capabilities", {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    ),
    container_seccomp_profile: _set(POD + ".securityContext.seccompProfile", None),
    pod_probes: _set(C + ".livenessProbe", {"exec": {"command": ["true"]}, "periodSeconds": 30}),
    deployment_has_poddisruptionbudget: _set(
        "2.spec.selector.matchLabels", {"app.kubernetes.io/name": "other"}
    ),
    pod_networkpolicy: _set("3.spec.policyTypes", ["Ingress"]),
    service_targets_pod: _set("1.spec.ports.0.targetPort", "metrics"),
    pod_topology_spread_constraints: _set(
        POD + ".topologySpreadConstraints.1.topologyKey", "example.com/rack"
    ),
    stable_version: _set("2.apiVersion", "policy/v1beta1"),
    label_values: lambda docs: docs[0]["metadata"]["labels"].update(
        {"app.kubernetes.io/version": "1.0.0+build"}
    ),
    cronjob_has_deadline: _set("4.spec.startingDeadlineSeconds", None),
    automount_service_account_token: _set(POD + ".automountServiceAccountToken", True),
    host_namespaces: _set(POD + ".hostPID", True),
    recommended_labels: _set("1.metadata.labels", dict(SELECT)),
    metadata_and_instance_mismatched: lambda docs: docs[1]["metadata"]["labels"].update(
        {"app.kubernetes.io/instance": "web-prod"}
    ),
}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_rule_holds_on_the_hand_written_documents(rule: Rule) -> None:
    assert rule(_good()) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_rule_fires_on_a_mutated_document(rule: Rule) -> None:
    docs = _good()
    MUTATIONS[rule](docs)
    assert rule(docs), f"{rule.__name__} did not fire"


def test_every_rule_has_a_mutation() -> None:
    assert set(MUTATIONS) == set(RULES)


def test_cronjob_restart_policy_fires() -> None:
    docs = _good()
    docs[4]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert cronjob_has_deadline(docs) == ["CronJob/web: restartPolicy"]


# --- the rules on what imagefactory renders ----------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Doc]]:
    """The kustomize-built documents of every overlay: app/rag-api (a Deployment) and two
    batch applications, one without a schedule (a Job) and one with (a CronJob)."""
    root = tmp_path_factory.mktemp("catalog")
    shutil.copytree(REPO / "images", root / "images")
    for name in ("imagefactory.yaml", "gitops.yaml"):
        shutil.copy(REPO / name, root / name)
    for app, deploy in (
        ("nightly-report", ""),
        ("hourly-report", "deploy: {schedule: '@hourly'}\n"),
    ):
        (root / f"images/app/{app}").mkdir()
        text = NIGHTLY.replace("nightly-report", app) + deploy
        (root / f"images/app/{app}/image.yaml").write_text(text)
    catalog = load_catalog(root)
    files = render_repository(
        catalog, load_settings(catalog), {("app/rag-api", "prod"): Pinned(PROD_DIGEST, "0.3.0")}
    )
    out = root / "out"
    for relative, text in files.items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_text(text)
    built = {}
    for app in ("rag-api", "nightly-report", "hourly-report"):
        for env in ("dev", "preprod", "prod"):
            result = subprocess.run(
                [KUBECTL, "kustomize", str(out / f"apps/{app}/overlays/{env}")],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            built[f"{app}/{env}"] = [d for d in yaml.safe_load_all(result.stdout) if d]
    built["project"] = [yaml.safe_load(files["apps/argocd/project.yaml"])]
    return built


OVERLAYS = [
    f"{a}/{e}"
    for a in ("rag-api", "nightly-report", "hourly-report")
    for e in ("dev", "preprod", "prod")
]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_rule_holds_on_the_rendered_overlays(
    rendered: dict[str, list[Doc]], rule: Rule, overlay: str
) -> None:
    assert rule(rendered[overlay]) == []


def test_the_overlays_render_the_workload_each_application_needs(
    rendered: dict[str, list[Doc]],
) -> None:
    kinds = {k: sorted(d["kind"] for d in docs) for k, docs in rendered.items()}
    assert kinds["rag-api/dev"] == ["Deployment", "NetworkPolicy", "Service"]
    assert kinds["rag-api/prod"] == [
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
    ]
    assert kinds["nightly-report/prod"] == ["Job", "NetworkPolicy"]
    assert kinds["hourly-report/prod"] == ["CronJob", "NetworkPolicy"]


def test_the_app_project_follows_the_crd_schema(rendered: dict[str, list[Doc]]) -> None:
    [project] = rendered["project"]
    jsonschema.validate(project, PROJECT_SCHEMA)
    kinds = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    built = {d["kind"] for docs in rendered.values() for d in docs if d["kind"] != "AppProject"}
    assert {kind for _, kind in kinds} == built
    project["spec"]["sourceRepo"] = ["*"]
    with pytest.raises(jsonschema.ValidationError, match="sourceRepo"):
        jsonschema.validate(project, PROJECT_SCHEMA)
