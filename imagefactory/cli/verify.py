"""verify: check an image's signed evidence in an environment's registries; keygen: make the
project's signing key pair."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from imagefactory.cli.app import Session, app
from imagefactory.cli.catalog import JsonOption, one_image, open_catalog, shown
from imagefactory.errors import UserError

if TYPE_CHECKING:
    from imagefactory.evidence.check import ImageVerification

DEFAULT_PASSWORD_ENV = "IMAGEFACTORY_SIGNING_KEY_PASSWORD"


@app.command(
    name="verify",
    epilog="Examples:\n\n  imagefactory verify app/rag-api\n\n"
    "  imagefactory verify app/rag-api --env prod --json\n\n"
    "  imagefactory verify base/debian@sha256:<hex> --env dev",
)
def verify_command(
    ctx: typer.Context,
    image: Annotated[
        str | None,
        typer.Argument(
            help="The image ref, optionally @sha256:<hex> (default: the digest the "
            "environment's version tag names in the registry, the version read from state).",
            show_default=False,
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env", help="The environment whose registries are checked (default: the first)."
        ),
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Verify an evidence bundle (imagefactory evidence) offline instead, with --key: "
            "no registry, no catalog.",
            dir_okay=False,
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", help="With --bundle: the PEM public key (cosign.pub).", dir_okay=False
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Verify the signed evidence of an image in each registry of an environment; or, with
    --bundle FILE --key PUB, an evidence bundle offline (manifests, blobs, signatures,
    attestations, the seal over its audit records and summary).

    Checks, each reported ok, failed or skipped: the version tag names the digest released
    (when no digest is given), the signature (by signing.public_key, for one of the image's
    repositories) and every attestation (signed, about this digest), the provenance (its
    builder in signing.builders), the chain of parents down to the base (each verified in its
    own repository, none revoked), a passing test attestation, a release attestation into the
    environment, and that the digest is not revoked. Exits 1 when any check fails.
    """
    from imagefactory.evidence.check import check_image
    from imagefactory.spec.parents import DIGEST_PATTERN

    if bundle is not None or key is not None:
        _verify_bundle(ctx, bundle, key, image, env, json_output)
        return
    if image is None:
        raise typer.BadParameter("name the image to verify", param_hint="IMAGE")
    ref, _, digest = image.partition("@")
    if digest and DIGEST_PATTERN.fullmatch(digest) is None:
        raise typer.BadParameter(f"'{digest}' is not sha256:<64 hex digits>", param_hint="IMAGE")
    session, catalog = open_catalog(ctx, json_output)
    result = check_image(catalog, one_image(catalog, ref), digest=digest or None, environment=env)
    _show(session, result)
    if not result.ok:
        raise typer.Exit(1)


def _verify_bundle(
    ctx: typer.Context,
    bundle: Path | None,
    key: Path | None,
    image: str | None,
    env: str | None,
    json_output: bool,
) -> None:
    from imagefactory.evidence.bundle import verify_file

    if bundle is None or key is None:
        raise typer.BadParameter("--bundle and --key go together", param_hint="--bundle/--key")
    if image is not None or env is not None:
        raise typer.BadParameter("a bundle names its image and environment", param_hint="IMAGE")
    session: Session = ctx.obj
    session.output.json = json_output
    report = verify_file(bundle, key)
    summary = dict(report.summary)
    if json_output:
        session.output.data(
            {
                "ok": report.ok,
                "intact": True,  # a bundle that is not raises VerificationError above
                "problems": list(report.problems),
                "bundle": str(bundle),
                "image": report.image,
                "environment": report.environment,
                "repository": report.repository,
                "digest": report.digest,
                "summary": summary,
            }
        )
    else:
        session.output.text(
            f"verified offline: {report.repository}@{report.digest} "
            f"({report.image}, {report.environment})"
        )
        for kind, count in summary["attestations"].items():
            session.output.text(f"  {count} {kind}")
        session.output.text(f"  {summary['audit_records']} audit records, sealed")
        if summary["revoked"]:
            session.output.text(
                "  REVOKED: the evidence is intact, and it says the digest is revoked"
            )
        for problem in report.problems:
            session.output.text(f"  not releasable: {problem}")
    if not report.ok:
        raise typer.Exit(1)


def _show(session: Session, result: ImageVerification) -> None:
    if session.output.json:
        session.output.data(
            {
                "ok": result.ok,
                "image": result.image,
                "environment": result.environment,
                "digests": result.digests,
                "checks": [
                    {
                        "repository": c.repository,
                        "check": c.name,
                        "result": c.result,
                        "detail": c.detail,
                    }
                    for c in result.checks
                ],
            }
        )
        return
    rows = [[c.repository, c.name, c.result, c.detail] for c in result.checks]
    session.output.table(
        f"{result.image} in {result.environment}", ["repository", "check", "result", "detail"], rows
    )
    failed = sum(c.result != "ok" for c in result.checks)
    session.output.text("verified" if result.ok else f"NOT verified: {failed} checks not ok")


@app.command(
    name="keygen",
    epilog="Example: imagefactory keygen --public keys/cosign.pub --private ~/.imagefactory/signing.key",
)
def keygen_command(
    ctx: typer.Context,
    public: Annotated[
        Path,
        typer.Option(
            "--public",
            help="Where the PEM public key goes (commit it), relative to the project root as "
            "signing.public_key is.",
        ),
    ],
    private: Annotated[
        Path,
        typer.Option(
            "--private",
            help="Where the PKCS#8 PEM private key goes (mode 0600; keep it secret, outside the "
            "repository), relative to the project root.",
        ),
    ],
    password_env: Annotated[
        str,
        typer.Option(
            "--password-env",
            help="The variable holding a password to encrypt the private key with (unset: unencrypted).",
        ),
    ] = DEFAULT_PASSWORD_ENV,
    json_output: JsonOption = False,
) -> None:
    """Make an ECDSA P-256 signing key pair (cosign's key type) for signing: in imagefactory.yaml.

    Neither file may exist: a key is never overwritten. The private key goes in a CI variable
    (signing.private_key_env: its PEM text, or a variable of type File), never in the repository.
    Relative paths start at the project root (-C, else the nearest folder holding
    imagefactory.yaml; the current folder when there is none yet), as the project file's are.
    """
    from imagefactory import tools
    from imagefactory.evidence.keys import generate_pair

    session: Session = ctx.obj
    session.output.json = json_output
    root = _project_root(session)
    public, private = root / public, root / private
    tools.secret_names(password_env)
    password = os.environ.get(password_env) or None
    if password is not None:
        tools.redact(password)
    fingerprint = generate_pair(
        public, private, password=None if password is None else password.encode("utf-8")
    )
    if json_output:
        session.output.data(
            {
                "ok": True,
                "public": str(public),
                "private": str(private),
                "encrypted": password is not None,
                "fingerprint": fingerprint,
            }
        )
        return
    encrypted = f", encrypted with ${password_env}" if password is not None else ""
    session.output.text(f"public key: {shown(public, root)} ({fingerprint})")
    session.output.text(f"private key: {shown(private, root)} (mode 0600{encrypted})")


def _project_root(session: Session) -> Path:
    """Where keygen's relative paths start: the project root, or the current folder before the
    project file is written."""
    from imagefactory.spec.loader import find_project_root

    if session.project is not None:
        return session.project.resolve()
    try:
        return find_project_root(Path.cwd())
    except UserError:
        return Path.cwd().resolve()
