"""The retention rules (release/retention.py) and each environment's effective retention."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import semver

from imagefactory.project.retention import retention_of
from imagefactory.release.gc import tag_kind
from imagefactory.release.retention import Decision, Facts, Manifest, decide
from imagefactory.spec.models import Environment, ProjectSpec, Registry, Retention

NOW = datetime(2026, 12, 2, tzinfo=UTC)
OLD = NOW - timedelta(days=90)
DEV = Retention(keep_versions=2, keep_days=30, hold_days=365)
RETENTIONS: dict[str, Retention | None] = {"dev": DEV, "prod": None}


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def manifest(n: int, *tags: str, env: str = "dev", image: str = "app/api") -> Manifest:
    versions = tuple(semver.Version.parse(t) for t in tags if t.count(".") == 2)
    aliases = tuple(
        t for t in tags if t == "latest" or (t.replace(".", "").isdigit() and t.count(".") < 2)
    )
    return Manifest(env, env, f"r/{env}/{image}", image, digest(n), tags, versions, "", aliases)


def decided(
    manifests: list[Manifest], facts: Facts | None = None, parents: dict[str, str] | None = None
) -> dict[tuple[str, str], Decision]:
    every = {m.digest for m in manifests}
    facts = facts or Facts(last_seen=dict.fromkeys(every, OLD))
    found = decide(manifests, facts, RETENTIONS, lambda m: (parents or {}).get(m.digest), NOW)
    return {(d.manifest.environment, d.manifest.digest): d for d in found}


def test_the_highest_versions_of_each_line_are_kept_the_rest_go() -> None:
    manifests = [manifest(n, f"1.2.{n}") for n in range(1, 5)] + [manifest(9, "1.3.0")]
    result = decided(manifests)
    assert [n for n in range(1, 5) if result[("dev", digest(n))].deleted] == [1, 2]
    assert result[("dev", digest(9))].reasons == ("version: 1.3.0 is among the 2 highest of 1.3",)
    assert "not among the 2 highest" in (result[("dev", digest(1))].why or "")


def test_aliases_pins_state_current_and_holds_keep_a_digest() -> None:
    manifests = [manifest(n, f"1.0.{n}") for n in range(1, 9)]
    manifests[0] = manifest(1, "1.0.1", "latest")
    facts = Facts(
        pinned={digest(2): ("prod (app/api, GitOps)",)},
        recorded={digest(3): ("preprod holds app/api 1.0.3 (state)",)},
        current=[digest(4)],
        last_seen={**{digest(n): OLD for n in range(1, 9)}, digest(5): NOW - timedelta(days=3)},
        held={digest(6): (NOW - timedelta(days=100), "yanked app/api 1.0.6 (state)")},
        unverified={digest(7): "the signature does not verify"},
    )
    result = decided(manifests, facts)
    assert result[("dev", digest(1))].reasons == ("alias: latest",)
    assert result[("dev", digest(2))].reasons[0].startswith("pinned: prod")
    assert result[("dev", digest(3))].reasons[0].startswith("recorded: preprod")
    assert result[("dev", digest(4))].reasons[0].startswith("current:")
    assert result[("dev", digest(5))].reasons[0].startswith("young: last activity")
    assert result[("dev", digest(6))].reasons[0].startswith("held: yanked")
    assert result[("dev", digest(7))].reasons[0].startswith("unverified:")
    assert result[("dev", digest(8))].reasons[0].startswith("version: 1.0.8")  # the top two: 7, 8


def test_a_hold_ends_after_hold_days() -> None:
    manifests = [manifest(n, f"1.0.{n}") for n in range(1, 4)]
    facts = Facts(
        last_seen=dict.fromkeys((m.digest for m in manifests), OLD),
        held={digest(1): (NOW - timedelta(days=400), "revoked (revocations.yaml:3)")},
    )
    assert decided(manifests, facts)[("dev", digest(1))].deleted


def test_nothing_is_known_of_its_age_so_it_is_kept() -> None:
    manifests = [manifest(n, f"1.0.{n}") for n in range(1, 4)]
    result = decided(manifests, Facts(last_seen={digest(2): OLD, digest(3): OLD}))
    assert result[("dev", digest(1))].reasons[0].startswith("age unknown")


def test_an_environment_without_retention_deletes_nothing_and_protects_dev() -> None:
    manifests = [manifest(n, f"1.0.{n}") for n in range(1, 5)]
    manifests.append(manifest(1, "1.0.1", env="prod"))
    result = decided(manifests)
    assert result[("prod", digest(1))].reasons[0].startswith("retention: prod deletes nothing")
    assert result[("dev", digest(1))].reasons == ("kept elsewhere: in prod (r/prod/app/api)",)
    assert result[("prod", digest(1))].reasons == (  # one kept only from elsewhere: no echo
        "retention: prod deletes nothing (no retention: setting)",
    )
    assert result[("dev", digest(2))].deleted


def test_parents_of_kept_digests_are_kept_transitively() -> None:
    base = manifest(1, "content-aa", image="base/os")
    runtime = manifest(2, "content-bb", image="runtime/py")
    stray = manifest(3, "content-cc", image="base/os")
    app = manifest(4, "1.0.0", "latest")
    result = decided(
        [base, runtime, stray, app], parents={digest(4): digest(2), digest(2): digest(1)}
    )
    assert result[("dev", digest(2))].reasons == (f"parent: of r/dev/app/api@{digest(4)}",)
    assert result[("dev", digest(1))].reasons == (f"parent: of r/dev/runtime/py@{digest(2)}",)
    assert result[("dev", digest(3))].deleted
    assert (result[("dev", digest(3))].why or "").startswith("an unreleased build (content-cc)")
    # a digest kept for its own reasons is told it is a parent too
    aliased = replace(base, aliases=("latest",))
    both = decided([aliased, app], parents={digest(4): digest(1)})
    assert both[("dev", digest(1))].reasons == (
        "alias: latest",
        f"parent: of r/dev/app/api@{digest(4)}",
    )


def test_foreign_tags_keep_a_digest() -> None:
    m = Manifest(
        "dev", "dev", "r/dev/app/api", "app/api", digest(1), ("nightly",), foreign=("nightly",)
    )
    assert decided([m])[("dev", digest(1))].reasons == (
        "foreign tag: nightly (not imagefactory's)",
    )


def test_the_first_environment_has_a_default_retention_the_others_none() -> None:
    registry = Registry(url="127.0.0.1:5000")
    dev = Environment(name="dev", registries=["r"])
    prod = Environment(name="prod", registries=["r"])
    kept = Environment(name="prod", registries=["r"], retention=Retention(keep_versions=3))
    project = ProjectSpec(project="p", registries={"r": registry}, environments=[dev, prod])
    assert retention_of(project, dev) == Retention(keep_versions=10, keep_days=30)
    assert retention_of(project, prod) is None
    assert retention_of(project, kept) == Retention(keep_versions=3)
    off = Environment(name="dev", registries=["r"], retention=Retention(delete=False))
    assert retention_of(project, off) is None


def test_tags_are_sorted_into_kinds_longest_suffix_first() -> None:
    suffixes = ["-cuda", ""]
    assert tag_kind("1.4.2", suffixes)[:2] == ("version", "")
    assert tag_kind("1.4.2-cuda", suffixes) == ("version", "-cuda", semver.Version.parse("1.4.2"))
    assert tag_kind("2.0.0-rc.1", suffixes)[0] == "version"  # a prerelease of the plain image
    assert tag_kind("1.4-cuda", suffixes) == ("alias", "-cuda", None)
    assert tag_kind("latest", suffixes) == ("alias", "", None)
    assert tag_kind("1", suffixes) == ("alias", "", None)
    for build in ("content-0123abcd", "staging-0123-abcd", "git-0123abcd"):
        assert tag_kind(build, suffixes)[0] == "build"
    for foreign in ("nightly", "1.4-rocm", "v1.4.2", "1.4.2+meta"):
        assert tag_kind(foreign, suffixes)[0] == "foreign", foreign
