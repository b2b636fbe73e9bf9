"""The one release gate: push, promote and ``gitops update`` let a digest into an environment
only through ``require``.

A digest passes when it is not revoked (by the evidence, nor in the catalog's
``revocations.yaml``: ``spec.revocations``), has a passing test run of exactly that digest (push:
unless ``release.require_tests`` is off, or ``--force``, which the audit log records), its
version is not yanked, it has a passing scan verdict where the target environment is one of
``scan.require`` (``scan_required``), and the target environment's approval rule is met (an
approver; with ``four_eyes``, one who is not who pushed it: the push must be on record, and
identities are compared by every name they hold, ``same_person``). The evidence is the signed
attestations in the registry when signing is configured, else this checkout's state
(``evidence.evidence_for``); each refusal says where it was looked for. That the digest is where
it should be (the build registry for a push, the source environment for a promotion, the target
for a pin) is read from the registry by the caller, who holds the session.

Who approves (``approver``): outside CI, whoever passes ``--approve``, named by ``--approver`` or
else by the catalog repository's git identity (``identity``); in GitLab CI only a job deploying to
the target's protected environment (``ci_env.deployment_approver``), whose user approves.
Outside CI the approver is a claim the audit log records, not a proof: the control is the
protected CI job and each environment's own registry credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imagefactory import ci_env, git
from imagefactory.errors import UserError
from imagefactory.release import audit
from imagefactory.release.evidence import Evidence
from imagefactory.spec.catalog import ref_slug
from imagefactory.spec.models import Environment
from imagefactory.spec.revocations import REVOCATIONS_FILE, Revocations

_MAX_NAME = 200  # an approver's name, as the audit log keeps it


@dataclass(frozen=True)
class Candidate:
    """A digest of an image, under a version, on its way into an environment."""

    ref: str
    version: str
    digest: str
    env: Environment


class Refused(UserError):
    """The gate said no; nothing was written."""


def tested(evidence: Evidence, candidate: Candidate) -> bool:
    """Whether the latest test run of exactly ``candidate``'s digest passed."""
    run = evidence.test_of(candidate.ref, candidate.digest)
    return run is not None and run.passed


def require(
    evidence: Evidence,
    candidate: Candidate,
    *,
    approver: str | None,
    listed: Revocations,
    tests_required: bool = True,
    approval: bool = True,
    scan_required: bool = False,
) -> None:
    """Raise ``Refused`` unless ``candidate`` may enter its environment, approved by
    ``approver`` (None: nobody approved). ``approval``: False for a push, which no approval
    rule guards (an environment's ``approval`` is about promotions into it).
    ``scan_required``: the environment is one of ``scan.require``. ``listed``: the catalog's
    revocations file, which refuses a digest it lists even when the registry holds no
    revocation of it (or one lifted)."""
    what = f"{candidate.ref} {candidate.version} ({candidate.digest})"
    where = evidence.where(candidate.ref, candidate.digest)
    revoked = evidence.revocation_of(candidate.ref, candidate.digest)
    if revoked is not None:
        raise Refused(
            f"{what} is revoked: {revoked.reason} (by {revoked.by}, {revoked.at.isoformat()}; in {where})",
            hint="a revoked digest goes into no environment: release a fixed build",
        )
    entry = listed.of(candidate.digest)
    if entry is not None:  # whatever the registry holds: its attestation may have been dropped
        raise Refused(
            f"{what} is revoked: {entry.entry.reason} (by {entry.entry.by}, "
            f"{entry.entry.at.isoformat()}; listed in {entry.location})",
            hint="a revoked digest goes into no environment: release a fixed build (lifting a "
            f"revocation is deleting its entry from {REVOCATIONS_FILE}, a reviewed merge request)",
        )
    yank = evidence.yank_of(candidate.ref, candidate.version)
    if yank is not None:
        raise Refused(
            f"{what} is yanked: {yank.reason} (by {yank.by}, {yank.at})",
            hint=f"release a fixed version, or: imagefactory unyank {candidate.ref} "
            f"{candidate.version}",
        )
    if tests_required and not tested(evidence, candidate):
        run = evidence.test_of(candidate.ref, candidate.digest)
        state = "failed its tests" if run is not None else "has no test record"
        raise Refused(
            f"{what} {state} (looked in {where})",
            hint=f"run: imagefactory test {candidate.ref} (the gate needs a pass of this "
            "exact digest)",
        )
    if scan_required:
        _require_verdict(evidence, candidate, what, where)
    if not (approval and candidate.env.approval):
        return
    approver = require_approver(candidate.env, what, approver)
    if not candidate.env.four_eyes:
        return
    env = candidate.env.name
    pushers = evidence.pusher_of(candidate.ref, candidate.digest)
    if not pushers:
        raise Refused(
            f"who pushed {what} is not known here: four eyes cannot be checked for {env} "
            f"(looked in {where})",
            hint="its push record is in the audit log of the checkout that pushed it (and, "
            "signed, in the release attestation of its push): restore .imagefactory/audit.jsonl "
            "from the last CI artifact of that pipeline, or promote in that pipeline",
        )
    pusher = next((name for name in pushers if same_person(name, approver)), None)
    if pusher is not None:
        known_as = "" if pusher == approver else f" (as {pusher})"
        raise Refused(
            f"{approver} pushed {what}{known_as} and cannot approve it into {env} (four eyes)",
            hint="another person approves it: imagefactory promote … --approve "
            "--approver NAME, run by them",
        )


def _require_verdict(evidence: Evidence, candidate: Candidate, what: str, where: str) -> None:
    """``Refused`` unless the latest scan verdict of ``candidate``'s digest that holds for its
    environment (one for that environment, or for any) passed."""
    env = candidate.env.name
    verdict = evidence.verdict_of(candidate.ref, candidate.digest, env)
    if verdict is not None and verdict.passed:
        return
    state = "has no scan verdict"
    if verdict is not None:
        state = f"failed its scan ({'; '.join(verdict.reasons) or 'the verdict did not pass'})"
    raise Refused(
        f"{what} {state} for {env}, which scan.require names (looked in {where})",
        hint=f"scan the digest and record the verdict: imagefactory gate "
        f"{candidate.ref}@{candidate.digest} --report FILE --env {env}",
    )


def require_approver(env: Environment, what: str, approver: str | None) -> str:
    """``approver`` of ``what`` (a step into ``env``, which has ``approval``); ``Refused`` when
    nobody approved it."""
    name = env.name
    if approver is None:
        if ci_env.in_gitlab_ci():
            raise Refused(
                f"{name} needs an approval for {what}: in GitLab CI only a job deploying to the "
                f"protected environment {name} approves (or {name}/<image>, the image's own; CI=true "
                "alone, or --approve, does not)",
                hint=f"run the pipeline's manual promote job into {name} on a protected branch or "
                f"tag: GitLab sets CI_ENVIRONMENT_NAME={name}/<image> (or {name}), "
                "CI_COMMIT_REF_PROTECTED=true and GITLAB_USER_LOGIN (the approver) for it",
            )
        raise Refused(
            f"{name} needs an approval for {what}",
            hint="pass --approve (you, as git config names you, or --approver NAME; recorded in "
            "the audit log), or run the environment's protected deployment job in CI",
        )
    return approver


def names_of(identity: str) -> frozenset[str]:
    """The names ``identity`` is known by, normalised (case and spacing folded): a login
    (``bob``), or a git identity ``Name <email>`` — its name, its email and the email's local
    part, any of which a login or another identity of the same person may be."""
    name, bracket, rest = identity.partition("<")
    email = rest.partition(">")[0] if bracket else ""
    if not bracket and "@" in name:
        name, email = "", name
    names = {_fold(name), _fold(email), _fold(email.partition("@")[0])}
    return frozenset(n for n in names if n) or frozenset({_fold(identity)})


def same_person(one: str, other: str) -> bool:
    """Whether identities ``one`` and ``other`` name the same person: a CI push records the
    login (``bob``), a local approval the git identity (``Bob <bob@x>``); a match of any of
    their names counts (four eyes errs on refusing)."""
    return not names_of(one).isdisjoint(names_of(other))


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def identity(root: Path) -> str:
    """The person acting, as approvals name people: in GitLab CI the job's user
    (``GITLAB_USER_LOGIN``); else the git identity of the catalog's repository at ``root``
    (``user.name <user.email>``), else the account."""
    if ci_env.in_gitlab_ci():
        return ci_env.login() or audit.actor()
    name, email = (_git_config(root, key) for key in ("user.name", "user.email"))
    if name and email:
        return f"{name} <{email}>"
    return name or email or audit.actor()


def approver(
    env: Environment, root: Path, *, approve: bool, named: str | None, ref: str | None = None
) -> str | None:
    """Who approves a promotion into ``env`` (None: nobody, or it needs no approval; ``require``
    then decides). Outside CI: with ``approve``, ``named`` (``--approver``) or else
    ``identity``. In GitLab CI: only the user of a job deploying to ``env``'s protected
    environment, or (``protected_per_image``) to the image ``ref``'s own environment there
    (``prod/<image slug>``, as the generated pipeline names it then); ``--approve`` counts for
    nothing there and ``--approver`` is refused."""
    if ci_env.in_gitlab_ci():
        if named is not None:
            raise UserError(
                "--approver names an approver outside CI only",
                hint="in GitLab CI the approver is the user who runs the environment's protected "
                "deployment job (GITLAB_USER_LOGIN)",
            )
        if not env.approval:
            return None
        own = ref is not None and env.protected_per_image  # else only <env> itself approves
        return ci_env.deployment_approver(env.name, ref_slug(ref) if own and ref else None)
    if named is not None:
        named = named.strip()
        if not named or len(named) > _MAX_NAME or not named.isprintable():
            raise UserError(
                f"--approver must be a name of 1 to {_MAX_NAME} printable characters",
                hint="e.g. --approver 'Jane Doe <jane.doe@example.com>'",
            )
        if not approve:
            raise UserError(
                "--approver names who approves, so it goes with --approve",
                hint=f"add --approve (recorded in the audit log as {named}'s approval)",
            )
    if not env.approval or not approve:
        return None
    return named or identity(root)


def _git_config(root: Path, key: str) -> str | None:
    result = git.run(root, "config", "--get", key, check=False, separate_stderr=True)
    value = result.output.strip()
    return value if result.returncode == 0 and value.isprintable() and value else None
