"""Tags in registries: the change a push, a promotion or the completion of an interrupted one
plans for each tag (``plan_changes``: the one place that refuses to move an immutable tag),
writing the planned changes so that every tag holds the released digest, and verifying that
they do."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from imagefactory.errors import UserError
from imagefactory.registry.client import RegistryClient
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.models import Registry


@dataclass(frozen=True)
class TagChange:
    registry: str
    repository: str
    tag: str
    action: str  # create | move | keep
    previous: str | None  # the digest the tag pointed to before
    immutable: bool = False  # X.Y.Z or git-<sha>: never moved without --force

    @property
    def moves_immutable(self) -> bool:
        return self.action == "move" and self.immutable


def action_for(previous: str | None, digest: str) -> str:
    """What a tag that names ``previous`` now needs to name ``digest``."""
    return "create" if previous is None else ("keep" if previous == digest else "move")


def plan_changes(
    client: RegistryClient,
    target: tuple[str, Registry],
    repository: str,
    tags: Iterable[str],
    immutable: Collection[str],
    digest: str,
    *,
    existing: Collection[str] | None,
    hint: str,
    force: bool = False,
) -> list[TagChange]:
    """What each of ``tags`` in ``repository`` of ``target`` (its name and registry) needs so
    that it names ``digest``. ``existing``: the repository's tags, when the caller listed them
    (a tag not among them is not looked up); None: look each one up. A tag of ``immutable`` that
    holds another digest is refused (a UserError with ``hint``) unless ``force``."""
    name, registry = target
    changes = []
    for tag in tags:
        known = existing is None or tag in existing
        previous = client.digest(registry, f"{repository}:{tag}") if known else None
        change = TagChange(
            name, repository, tag, action_for(previous, digest), previous, tag in immutable
        )
        if change.moves_immutable and not force:
            raise UserError(
                f"{repository}:{tag} already exists with another digest ({previous})", hint=hint
            )
        changes.append(change)
    return changes


def write_tags(
    client: RegistryClient,
    catalog: Catalog,
    source_registry: Registry,
    source: str,
    changes: list[TagChange],
) -> None:
    """Write every tag ``changes`` creates or moves so that it holds ``source``'s digest.

    The image moves at most once per target repository (an image copy, to its ``git-`` tag
    when there is one); a repository that already holds the digest (the build's own, for a push)
    needs no copy. Every other tag gets the manifest put again under it, a request each, right
    after checking that an immutable tag planned as new is still free: two pushes that chose the
    same version at once leave it to the first (the window is one request, not a copy). At the
    end every written tag must still name the digest; otherwise nothing is recorded in state.
    """
    repository_of_source, _, digest = source.rpartition("@")
    holding = {(c.registry, c.repository) for c in changes if c.action == "keep"}
    holding |= {(c.registry, c.repository) for c in changes if c.repository == repository_of_source}
    written = sorted(
        (c for c in changes if c.action != "keep"), key=lambda c: not c.tag.startswith("git-")
    )
    for change in written:
        target = catalog.project.registries[change.registry]
        if change.action == "create" and change.immutable:
            taken = client.digest(target, f"{change.repository}:{change.tag}")
            if taken is not None and taken != digest:
                raise UserError(
                    f"{change.repository}:{change.tag} was written by someone else meanwhile "
                    f"({taken})",
                    hint="nothing was recorded in state (the audit log marks the step failed); "
                    "run it again: it will choose the next version",
                )
        if (change.registry, change.repository) in holding:
            client.tag(target, change.repository, digest, change.tag)
        else:
            client.copy(source_registry, source, target, f"{change.repository}:{change.tag}")
            holding.add((change.registry, change.repository))
    verify_tags(client, catalog, written, digest)


def verify_tags(
    client: RegistryClient, catalog: Catalog, changes: list[TagChange], digest: str
) -> None:
    """Every tag of ``changes`` names ``digest`` in its registry; else a UserError."""
    for change in changes:
        reference = f"{change.repository}:{change.tag}"
        there = client.digest(catalog.project.registries[change.registry], reference)
        if there != digest:
            raise UserError(
                f"digest mismatch after copy: {reference} is {there}, expected {digest}",
                hint="another writer moved that tag meanwhile, or the registry rewrote the "
                "manifest; nothing was recorded in state (the audit log marks the step failed)",
            )
