"""How push and promote write tags (``tags.write_tags``), against an in-memory registry with
the client's interface: at most one copy per repository, none where the repository already
holds the digest, the git- tag first, and an immutable tag that another writer took between
planning and writing refused before anything is put under it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from imagefactory.errors import UserError
from imagefactory.release.tags import TagChange, write_tags
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import Registry

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
DEV = "127.0.0.1:5000/bank-ai-lab/dev/app/rag-api"
PREPROD = "127.0.0.1:5000/bank-ai-lab/preprod/app/rag-api"
IMMUTABLE = re.compile(r"\d+\.\d+\.\d+|git-.+")


@dataclass
class MemoryRegistry:
    """Tags by "repository:tag"; calls logged as (what, reference). Also what push and
    promote read (tag lists, labels): tests/unit/test_write_ahead.py runs them against it."""

    held: dict[str, str] = field(default_factory=dict)  # tag reference → digest
    calls: list[tuple[str, str]] = field(default_factory=list)
    # a tag another writer puts in at the moment its digest is first looked up
    intruder: tuple[str, str] | None = None

    def digest(self, registry: Registry, reference: str) -> str | None:
        self.calls.append(("digest", reference))
        if self.intruder is not None and reference == self.intruder[0]:
            self.held[reference] = self.intruder[1]
        return self.held.get(reference)

    def tags(self, registry: Registry, repository: str) -> list[str]:
        return sorted(
            t for r, _, t in (ref.rpartition(":") for ref in self.held) if r == repository
        )

    def label(self, registry: Registry, reference: str, name: str) -> str | None:
        return None  # no content-hash labels: versions come from state

    def copy(self, source: Registry, source_ref: str, target: Registry, target_ref: str) -> None:
        self.calls.append(("copy", target_ref))
        self.held[target_ref] = source_ref.rpartition("@")[2]

    def tag(self, registry: Registry, repository: str, digest: str, tag: str) -> None:
        self.calls.append(("tag", f"{repository}:{tag}"))
        held = set(self.held.values())
        assert digest in held, "a tag is put only on a manifest the registry holds"
        self.held[f"{repository}:{tag}"] = digest


@pytest.fixture
def catalog(catalog_dir: Path) -> Catalog:
    return load_catalog(catalog_dir)


def changes(repository: str, *tags: str, action: str = "create") -> list[TagChange]:
    """Tag changes as push and promote plan them: X.Y.Z and git-<sha> are immutable."""
    registry = "dev" if repository == DEV else "preprod"
    return [
        TagChange(registry, repository, tag, action, None, IMMUTABLE.fullmatch(tag) is not None)
        for tag in tags
    ]


def write(catalog: Catalog, memory: MemoryRegistry, source: str, todo: list[TagChange]) -> None:
    write_tags(
        memory,  # type: ignore[arg-type]  # the client's interface, in memory
        catalog,
        catalog.project.registries["dev"],
        source,
        todo,
    )


def test_a_push_into_the_build_repository_only_puts_tags(catalog: Catalog) -> None:
    memory = MemoryRegistry(held={f"{DEV}:content-1": DIGEST})
    write(catalog, memory, f"{DEV}@{DIGEST}", changes(DEV, "0.3.0", "git-abc", "latest"))
    assert [what for what, _ in memory.calls if what in ("copy", "tag")] == ["tag"] * 3
    assert memory.held[f"{DEV}:0.3.0"] == memory.held[f"{DEV}:latest"] == DIGEST


def test_a_promotion_copies_once_to_the_git_tag_then_puts_the_others(catalog: Catalog) -> None:
    memory = MemoryRegistry(held={f"{DEV}:0.3.0": DIGEST})
    todo = changes(PREPROD, "0.3.0", "git-abc", "0.3", "latest")
    write(catalog, memory, f"{DEV}@{DIGEST}", todo)
    writes = [(what, ref) for what, ref in memory.calls if what in ("copy", "tag")]
    assert writes == [
        ("copy", f"{PREPROD}:git-abc"),
        ("tag", f"{PREPROD}:0.3.0"),
        ("tag", f"{PREPROD}:0.3"),
        ("tag", f"{PREPROD}:latest"),
    ]


def test_a_repository_that_already_holds_the_digest_needs_no_copy(catalog: Catalog) -> None:
    memory = MemoryRegistry(held={f"{DEV}:0.3.0": DIGEST, f"{PREPROD}:0.3.0": DIGEST})
    todo = [*changes(PREPROD, "0.3.0", action="keep"), *changes(PREPROD, "latest", action="move")]
    write(catalog, memory, f"{DEV}@{DIGEST}", todo)
    assert [(w, r) for w, r in memory.calls if w in ("copy", "tag")] == [
        ("tag", f"{PREPROD}:latest")
    ]


def test_an_immutable_tag_taken_meanwhile_is_refused_before_it_is_written(
    catalog: Catalog,
) -> None:
    memory = MemoryRegistry(held={f"{DEV}:content-1": DIGEST}, intruder=(f"{DEV}:0.3.1", OTHER))
    todo = changes(DEV, "0.3.1", "git-abc", "latest")
    with pytest.raises(UserError, match="was written by someone else meanwhile") as caught:
        write(catalog, memory, f"{DEV}@{DIGEST}", todo)
    assert OTHER in caught.value.message
    assert memory.held[f"{DEV}:0.3.1"] == OTHER  # theirs stays
    assert f"{DEV}:latest" not in memory.held  # nothing after the refusal
    assert "choose the next version" in (caught.value.hint or "")


def test_a_tag_moved_after_it_was_written_fails_the_verification(catalog: Catalog) -> None:
    memory = MemoryRegistry(held={f"{DEV}:content-1": DIGEST})

    def moved_latest(registry: Registry, reference: str) -> str | None:
        memory.calls.append(("digest", reference))
        return OTHER if reference.endswith(":latest") else memory.held.get(reference)

    memory.digest = moved_latest  # type: ignore[method-assign]
    with pytest.raises(UserError, match=f"digest mismatch after copy: {DEV}:latest is {OTHER}"):
        write(catalog, memory, f"{DEV}@{DIGEST}", changes(DEV, "0.3.1", "latest"))
