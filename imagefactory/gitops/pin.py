"""Pin a released digest in the GitOps repository: what ``promote`` calls after a promotion,
``push`` after a push, and ``imagefactory gitops update`` once the release gate let it through
(``release.deploy``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imagefactory import git
from imagefactory.atomic import write_atomically
from imagefactory.errors import UserError
from imagefactory.gitops import repo
from imagefactory.gitops.manifests import app_name, application, overlay_file
from imagefactory.gitops.update import check_digest, read_overlay, read_pins, set_pin
from imagefactory.spec.catalog import Catalog, CatalogImage, is_application
from imagefactory.spec.gitops import GITOPS_FILE, GitopsSettings, remote_url

if TYPE_CHECKING:
    from imagefactory.gitops import mr


@dataclass(frozen=True)
class PinResult:
    image: str
    env: str
    digest: str
    previous: str | None
    action: str  # unchanged | pushed | merge_request
    commit: str | None = None
    merge_request: mr.MergeRequest | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "image": self.image,
            "env": self.env,
            "digest": self.digest,
            "previous": self.previous,
            "action": self.action,
            "commit": self.commit,
            "merge_request": None
            if self.merge_request is None
            else {
                "iid": self.merge_request.iid,
                "url": self.merge_request.url,
                "action": self.merge_request.action,
            },
        }


def parse_reference(text: str) -> tuple[str, str]:
    """``IMAGE@sha256:…`` → (image, digest)."""
    image, sep, digest = text.partition("@")
    if not sep or not image:
        raise UserError(f"'{text}' is not IMAGE@sha256:…", hint="e.g. app/rag-api@sha256:<64 hex>")
    return image, check_digest(digest)


def pin_digest(
    catalog: Catalog,
    ref: str,
    env: str,
    digest: str,
    *,
    version: str,
    audit_id: str | None,
    settings: GitopsSettings | None = None,
) -> PinResult:
    """Pin ``digest`` (version ``version``, recorded as audit record ``audit_id``) for the
    application ``ref`` in environment ``env`` of the GitOps repo. No gate: the callers
    (``release.deploy``, push and promote) decided it may go there, and name its version.

    Push mode: one commit on the configured branch (none when it already pins the digest),
    pushed with bounded fetch/rebase/retry. Merge-request mode: the branch
    ``imagefactory/<env>/<app>`` and one open MR for it. Raises UserError on bad input.
    """
    settings = settings or repo.settings_for_run(catalog)
    check_digest(digest)
    catalog.environment(env)
    env_settings = settings.environment(env)
    image = application(catalog, ref)
    pin = _Pin(settings, image, env, digest, version, audit_id)
    with repo.clone(remote_url(catalog.root, settings.repo_url), settings.branch) as workdir:
        if env_settings.mode == "push":
            pushed = repo.commit_and_push(
                workdir, settings.branch, pin.apply, attempts=settings.attempts
            )
            action = "pushed" if pushed.commit else "unchanged"
            return pin.result(pushed.edit, action, pushed.commit)
        return _merge_request(pin, workdir)


def pin_if_deployed(
    catalog: Catalog, ref: str, env: str, digest: str, *, version: str, audit_id: str | None
) -> PinResult | None:
    """The pin a recorded release makes (push and promote, through
    ``release.deploy.pin_release``): pin the digest in the GitOps repository. None (nothing
    done) when the catalog has no gitops.yaml, the image is not an application, or gitops.yaml
    does not deploy ``env``. Raises UserError when the write-back fails."""
    if not (catalog.root / GITOPS_FILE).is_file():
        return None
    settings = repo.settings_for_run(catalog)
    image = catalog.images.get(ref)
    if image is None or not is_application(image.spec.name) or env not in settings.environments:
        return None
    return pin_digest(
        catalog, ref, env, digest, version=version, audit_id=audit_id, settings=settings
    )


@dataclass(frozen=True)
class OverlayEdit:
    """One application of a pin to a working copy of the GitOps repository."""

    previous: str | None  # what the overlay pinned before: a digest, or None (a tag, nothing)
    message: str | None  # the commit message; None when the overlay already pins the digest


@dataclass(frozen=True)
class _Pin:
    """One digest to pin: the application, the environment, and what the commit says."""

    settings: GitopsSettings
    image: CatalogImage
    env: str
    digest: str
    version: str
    audit_id: str | None

    def apply(self, workdir: Path) -> OverlayEdit:
        """Pin the digest in the environment's overlay of ``workdir``; say what it held."""
        relative = overlay_file(self.settings, self.image, self.env)
        text = read_overlay(workdir, relative)
        if text is None:
            raise UserError(
                f"the GitOps repository has no {relative}",
                hint="generate the layout with: imagefactory gitops init DIR, and commit it",
            )
        previous = read_pins(text).get(self.image.spec.name)
        edited = set_pin(
            text, self.image.spec.name, self.digest, where=relative, version=self.version
        )
        if edited == text:
            return OverlayEdit(previous, None)
        write_atomically(workdir / relative, edited.encode("utf-8"), mode=0o644, root=workdir)
        return OverlayEdit(previous, self._message(previous))

    def _message(self, previous: str | None) -> str:
        lines = [
            f"{self.env}: pin {self.image.ref} {self.version} {self.digest[:19]}",
            "",
            f"image: {self.image.ref}",
            f"version: {self.version}",
            f"digest: {self.digest}",
            f"environment: {self.env}",
            f"from: {previous or '(none)'}",
            f"to: {self.digest}",
            f"audit: {self.audit_id or '(none)'}",
        ]
        if self.settings.skip_ci:
            lines[0] += " [skip ci]"
        return "\n".join(lines) + "\n"

    def result(
        self,
        edit: OverlayEdit,
        action: str,
        commit: str | None = None,
        merge_request: mr.MergeRequest | None = None,
    ) -> PinResult:
        return PinResult(
            self.image.ref, self.env, self.digest, edit.previous, action, commit, merge_request
        )


def _merge_request(pin: _Pin, workdir: Path) -> PinResult:
    from imagefactory.gitops import mr  # python-gitlab costs every CLI start 60 ms

    gitlab_settings = pin.settings.gitlab
    assert gitlab_settings is not None
    gitlab_project = mr.project(gitlab_settings)  # a bad token fails before anything is pushed
    edit = pin.apply(workdir)
    if edit.message is None:
        return pin.result(edit, "unchanged")
    branch = mr.branch_name(pin.env, app_name(pin.image))
    git.run(workdir, "checkout", "--quiet", "-B", branch)
    git.run(workdir, "add", "--all")
    git.run(workdir, "commit", "--quiet", "--no-verify", "-m", edit.message)
    if not _branch_has_it(workdir, branch):
        repo.force_push_branch(workdir, branch)
    title, _, body = edit.message.partition("\n")
    request = mr.open_or_update(
        gitlab_settings,
        gitlab_project,
        source_branch=branch,
        target_branch=pin.settings.branch,
        title=title.replace(" [skip ci]", ""),
        description=body.strip(),
    )
    return pin.result(edit, "merge_request", _remote_head(workdir, branch), request)


def _branch_has_it(workdir: Path, branch: str) -> bool:
    """The remote MR branch already holds this very change on this very base: no new push."""
    fetched = git.run(workdir, "fetch", "--quiet", "origin", f"refs/heads/{branch}", check=False)
    if fetched.returncode != 0:
        return False  # no such branch yet

    def rev(name: str) -> str:
        return git.run(workdir, "rev-parse", name, check=False).output.strip()

    same_tree = rev("FETCH_HEAD^{tree}") == rev("HEAD^{tree}")
    return same_tree and rev("FETCH_HEAD^") == rev("HEAD^")


def _remote_head(workdir: Path, branch: str) -> str:
    listed = git.run(workdir, "ls-remote", "origin", f"refs/heads/{branch}").output.split()
    return listed[0] if listed else repo.head(workdir)
