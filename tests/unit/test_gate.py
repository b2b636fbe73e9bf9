"""The release gate (``release/gate.py``) and who approves: the rules one by one against
``LocalEvidence``, the approver outside and inside GitLab CI (real git for the identity), and
push and promote through the CLI against registries in memory (tests/unit/test_write_tags.py's
``MemoryRegistry``, with the revision labels a build leaves)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagefactory.errors import UserError
from imagefactory.evidence.predicates import Lifecycle
from imagefactory.project.naming import REVISION_LABEL
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import (
    EnvironmentRecord,
    ImageRecord,
    State,
    YankRecord,
    load_state,
    save_state,
)
from imagefactory.project.state import TestRecord as Run
from imagefactory.release import audit, gate, promote, push
from imagefactory.release.evidence import LocalEvidence, evidence_for
from imagefactory.scan.verdict import Verdict, parse_predicate
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import Environment, Registry
from imagefactory.spec.revocations import Revocations

from .helpers import build, lines, logged, run, serve
from .test_write_ahead import REF
from .test_write_tags import DEV, DIGEST, OTHER, MemoryRegistry

PREPROD = "127.0.0.1:5000/bank-ai-lab/preprod/app/rag-api"
PROD = "127.0.0.1:5000/bank-ai-lab/prod/app/rag-api"
SHA = "0123456789abcdef0123456789abcdef01234567"
CI_VARIABLES = (
    "CI",
    "GITLAB_CI",
    "GITLAB_USER_LOGIN",
    "CI_ENVIRONMENT_NAME",
    "CI_COMMIT_REF_PROTECTED",
)
PROD_ENV = Environment(name="prod", registries=["prod"], approval=True)
FOUR_EYES = Environment(name="prod", registries=["prod"], approval=True, four_eyes=True)
#: A catalog without a revocations file.
NOTHING_LISTED = Revocations(Path("revocations.yaml"))


@pytest.fixture(autouse=True)
def outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CI variable of the machine running the tests leaks in; no global git identity."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("USER", "the-account")


def in_ci(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITLAB_CI", "true")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def evidence(
    *,
    runs: tuple[Run, ...] = (),
    yanked: dict[str, YankRecord] | None = None,
    pusher: str | tuple[str, ...] | None = None,
) -> LocalEvidence:
    record = ImageRecord(content_hash="sha256:" + "c" * 64, inputs={}, version="0.3.0")
    for test_run in runs:
        record = record.with_test(test_run)
    record = record.model_copy(update={"yanked": yanked or {}})
    names = (pusher,) if isinstance(pusher, str) else pusher
    pushes = {(REF, DIGEST): names} if names else {}
    return LocalEvidence(State(images={REF: record}), pushes)


def passed(digest: str = DIGEST) -> Run:
    return Run(digest=digest, passed=True, at="then")


def candidate(env: Environment = PROD_ENV) -> gate.Candidate:
    return gate.Candidate(REF, "0.3.0", DIGEST, env)


def git_repo(path: Path, **config: str) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True, timeout=30)
    for key, value in config.items():
        subprocess.run(
            ["git", "-C", str(path), "config", key.replace("_", "."), value],
            check=True,
            timeout=30,
        )
    return path


# --- the rules ---------------------------------------------------------------------------------


def test_a_digest_without_a_test_run_of_its_own_is_refused() -> None:
    other_digest_passed = evidence(runs=(passed(OTHER),))
    with pytest.raises(gate.Refused, match="has no test record") as caught:
        gate.require(other_digest_passed, candidate(), approver="ada", listed=NOTHING_LISTED)
    assert caught.value.hint is not None and f"imagefactory test {REF}" in caught.value.hint


def test_a_digest_whose_latest_run_failed_is_refused() -> None:
    failed = Run(digest=DIGEST, passed=False, at="later")
    with pytest.raises(gate.Refused, match="failed its tests"):
        gate.require(
            evidence(runs=(passed(), failed)), candidate(), approver="ada", listed=NOTHING_LISTED
        )


def test_a_passing_run_of_the_digest_lets_it_through() -> None:
    gate.require(evidence(runs=(passed(),)), candidate(), approver="ada", listed=NOTHING_LISTED)
    assert gate.tested(evidence(runs=(passed(),)), candidate())


def test_tests_not_required_lets_an_untested_digest_through() -> None:
    gate.require(
        evidence(), candidate(), approver="ada", tests_required=False, listed=NOTHING_LISTED
    )
    assert not gate.tested(evidence(), candidate())


def test_a_yanked_version_is_refused_even_untested_checks_off() -> None:
    yank = YankRecord(version="0.3.0", digest=DIGEST, reason="CVE-1", by="ada", at="now")
    with pytest.raises(gate.Refused, match="is yanked: CVE-1") as caught:
        gate.require(
            evidence(runs=(passed(),), yanked={"0.3.0": yank}),
            candidate(),
            approver="ada",
            tests_required=False,
            listed=NOTHING_LISTED,
        )
    assert caught.value.hint is not None and f"unyank {REF} 0.3.0" in caught.value.hint


def test_an_approval_environment_needs_an_approver_outside_ci() -> None:
    with pytest.raises(gate.Refused, match="prod needs an approval") as caught:
        gate.require(evidence(runs=(passed(),)), candidate(), approver=None, listed=NOTHING_LISTED)
    assert caught.value.hint is not None and "--approve" in caught.value.hint


def test_in_ci_the_refusal_names_the_variables_of_a_deployment_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_ci(monkeypatch)
    with pytest.raises(gate.Refused, match="CI=true alone") as caught:
        gate.require(evidence(runs=(passed(),)), candidate(), approver=None, listed=NOTHING_LISTED)
    hint = caught.value.hint or ""
    for variable in (
        "CI_ENVIRONMENT_NAME=prod",
        "CI_COMMIT_REF_PROTECTED=true",
        "GITLAB_USER_LOGIN",
    ):
        assert variable in hint


def test_a_push_is_guarded_by_no_approval_rule() -> None:
    gate.require(
        evidence(runs=(passed(),)),
        candidate(),
        approver=None,
        approval=False,
        listed=NOTHING_LISTED,
    )


def test_four_eyes_refuses_the_pusher_and_accepts_another_approver() -> None:
    pushed_by_bob = evidence(runs=(passed(),), pusher="Bob <bob@x>")
    with pytest.raises(gate.Refused, match="four eyes"):
        gate.require(
            pushed_by_bob, candidate(FOUR_EYES), approver="Bob <bob@x>", listed=NOTHING_LISTED
        )
    gate.require(pushed_by_bob, candidate(FOUR_EYES), approver="Ada <ada@x>", listed=NOTHING_LISTED)
    gate.require(
        pushed_by_bob, candidate(PROD_ENV), approver="Bob <bob@x>", listed=NOTHING_LISTED
    )  # no four eyes


def test_four_eyes_refuses_when_who_pushed_it_is_not_known() -> None:
    """A digest with no push record here (pushed from another clone, an artifact lost):
    nobody can tell the approver is not its pusher."""
    unknown = evidence(runs=(passed(),))
    with pytest.raises(gate.Refused, match=r"who pushed .* is not known here") as refused:
        gate.require(unknown, candidate(FOUR_EYES), approver="Ada <ada@x>", listed=NOTHING_LISTED)
    assert "audit.jsonl" in (refused.value.hint or "")
    gate.require(
        unknown, candidate(PROD_ENV), approver="Ada <ada@x>", listed=NOTHING_LISTED
    )  # no four eyes


@pytest.mark.parametrize(
    ("pusher", "approver"),
    [
        ("bob", "Bob <bob@x>"),  # a CI push (the login), a local approval (the git identity)
        ("Bob <bob@x>", "bob"),
        ("Robert Roe <bob@x>", "BOB@X"),
        ("Robert Roe <rroe@x>", "rroe"),
        ("Bob  Roe <b@x>", "bob roe"),
    ],
)
def test_four_eyes_compares_every_name_of_an_identity(pusher: str, approver: str) -> None:
    with pytest.raises(gate.Refused, match="four eyes"):
        gate.require(
            evidence(runs=(passed(),), pusher=pusher),
            candidate(FOUR_EYES),
            approver=approver,
            listed=NOTHING_LISTED,
        )


def test_four_eyes_knows_the_pusher_by_their_account_as_well_as_their_git_identity() -> None:
    """A local push by account bob with git identity Robert Roe, approved in CI by login bob."""
    pushed = evidence(runs=(passed(),), pusher=("Robert Roe <rr@x>", "bob"))
    with pytest.raises(gate.Refused, match="four eyes"):
        gate.require(pushed, candidate(FOUR_EYES), approver="bob", listed=NOTHING_LISTED)


def test_four_eyes_lets_another_person_with_another_login_approve() -> None:
    pushed = evidence(runs=(passed(),), pusher="bob")
    gate.require(
        pushed, candidate(FOUR_EYES), approver="Ada Lovelace <ada@x>", listed=NOTHING_LISTED
    )
    gate.require(pushed, candidate(FOUR_EYES), approver="bobby", listed=NOTHING_LISTED)


# --- revocation and the scan verdict ----------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    """``LocalEvidence`` plus what only signed evidence holds: revocations and scan verdicts
    (``RegistryEvidence`` reads them from attestations: tests/unit/test_gate_evidence.py)."""

    local: LocalEvidence
    revoked: Lifecycle | None = None
    verdicts: dict[str | None, Verdict] = field(default_factory=dict)  # environment → latest

    def test_of(self, ref: str, digest: str) -> Run | None:
        return self.local.test_of(ref, digest)

    def yank_of(self, ref: str, version: str) -> YankRecord | None:
        return self.local.yank_of(ref, version)

    def pusher_of(self, ref: str, digest: str) -> tuple[str, ...]:
        return self.local.pusher_of(ref, digest)

    def revocation_of(self, ref: str, digest: str) -> Lifecycle | None:
        return self.revoked

    def verdict_of(self, ref: str, digest: str, env: str) -> Verdict | None:
        return self.verdicts.get(env, self.verdicts.get(None))

    def where(self, ref: str, digest: str) -> str:
        return "the attestations at sha256-aaa.att"


def verdict(passed: bool, environment: str | None) -> Verdict:
    """A scan verdict as the gate command attests it (only what the gate reads varies)."""
    return parse_predicate(
        {
            "passed": passed,
            "image": f"{PROD}@{DIGEST}",
            "environment": environment,
            "threshold": "high",
            "findings": [],
            "reasons": [] if passed else ["CVE-2026-7 (critical) in openssl"],
            "scanner": {"name": "trivy", "version": "0.50.0", "db_built": "2026-12-01T00:00:00Z"},
            "at": "2026-12-01T10:00:00Z",
        }
    )


REVOKED = Lifecycle(
    revoked=True, reason="CVE-2026-1 in the base", by="sec", at=datetime(2026, 12, 1, tzinfo=UTC)
)


def test_a_revoked_digest_is_refused_whatever_else_holds() -> None:
    tested_and_scanned = Signed(evidence(runs=(passed(),)), verdicts={None: verdict(True, None)})
    gate.require(
        tested_and_scanned, candidate(), approver="ada", scan_required=True, listed=NOTHING_LISTED
    )
    revoked = replace(tested_and_scanned, revoked=REVOKED)
    with pytest.raises(gate.Refused, match="is revoked: CVE-2026-1 in the base") as caught:
        gate.require(
            revoked, candidate(), approver="ada", scan_required=True, listed=NOTHING_LISTED
        )
    assert "by sec, 2026-12-01" in caught.value.message
    assert "sha256-aaa.att" in caught.value.message  # where it was found
    with pytest.raises(gate.Refused, match="is revoked"):  # a forced push too
        gate.require(
            revoked,
            candidate(),
            approver=None,
            approval=False,
            tests_required=False,
            listed=NOTHING_LISTED,
        )


def test_without_signing_nothing_is_revoked_and_no_verdict_is_known() -> None:
    local = evidence(runs=(passed(),))
    assert local.revocation_of(REF, DIGEST) is None
    with pytest.raises(gate.Refused, match="has no scan verdict for prod") as caught:
        gate.require(local, candidate(), approver="ada", scan_required=True, listed=NOTHING_LISTED)
    assert "signing is not configured" in caught.value.message


@pytest.mark.parametrize(
    ("verdicts", "refusal"),
    [
        ({}, "has no scan verdict for prod, which scan.require names"),
        (
            {None: verdict(False, None)},
            r"failed its scan \(CVE-2026-7 \(critical\) in openssl\) for prod",
        ),
        ({"prod": verdict(False, "prod"), None: verdict(True, None)}, "failed its scan"),
    ],
)
def test_an_environment_of_scan_require_needs_a_passing_verdict(
    verdicts: dict[str | None, Verdict], refusal: str
) -> None:
    scanned = Signed(evidence(runs=(passed(),)), verdicts=verdicts)
    with pytest.raises(gate.Refused, match=refusal) as caught:
        gate.require(
            scanned, candidate(), approver="ada", scan_required=True, listed=NOTHING_LISTED
        )
    assert "looked in the attestations at sha256-aaa.att" in caught.value.message
    assert f"imagefactory gate {REF}" in (caught.value.hint or "")
    gate.require(
        scanned, candidate(), approver="ada", listed=NOTHING_LISTED
    )  # not in scan.require: no verdict needed


def test_a_passing_verdict_for_the_environment_or_for_any_lets_it_through() -> None:
    for environment in ("prod", None):
        verdicts: dict[str | None, Verdict] = {environment: verdict(True, environment)}
        scanned = Signed(evidence(runs=(passed(),)), verdicts=verdicts)
        gate.require(
            scanned, candidate(), approver="ada", scan_required=True, listed=NOTHING_LISTED
        )


def test_a_refused_test_record_says_where_it_was_looked_for() -> None:
    with pytest.raises(gate.Refused, match=r"has no test record \(looked in the attestations"):
        gate.require(Signed(evidence()), candidate(), approver="ada", listed=NOTHING_LISTED)


# --- who approves ------------------------------------------------------------------------------


def test_outside_ci_approve_names_the_git_identity_of_the_catalog(tmp_path: Path) -> None:
    root = git_repo(tmp_path / "catalog", user_name="Ada Lovelace", user_email="ada@example.com")
    assert gate.approver(PROD_ENV, root, approve=True, named=None) == (
        "Ada Lovelace <ada@example.com>"
    )
    assert gate.identity(root) == "Ada Lovelace <ada@example.com>"


def test_outside_ci_without_git_identity_the_account_approves(tmp_path: Path) -> None:
    root = git_repo(tmp_path / "catalog")
    assert gate.approver(PROD_ENV, root, approve=True, named=None) == "the-account"


def test_outside_ci_approver_names_someone_else(tmp_path: Path) -> None:
    root = git_repo(tmp_path / "catalog", user_name="Ada")
    assert gate.approver(PROD_ENV, root, approve=True, named=" Grace Hopper ") == "Grace Hopper"
    assert gate.approver(PROD_ENV, root, approve=False, named=None) is None
    with pytest.raises(UserError, match="goes with --approve"):
        gate.approver(PROD_ENV, root, approve=False, named="Grace Hopper")
    no_approval = Environment(name="preprod", registries=["preprod"])
    assert gate.approver(no_approval, root, approve=True, named=None) is None


@pytest.mark.parametrize("name", ["", "   ", "two\nlines", "x" * 201])
def test_an_approver_name_that_is_not_one_printable_line_is_refused(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(UserError, match="--approver must be a name"):
        gate.approver(PROD_ENV, tmp_path, approve=True, named=name)


def test_in_ci_the_ci_variables_alone_do_not_approve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    in_ci(monkeypatch, GITLAB_USER_LOGIN="jdoe")
    assert gate.approver(PROD_ENV, tmp_path, approve=True, named=None) is None


@pytest.mark.parametrize(
    ("environment", "protected"), [("preprod", "true"), ("prod", "false"), ("prod/x", "true")]
)
def test_in_ci_only_a_protected_job_of_that_environment_approves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environment: str, protected: str
) -> None:
    in_ci(
        monkeypatch,
        GITLAB_USER_LOGIN="jdoe",
        CI_ENVIRONMENT_NAME=environment,
        CI_COMMIT_REF_PROTECTED=protected,
    )
    assert gate.approver(PROD_ENV, tmp_path, approve=True, named=None) is None


def test_in_ci_the_deployment_job_user_approves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    in_ci(
        monkeypatch,
        GITLAB_USER_LOGIN="jdoe",
        CI_ENVIRONMENT_NAME="prod",
        CI_COMMIT_REF_PROTECTED="true",
    )
    assert gate.approver(PROD_ENV, tmp_path, approve=False, named=None) == "jdoe"
    assert gate.identity(tmp_path) == "jdoe"
    with pytest.raises(UserError, match="--approver names an approver outside CI only"):
        gate.approver(PROD_ENV, tmp_path, approve=True, named="jdoe")


def test_the_pusher_is_read_from_the_audit_log(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    for digest, identity in ((DIGEST, "Bob <bob@x>"), (OTHER, None)):
        intent = logged(catalog, "push", digest, source="build", target="dev", identity=identity)
        audit.append(audit_log(catalog), audit.follow_up(intent, audit.DONE))
    found = evidence_for(catalog)
    assert found.pusher_of(REF, DIGEST)[0] == "Bob <bob@x>"
    assert found.pusher_of(REF, OTHER) == ("the-account",)  # a line from before identities: who
    assert found.pusher_of(REF, "sha256:" + "9" * 64) == ()


# --- push and promote through the gate ---------------------------------------------------------


@dataclass
class LabelledRegistry(MemoryRegistry):
    """``MemoryRegistry`` with the revision labels of the built digests."""

    revisions: dict[str, str] = field(default_factory=dict)  # digest → revision label

    def label(self, registry: Registry, reference: str, name: str) -> str | None:
        if name == REVISION_LABEL:
            return self.revisions.get(reference.rpartition("@")[2])
        return None


@pytest.fixture
def labelled(monkeypatch: pytest.MonkeyPatch) -> LabelledRegistry:
    return serve(monkeypatch, LabelledRegistry(revisions={DIGEST: SHA}), push, promote)


def test_push_of_an_untested_digest_is_refused_and_force_records_it(
    pinned_catalog_dir: Path, labelled: LabelledRegistry
) -> None:
    build(pinned_catalog_dir, labelled, DIGEST, tested=False)

    refused = run(pinned_catalog_dir, "push", REF)

    assert refused.exit_code == 1, refused.output
    assert "has no test record" in refused.output
    assert lines(pinned_catalog_dir) == []
    assert set(labelled.held) == {f"{DEV}:content-1"}

    forced = run(pinned_catalog_dir, "push", REF, "--force", "--json")

    assert forced.exit_code == 0, forced.output
    _, done = lines(pinned_catalog_dir)
    assert (done["phase"], done["forced"], done["overrides"]) == ("done", True, ["untested"])
    assert done["identity"] == "the-account"


def test_push_without_require_tests_records_no_force(
    pinned_catalog_dir: Path, labelled: LabelledRegistry
) -> None:
    build(pinned_catalog_dir, labelled, DIGEST, tested=False)
    path = pinned_catalog_dir / "imagefactory.yaml"
    path.write_text(path.read_text() + "\nrelease:\n  require_tests: false\n")

    result = run(pinned_catalog_dir, "push", REF)

    assert result.exit_code == 0, result.output
    assert [(line["forced"], line["overrides"]) for line in lines(pinned_catalog_dir)] == [
        (False, [])
    ] * 2


def test_the_git_tag_names_the_commit_in_the_build_label(
    pinned_catalog_dir: Path, labelled: LabelledRegistry
) -> None:
    """The catalog is outside git (no HEAD at all): the tag comes from the built image."""
    build(pinned_catalog_dir, labelled, DIGEST, tested=True)

    result = run(pinned_catalog_dir, "push", REF, "--json")

    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)["images"]
    assert f"git-{SHA[:8]}" in {t["tag"] for t in entry["tags"]}
    assert labelled.held[f"{DEV}:git-{SHA[:8]}"] == DIGEST


@pytest.mark.parametrize("label", [f"{SHA}-dirty", "not a commit", None])
def test_a_dirty_or_unknown_build_revision_gets_no_git_tag(
    pinned_catalog_dir: Path, labelled: LabelledRegistry, label: str | None
) -> None:
    labelled.revisions = {DIGEST: label} if label is not None else {}
    build(pinned_catalog_dir, labelled, DIGEST, tested=True)

    result = run(pinned_catalog_dir, "push", REF, "--json")

    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)["images"]
    assert sorted(t["tag"] for t in entry["tags"]) == ["0", "0.3", "0.3.0", "latest"]


def test_in_ci_a_dirty_build_is_not_pushed(
    pinned_catalog_dir: Path, labelled: LabelledRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    labelled.revisions = {DIGEST: f"{SHA}-dirty"}
    build(pinned_catalog_dir, labelled, DIGEST, tested=True)
    in_ci(monkeypatch, GITLAB_USER_LOGIN="jdoe")

    result = run(pinned_catalog_dir, "push", REF)

    assert result.exit_code == 1, result.output
    assert "was built from an uncommitted tree" in result.output
    assert lines(pinned_catalog_dir) == []


def test_in_ci_a_push_from_an_uncommitted_tree_is_refused(
    pinned_catalog_dir: Path, labelled: LabelledRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(pinned_catalog_dir, labelled, DIGEST, tested=True)
    root = git_repo(pinned_catalog_dir, user_name="Ada", user_email="ada@x")
    (root / ".gitignore").write_text("/.imagefactory/\n")
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, timeout=30)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "catalog"], check=True, timeout=30)
    (root / "imagefactory.yaml").write_text((root / "imagefactory.yaml").read_text() + "\n")
    in_ci(monkeypatch, GITLAB_USER_LOGIN="jdoe")

    result = run(pinned_catalog_dir, "push", REF)

    assert result.exit_code == 1, result.output
    assert "has uncommitted changes" in result.output
    assert lines(pinned_catalog_dir) == []


def in_preprod(root: Path, registry: LabelledRegistry) -> None:
    build(root, registry, DIGEST, tested=True)
    path = state_file(load_catalog(root))
    record = load_state(path).images[REF]
    tags = ["0", "0.3", "0.3.0", "latest"]
    held = {
        env: EnvironmentRecord(version="0.3.0", digest=DIGEST, tags=tags, registries=[env], at="t")
        for env in ("dev", "preprod")
    }
    save_state(path, State(images={REF: record.model_copy(update={"environments": held})}))
    registry.held.update({f"{PREPROD}:{tag}": DIGEST for tag in tags})


def test_promote_in_ci_approves_only_the_protected_deployment_job(
    pinned_catalog_dir: Path, labelled: LabelledRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_preprod(pinned_catalog_dir, labelled)
    in_ci(monkeypatch, GITLAB_USER_LOGIN="jdoe")

    refused = run(pinned_catalog_dir, "promote", REF, "--to", "prod", "--approve")

    assert refused.exit_code == 1, refused.output
    assert "CI_ENVIRONMENT_NAME=prod" in refused.output
    assert not any(ref.startswith(PROD) for ref in labelled.held)

    monkeypatch.setenv("CI_ENVIRONMENT_NAME", "prod")
    monkeypatch.setenv("CI_COMMIT_REF_PROTECTED", "true")
    approved = run(pinned_catalog_dir, "promote", REF, "--to", "prod")

    assert approved.exit_code == 0, approved.output
    done = lines(pinned_catalog_dir)[-1]
    assert (done["phase"], done["approver"], done["identity"]) == ("done", "jdoe", "jdoe")


def test_promote_outside_ci_records_the_named_approver(
    pinned_catalog_dir: Path, labelled: LabelledRegistry
) -> None:
    in_preprod(pinned_catalog_dir, labelled)

    refused = run(pinned_catalog_dir, "promote", REF, "--to", "prod")
    assert refused.exit_code == 1 and "prod needs an approval" in refused.output

    result = run(
        pinned_catalog_dir, "promote", REF, "--to", "prod", "--approve", "--approver", "Grace"
    )

    assert result.exit_code == 0, result.output
    done = lines(pinned_catalog_dir)[-1]
    assert (done["approver"], done["identity"], done["who"]) == (
        "Grace",
        "the-account",
        "the-account",
    )
