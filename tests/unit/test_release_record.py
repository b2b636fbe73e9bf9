"""What a push and a promotion leave in state and the audit log (``record.record_release`` with
its ``Step``): only a push gives its version to the content; the audit records (an intent, then
done) name the step; a record state gained meanwhile is the one updated."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import ImageRecord, load_state, save_state, with_record
from imagefactory.release import audit
from imagefactory.release.record import Release, Step, record_release
from imagefactory.release.tags import TagChange
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog

REF = "app/rag-api"
CONTENT = "sha256:" + "c" * 64
DIGEST = "sha256:" + "d" * 64


@pytest.fixture
def catalog(catalog_dir: Path) -> Catalog:
    return load_catalog(catalog_dir)


def built() -> ImageRecord:
    return ImageRecord(content_hash=CONTENT, inputs={}, version="0.3.0", digest=DIGEST)


def nothing() -> None:
    """The tags are written elsewhere (tests/unit/test_write_tags.py)."""


def release(version: str = "0.3.1") -> Release:
    changes = (
        TagChange("dev", "r/app/rag-api", version, "create", None, True),
        TagChange("dev", "r/app/rag-api", "latest", "move", "sha256:" + "0" * 64),
    )
    return Release(REF, version, DIGEST, "as written in image.yaml", changes)


def test_a_push_gives_its_version_to_the_content(catalog: Catalog) -> None:
    recorded = record_release(
        catalog, Step.push("dev", identity=None), release(), built(), nothing, revision=None
    )

    record = load_state(state_file(catalog)).images[REF]
    assert record.versions == {"0.3.1": CONTENT}
    held = record.environments["dev"]
    assert (held.version, held.digest, held.tags, held.registries) == (
        "0.3.1",
        DIGEST,
        ["0.3.1", "latest"],
        ["dev"],
    )
    intent, entry = audit.read(audit_log(catalog))
    assert (intent["phase"], entry["phase"]) == ("intent", "done")
    assert entry["id"] == intent["id"] == held.audit_id == recorded.audit_id
    assert (entry["registries"], entry["content_hash"]) == (["dev"], CONTENT)
    assert (entry["action"], entry["source"], entry["target"]) == ("push", "build", "dev")
    assert (entry["forced"], entry["approver"]) == (False, None)
    assert recorded == replace(release(), audit_id=entry["id"])


def test_a_promotion_gives_no_version_and_names_its_source_and_approver(
    catalog: Catalog,
) -> None:
    forced = Step.push("dev", identity="Bob <bob@x>", overrides=(audit.IMMUTABLE_TAG,))
    record_release(catalog, forced, release(), built(), nothing, revision=None)
    step = Step.promotion("dev", "preprod", identity="Ada <ada@x>", approver="ada")
    record_release(catalog, step, release(), built(), nothing, revision=None)

    record = load_state(state_file(catalog)).images[REF]
    assert record.versions == {"0.3.1": CONTENT}  # the push's, nothing added
    assert set(record.environments) == {"dev", "preprod"}
    pushed, promoted = audit.completed(audit_log(catalog))
    assert (pushed["action"], pushed["forced"]) == ("push", True)
    assert (pushed["overrides"], pushed["identity"]) == (["immutable-tag"], "Bob <bob@x>")
    assert (promoted["action"], promoted["source"], promoted["target"]) == (
        "promote",
        "dev",
        "preprod",
    )
    assert (promoted["approver"], promoted["forced"], promoted["overrides"]) == ("ada", False, [])
    assert promoted["identity"] == "Ada <ada@x>"
    assert promoted["content_hash"] is None  # a promotion gives no version to content


def test_the_record_in_state_wins_over_the_one_the_release_started_from(
    catalog: Catalog,
) -> None:
    path = state_file(catalog)
    meanwhile = built().model_copy(update={"versions": {"0.3.0": "sha256:" + "e" * 64}})
    save_state(path, with_record(load_state(path), REF, meanwhile))

    record_release(
        catalog, Step.push("dev", identity=None), release(), built(), nothing, revision=None
    )

    versions = load_state(path).images[REF].versions
    assert versions == {"0.3.0": "sha256:" + "e" * 64, "0.3.1": CONTENT}
