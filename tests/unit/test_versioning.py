"""Versions and tags for pushes: choose_version, variant_suffix, parse_version_tag, plan_tags."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from semver import Version

from imagefactory.project.naming import variant_suffix
from imagefactory.release.versioning import (
    REASON_AS_WRITTEN,
    REASON_UNCHANGED,
    TagPlan,
    VersionChoice,
    choose_version,
    parse_version_tag,
    plan_tags,
    tag_versions,
)

V = Version.parse
SHA = "0123456789abcdef0123456789abcdef01234567"


# --------------------------------------------------------------------------- choose_version


def test_a_first_push_gets_the_version_as_written() -> None:
    choice = choose_version("1.4.2", "h1", {}, [])
    assert choice == VersionChoice(V("1.4.2"), REASON_AS_WRITTEN)


def test_unchanged_content_keeps_its_version() -> None:
    choice = choose_version("1.4.2", "h1", {"1.4.2": "h1"}, ["1.4.2"])
    assert choice == VersionChoice(V("1.4.2"), REASON_UNCHANGED)


def test_unchanged_content_reuses_the_patch_it_was_given() -> None:
    # 1.4.2 went to h1; h2 got 1.4.3 because the version was not bumped; h2 again → 1.4.3
    assigned = {"1.4.2": "h1", "1.4.3": "h2"}
    assert choose_version("1.4.2", "h2", assigned, ["1.4.2", "1.4.3"]).version == V("1.4.3")


def test_unchanged_content_reuses_the_highest_version_it_was_given() -> None:
    assigned = {"1.4.2": "h1", "1.4.5": "h1", "1.4.3": "h1", "1.4.4": "h2"}
    choice = choose_version("1.4.2", "h1", assigned, [])
    assert choice.version == V("1.4.5")
    assert choice.reason == "unchanged content: same version"


def test_unchanged_content_wins_over_a_free_spec_version() -> None:
    assert choose_version("1.5.0", "h1", {"1.4.2": "h1"}, []).version == V("1.4.2")


def test_new_content_without_a_bump_gets_the_next_patch() -> None:
    choice = choose_version("1.4.2", "h2", {"1.4.2": "h1"}, ["1.4.2"])
    assert choice.version == V("1.4.3")
    assert choice.reason == (
        "content changed since 1.4.2 and the version was not bumped: next patch"
    )


def test_new_content_again_without_a_bump_gets_the_patch_after_that() -> None:
    assigned = {"1.4.2": "h1", "1.4.3": "h2"}
    assert choose_version("1.4.2", "h3", assigned, ["1.4.2", "1.4.3"]).version == V("1.4.4")


def test_the_next_patch_is_past_every_version_of_the_line() -> None:
    assigned = {"1.4.2": "h1", "1.4.7": "h9"}
    assert choose_version("1.4.2", "h2", assigned, ["1.4.5"]).version == V("1.4.8")


def test_a_bumped_version_is_used_as_written() -> None:
    choice = choose_version("1.5.0", "h2", {"1.4.2": "h1"}, ["1.4.2"])
    assert choice == VersionChoice(V("1.5.0"), REASON_AS_WRITTEN)


def test_a_bump_to_a_lower_free_version_is_honoured() -> None:
    # a backport: 2.0.0 exists, the 1.4 branch is bumped to 1.4.3
    assert choose_version("1.4.3", "h3", {"2.0.0": "h2"}, ["2.0.0"]).version == V("1.4.3")


def test_a_version_taken_in_the_registry_but_not_in_state_is_not_reused() -> None:
    choice = choose_version("1.4.2", "h1", {}, ["1.4.2"])
    assert choice.version == V("1.4.3")
    assert choice.reason == (
        "1.4.2 is already in the registry for other content and the version was not "
        "bumped: next patch"
    )


def test_taken_versions_count_even_when_state_knows_others() -> None:
    assert choose_version("1.4.2", "h3", {"1.4.2": "h1"}, ["1.4.2", "1.4.3"]).version == V("1.4.4")


def test_other_lines_do_not_change_the_next_patch() -> None:
    taken = ["1.3.9", "1.4.2", "1.5.0", "2.0.0", "1.40.1"]
    assert choose_version("1.4.2", "h2", {}, taken).version == V("1.4.3")


def test_several_lines_each_count_their_own_patches() -> None:
    taken = ["1.4.0", "1.4.1", "1.5.0", "1.5.1", "1.5.2", "2.0.0"]
    assert choose_version("1.4.0", "x", {}, taken).version == V("1.4.2")
    assert choose_version("1.5.1", "x", {}, taken).version == V("1.5.3")
    assert choose_version("2.0.0", "x", {}, taken).version == V("2.0.1")
    assert choose_version("2.1.0", "x", {}, taken).version == V("2.1.0")


def test_a_prerelease_in_the_line_keeps_its_patch_number() -> None:
    # 1.4.3-rc.1 announces 1.4.3: new content of 1.4.2 skips to 1.4.4
    assert choose_version("1.4.2", "h2", {}, ["1.4.2", "1.4.3-rc.1"]).version == V("1.4.4")


def test_a_taken_prerelease_gets_the_next_prerelease() -> None:
    choice = choose_version("2.0.0-rc.1", "h2", {"2.0.0-rc.1": "h1"}, [])
    assert choice.version == V("2.0.0-rc.2")
    assert choice.reason.endswith("next prerelease")
    taken = ["2.0.0-rc.1", "2.0.0-rc.2", "2.0.0-beta.9", "2.0.1-rc.7"]
    assert choose_version("2.0.0-rc.1", "h9", {}, taken).version == V("2.0.0-rc.3")


def test_a_free_prerelease_is_used_as_written() -> None:
    assert choose_version("2.0.0-rc.1", "h", {}, ["1.9.0"]).version == V("2.0.0-rc.1")


def test_build_metadata_is_not_part_of_a_version() -> None:
    choice = choose_version("1.4.2+build.7", "h1", {}, [])
    assert choice.version == V("1.4.2")
    assert choice.version.build is None
    # 1.4.2+other is 1.4.2: taken
    assert choose_version("1.4.2+build.7", "h2", {"1.4.2+other": "h1"}, []).version == V("1.4.3")
    assert choose_version("1.4.2", "h1", {"1.4.2+x": "h1"}, []).version == V("1.4.2")


def test_strings_that_are_not_versions_are_ignored() -> None:
    assert choose_version("1.4.2", "h1", {"latest": "h1", "1.4": "h1"}, ["main", "1"]) == (
        VersionChoice(V("1.4.2"), REASON_AS_WRITTEN)
    )


def test_a_spec_version_that_is_not_semver_is_refused() -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        choose_version("1.4", "h", {}, [])


versions = st.builds(
    Version,
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 5),
    st.sampled_from([None, None, None, "rc.1", "rc.2", "beta"]),
)
hashes = st.sampled_from(["h1", "h2", "h3", "h4"])


@given(
    spec=versions,
    content=hashes,
    assigned=st.dictionaries(versions.map(str), hashes, max_size=6),
    taken=st.lists(versions.map(str), max_size=6),
)
def test_a_version_is_never_reused_for_other_content(
    spec: Version, content: str, assigned: dict[str, str], taken: list[str]
) -> None:
    choice = choose_version(str(spec), content, assigned, taken)
    if assigned.get(str(choice.version)) == content:
        assert choice.reason == REASON_UNCHANGED
    else:
        assert str(choice.version) not in assigned
        assert str(choice.version) not in taken
        # only ever the spec version, or later in its line: never an older version
        assert choice.version >= spec
        assert (choice.version.major, choice.version.minor) == (spec.major, spec.minor)
        assert (choice.version.prerelease is None) == (spec.prerelease is None)


# --------------------------------------------------------------------------- variant_suffix


def test_variant_suffix() -> None:
    assert variant_suffix({}) == ""
    assert variant_suffix({"accelerator": "cuda"}) == "-cuda"
    assert variant_suffix({"accelerator": "cuda", "python": "py312"}) == "-cuda-py312"


# --------------------------------------------------------------------------- parse_version_tag


@pytest.mark.parametrize(
    ("tag", "suffix", "expected"),
    [
        ("1.4.2", "", "1.4.2"),
        ("1.4.2-cuda", "-cuda", "1.4.2"),
        ("1.4.2-rc.1-cuda", "-cuda", "1.4.2-rc.1"),
        ("1.4.2-rc.1", "", "1.4.2-rc.1"),
        ("10.20.30-cuda-py312", "-cuda-py312", "10.20.30"),
        ("1.4-cuda", "-cuda", None),
        ("1-cuda", "-cuda", None),
        ("1.4", "", None),
        ("latest", "", None),
        ("latest-cuda", "-cuda", None),
        ("git-0123abcd-cuda", "-cuda", None),
        ("content-0123456789abcdef01234567", "", None),
        ("1.4.2-cpu", "-cuda", None),
        ("1.4.2", "-cuda", None),
        ("v1.4.2", "", None),
        ("01.4.2", "", None),
        ("1.4.2-cuda", "-py312", None),
    ],
)
def test_parse_version_tag(tag: str, suffix: str, expected: str | None) -> None:
    parsed = parse_version_tag(tag, suffix)
    assert (str(parsed) if parsed is not None else None) == expected


def test_a_plain_tag_of_a_variant_is_not_a_prerelease_of_the_plain_image() -> None:
    others = ["-cpu", "-cuda"]
    assert parse_version_tag("1.4.2-cuda", "", others) is None
    assert parse_version_tag("1.4.2-rc.1-cuda", "", others) is None
    assert parse_version_tag("1.4.2", "", others) == V("1.4.2")
    assert parse_version_tag("1.4.2-rc.1", "", others) == V("1.4.2-rc.1")
    # without the other suffixes the tag is read as a prerelease: the caller must pass them
    assert parse_version_tag("1.4.2-cuda", "") == V("1.4.2-cuda")


def test_the_longest_suffix_wins() -> None:
    assert parse_version_tag("1.0.0-cpu-py312", "-py312", ["-cpu-py312"]) is None
    assert parse_version_tag("1.0.0-cpu-py312", "-cpu-py312", ["-py312"]) == V("1.0.0")
    assert parse_version_tag("1.0.0-cuda", "-cuda", ["-cuda"]) == V("1.0.0")  # itself: ignored


def test_build_metadata_never_reads_as_a_tag() -> None:
    assert parse_version_tag("1.4.2+build", "") is None


def test_tag_versions_of_a_variant_repository() -> None:
    tags = ["1.0.0-cpu", "1.0.0-cuda", "1.0-cpu", "latest-cpu", "1.1.0-cpu", "1.0.0-cpu", "x"]
    assert tag_versions(tags, "-cpu", ["-cuda"]) == [V("1.0.0"), V("1.1.0")]
    assert tag_versions(tags, "-cuda", ["-cpu"]) == [V("1.0.0")]
    assert tag_versions(tags, "", ["-cpu", "-cuda"]) == []


# --------------------------------------------------------------------------- plan_tags


def test_a_first_release_moves_every_alias() -> None:
    assert plan_tags(V("1.4.2"), "", [], None) == TagPlan(
        immutable=("1.4.2",), aliases=("1.4", "1", "latest")
    )


def test_a_release_above_all_moves_every_alias() -> None:
    plan = plan_tags(V("2.1.0"), "", [V("1.4.2"), V("2.0.0")], None)
    assert plan.aliases == ("2.1", "2", "latest")


def test_the_backport_trap_moves_neither_latest_nor_the_newer_major() -> None:
    plan = plan_tags(V("1.4.3"), "", [V("1.4.2"), V("2.0.0")], None)
    assert plan.immutable == ("1.4.3",)
    assert plan.aliases == ("1.4", "1")
    assert "2" not in plan.aliases


def test_a_patch_on_an_older_minor_moves_only_its_minor_alias() -> None:
    plan = plan_tags(V("1.4.3"), "", [V("1.4.2"), V("1.5.0"), V("1.5.1")], None)
    assert plan.aliases == ("1.4",)


def test_an_older_patch_moves_nothing() -> None:
    plan = plan_tags(V("1.4.1"), "", [V("1.4.2")], None)
    assert plan.aliases == ()


def test_pushing_the_highest_version_again_moves_its_aliases_again() -> None:
    plan = plan_tags(V("2.0.0"), "", [V("1.4.2"), V("2.0.0")], None)
    assert plan.aliases == ("2.0", "2", "latest")


def test_a_prerelease_moves_no_alias() -> None:
    plan = plan_tags(V("3.0.0-rc.1"), "-cuda", [V("2.0.0")], SHA)
    assert plan.immutable == ("3.0.0-rc.1-cuda", "git-01234567-cuda")
    assert plan.aliases == ()


def test_existing_prereleases_never_hold_an_alias_back() -> None:
    plan = plan_tags(V("1.4.3"), "", [V("1.4.2"), V("2.0.0-rc.1"), V("1.4.4-rc.1")], None)
    assert plan.aliases == ("1.4", "1", "latest")


def test_a_variant_gets_suffixed_tags_and_its_own_latest() -> None:
    plan = plan_tags(V("1.4.2"), "-cuda", [], SHA)
    assert plan.immutable == ("1.4.2-cuda", "git-01234567-cuda")
    assert plan.aliases == ("1.4-cuda", "1-cuda", "latest-cuda")


def test_the_git_tag_is_the_first_eight_hex_digits_in_lower_case() -> None:
    assert plan_tags(V("1.0.0"), "", [], "ABCDEF0123456789").immutable == (
        "1.0.0",
        "git-abcdef01",
    )
    assert plan_tags(V("1.0.0"), "", [], "abcdef01").immutable == ("1.0.0", "git-abcdef01")


@pytest.mark.parametrize("sha", ["", "abc1234", "not-a-sha-at-all", "g" * 40])
def test_a_git_sha_that_is_not_one_is_refused(sha: str) -> None:
    with pytest.raises(ValueError, match="git commit sha"):
        plan_tags(V("1.0.0"), "", [], sha)


def test_build_metadata_is_dropped_from_tags() -> None:
    plan = plan_tags(V("1.0.0+build.7"), "", [V("0.9.0+x")], None)
    assert plan.immutable == ("1.0.0",)
    assert plan.aliases == ("1.0", "1", "latest")


def test_a_tag_a_registry_would_refuse_is_refused() -> None:
    with pytest.raises(ValueError, match="not a valid registry tag"):
        plan_tags(V("1.0.0-" + "a" * 130), "", [], None)


@given(
    version=versions,
    existing=st.lists(versions, max_size=8),
    suffix=st.sampled_from(["", "-cpu", "-cuda-py312"]),
)
def test_no_alias_ever_moves_below_an_existing_release_of_its_line(
    version: Version, existing: list[Version], suffix: str
) -> None:
    plan = plan_tags(version, suffix, existing, None)

    def same_minor(v: Version) -> bool:
        return (v.major, v.minor) == (version.major, version.minor)

    def same_major(v: Version) -> bool:
        return v.major == version.major

    def any_version(v: Version) -> bool:
        return True

    lines: dict[str, Callable[[Version], bool]] = {
        f"{version.major}.{version.minor}{suffix}": same_minor,
        f"{version.major}{suffix}": same_major,
        f"latest{suffix}": any_version,
    }
    assert set(plan.aliases) <= set(lines)
    assert plan.immutable == (f"{version}{suffix}",)
    for alias in plan.aliases:
        assert version.prerelease is None
        in_line = [v for v in existing if lines[alias](v) and v.prerelease is None]
        assert all(version >= v for v in in_line)
    for alias in set(lines) - set(plan.aliases):
        # skipped only for a reason: a prerelease, or a higher release in the line
        assert version.prerelease is not None or any(
            v > version and v.prerelease is None and lines[alias](v) for v in existing
        )
