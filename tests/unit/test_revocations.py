"""The catalog's ``revocations.yaml`` (``spec/revocations.py``): read and checked like every
catalog file (errors with file, line and key path), appended to without disturbing what is
written, checked by ``validate``; and the release gate refusing a digest it lists though the
registry holds no revocation of it (or a lifted one)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagefactory.errors import SpecError, UserError
from imagefactory.project.state import ImageRecord, State
from imagefactory.project.state import TestRecord as Run
from imagefactory.release import gate
from imagefactory.release.evidence import LocalEvidence
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.companions import companion_issues
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import Environment
from imagefactory.spec.revocations import (
    REVOCATIONS_FILE,
    Entry,
    Revocations,
    appended,
    load_revocations,
)

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
GOOD = f"""\
# revoked digests
revoked:
  - image: base/debian12
    digest: {A}
    reason: "CVE-2026-1: libfoo"   # the advisory
    by: sec
    at: "2026-12-01T10:00:00+00:00"
  - image: runtime/llm:cpu
    digest: {B}
    reason: built on the revoked base
    by: sec
    at: "2026-12-01T10:00:00+00:00"
    built_on: {A}
"""
AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def catalog(catalog_dir: Path) -> Catalog:
    return load_catalog(catalog_dir)


def write(catalog: Catalog, text: str) -> Path:
    path = catalog.root / REVOCATIONS_FILE
    path.write_text(text)
    return path


def problems(catalog: Catalog) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_revocations(catalog)
    return [issue.render() for issue in caught.value.issues]


def test_no_file_lists_nothing(catalog: Catalog) -> None:
    assert load_revocations(catalog).listed == ()
    write(catalog, "# nothing revoked yet\n")
    assert load_revocations(catalog).of(A) is None


def test_each_entry_is_read_with_its_line(catalog: Catalog) -> None:
    write(catalog, GOOD)
    listed = load_revocations(catalog)
    base, child = listed.listed
    assert (base.entry.image, base.entry.reason, base.line) == (
        "base/debian12",
        "CVE-2026-1: libfoo",
        3,
    )
    assert child.entry.built_on == A and child.location == f"{REVOCATIONS_FILE}:8"
    assert listed.of(B) == child and listed.of("sha256:" + "c" * 64) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("image: base/debian12", "image: base/debian13"),
            "revocations.yaml:3: revoked[0].image: 'base/debian13' is not an image of the "
            "catalog\n    hint: did you mean 'base/debian12'?",
        ),
        (
            GOOD.replace("runtime/llm:cpu", "runtime/llm"),
            "revocations.yaml:8: revoked[1].image: 'runtime/llm' is not an image",
        ),
        (
            GOOD.replace(f"digest: {A}", "digest: sha256:abc"),
            "revocations.yaml:4: revoked[0].digest: string should match pattern",
        ),
        (
            GOOD.replace("by: sec\n    at", "bye: sec\n    at", 1),
            "revocations.yaml:6: revoked[0].bye: unknown key 'bye'\n    hint: did you mean 'by'?",
        ),
        (
            GOOD.replace('"2026-12-01T10:00:00+00:00"', "2026-12-01T10:00:00+00:00", 1),
            "revocations.yaml:7: revoked[0].at: '2026-12-01T10:00:00+00:00' reads as a YAML "
            "timestamp, not as text",
        ),
        (
            GOOD.replace("+00:00", "", 1),
            "revocations.yaml:7: revoked[0].at: Input should have timezone info",
        ),
        (
            GOOD.replace('"CVE-2026-1: libfoo"', '"two\\nlines"'),
            "revocations.yaml:5: revoked[0].reason: 'two\\nlines' contains a control character",
        ),
        (
            GOOD.replace("    reason: built on the revoked base\n", ""),
            "revocations.yaml:8: revoked[1].reason: required key is missing",
        ),
        (
            GOOD.replace(f"digest: {B}", f"digest: {A}").replace(
                "runtime/llm:cpu", "base/debian12"
            ),
            f"revocations.yaml:9: revoked[1].digest: base/debian12@{A} is listed twice (first "
            "at revocations.yaml:3)",
        ),
        ("- one\n", "revocations.yaml:1: the file is not a mapping"),
        ("revoked: [\n", "revocations.yaml:2: invalid YAML"),
    ],
)
def test_a_bad_file_names_file_line_and_key(catalog: Catalog, text: str, expected: str) -> None:
    path = write(catalog, text)
    found = problems(catalog)
    assert all(p.startswith(f"{path}:") for p in found)
    assert any(expected in p for p in found), found


def test_validate_checks_the_file(catalog: Catalog) -> None:
    write(catalog, GOOD)
    assert companion_issues(catalog) == []
    write(catalog, GOOD.replace("image: base/debian12", "image: base/nope"))
    [issue] = companion_issues(catalog)
    assert (issue.key_path, issue.line) == ("revoked[0].image", 3)


def entry(image: str = "app/rag-api", digest: str = B, **extra: str) -> Entry:
    return Entry(image=image, digest=digest, reason="leaked key: 'x' # y", by="ada", at=AT, **extra)


def test_an_entry_is_appended_and_everything_written_stays(catalog: Catalog) -> None:
    path = write(catalog, GOOD)
    edited = appended(path, GOOD, [entry(digest="sha256:" + "c" * 64, built_on=A)])
    assert edited.startswith(GOOD)  # comments, quoting and order as written
    path.write_text(edited)
    new = load_revocations(catalog).listed[-1]
    assert (new.entry.reason, new.entry.built_on, new.line) == ("leaked key: 'x' # y", A, 14)


def test_a_new_file_gets_a_header_and_the_list(catalog: Catalog) -> None:
    path = catalog.root / REVOCATIONS_FILE
    path.write_text(appended(path, None, [entry()]))
    assert path.read_text().startswith("# Revoked digests")
    assert [i.entry for i in load_revocations(catalog).listed] == [entry()]
    comments = "# only a comment\n"
    assert appended(path, comments, [entry()]).startswith(comments + "revoked:\n  - image:")


@pytest.mark.parametrize("text", ["revoked: []\n", "revoked:\n  - image: x\n...\n", "- x\n"])
def test_a_file_lines_cannot_be_appended_to_is_refused(catalog: Catalog, text: str) -> None:
    with pytest.raises(UserError, match="revoked:' as the file's one key"):
        appended(catalog.root / REVOCATIONS_FILE, text, [entry()])


# --- the gate ----------------------------------------------------------------------------------

PROD = Environment(name="prod", registries=["prod"])
REF = "app/rag-api"


def passing() -> LocalEvidence:
    record = ImageRecord(content_hash="sha256:" + "c" * 64, inputs={}, version="1.0.0")
    record = record.with_test(Run(digest=B, passed=True, at="then"))
    return LocalEvidence(State(images={REF: record}), {})


def test_the_gate_refuses_a_listed_digest_the_registry_says_nothing_of(catalog: Catalog) -> None:
    candidate = gate.Candidate(REF, "1.0.0", B, PROD)
    gate.require(passing(), candidate, approver=None, listed=Revocations(Path("x")))
    write(catalog, GOOD.replace("runtime/llm:cpu", REF))
    listed = load_revocations(catalog)
    with pytest.raises(gate.Refused, match="is revoked: built on the revoked base") as caught:
        gate.require(passing(), candidate, approver=None, listed=listed)
    assert "(by sec, 2026-12-01T10:00:00+00:00; listed in revocations.yaml:8)" in str(
        caught.value.message
    )
    assert "deleting its entry from revocations.yaml" in str(caught.value.hint)
    # the registry holds no revocation (unsigned, dropped or lifted): the entry refuses, forced too
    with pytest.raises(gate.Refused, match=r"listed in revocations\.yaml:8"):
        gate.require(passing(), candidate, approver=None, listed=listed, tests_required=False)
