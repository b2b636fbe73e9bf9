"""The one release gate: push, promote and ``gitops update`` let a digest into an environment
only through ``require``.

A digest passes when it has a passing test run of exactly that digest (push: unless
``release.require_tests`` is off, or ``--force``, which the audit log records), its version is
not yanked, and the target environment's approval rule is met (an approver; with ``four_eyes``,
one who is not who pushed it). That the digest is where it should be (the build registry for a
push, the source environment for a promotion, the target for a pin) is read from the registry by
the caller, who holds the session.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagefactory.errors import UserError
from imagefactory.release.evidence import Evidence
from imagefactory.spec.models import Environment


@dataclass(frozen=True)
class Candidate:
    """A digest of an image, under a version, on its way into an environment."""

    ref: str
    version: str
    digest: str
    env: Environment


class Refused(UserError):
    """The gate said no; nothing was written."""


def require(
    evidence: Evidence,
    candidate: Candidate,
    *,
    approver: str | None,
    tests_required: bool = True,
) -> None:
    """Raise ``Refused`` unless ``candidate`` may enter its environment, approved by
    ``approver`` (None: nobody approved)."""
    what = f"{candidate.ref} {candidate.version} ({candidate.digest})"
    yank = evidence.yank_of(candidate.ref, candidate.version)
    if yank is not None:
        raise Refused(
            f"{what} is yanked: {yank.reason} (by {yank.by}, {yank.at})",
            hint=f"release a fixed version, or: imagefactory unyank {candidate.ref} "
            f"{candidate.version}",
        )
    if tests_required:
        run = evidence.test_of(candidate.ref, candidate.digest)
        if run is None or not run.passed:
            state = "failed its tests" if run is not None else "has no test record"
            raise Refused(
                f"{what} {state}",
                hint=f"run: imagefactory test {candidate.ref} (the gate needs a pass of this "
                "exact digest)",
            )
    if candidate.env.approval:
        if approver is None:
            raise Refused(
                f"{candidate.env.name} needs an approval for {what}",
                hint="pass --approve (recorded in the audit log), or run the environment's "
                "protected deployment job in CI",
            )
        pusher = evidence.pusher_of(candidate.ref, candidate.digest)
        if candidate.env.four_eyes and pusher is not None and pusher == approver:
            raise Refused(
                f"{approver} pushed {what} and cannot approve it into {candidate.env.name} "
                "(four eyes)",
                hint="another person approves it: imagefactory promote … --approve "
                "--approver NAME, run by them",
            )
