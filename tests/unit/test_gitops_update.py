"""The targeted edit of an overlay's images: entry: only the pin changes, comments stay."""

from __future__ import annotations

import pytest

from imagefactory.errors import UserError
from imagefactory.gitops.update import read_pins, set_pin

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64

OVERLAY = f"""# prod overlay — reviewed by the platform team
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop   # the team's namespace
resources:
  - ../../base
images:
  # the sidecar is pinned by hand
  - name: "app/sidecar"
    newName: registry.example/sidecar
    digest: {OLD}
  - name: "app/rag-api"
    newName: "127.0.0.1:5000/prod/app/rag-api"   # prod registry
    digest: {OLD}  # pinned by imagefactory
"""


def test_only_the_digest_of_that_entry_changes() -> None:
    edited = set_pin(OVERLAY, "app/rag-api", NEW)
    before, after = OVERLAY.splitlines(), edited.splitlines()
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert changed == [
        (
            f"    digest: {OLD}  # pinned by imagefactory",
            f"    digest: {NEW}  # pinned by imagefactory",
        )
    ]
    assert read_pins(edited) == {"app/sidecar": OLD, "app/rag-api": NEW}


def test_the_same_digest_changes_nothing() -> None:
    assert set_pin(OVERLAY, "app/sidecar", OLD) == OVERLAY


def test_a_tag_placeholder_becomes_a_digest() -> None:
    text = 'images:\n  - name: app/x\n    newName: r/x\n    newTag: "1.0.0"  # first pin replaces this\n'
    edited = set_pin(text, "app/x", NEW)
    assert (
        edited
        == f"images:\n  - name: app/x\n    newName: r/x\n    digest: {NEW}  # first pin replaces this\n"
    )
    assert read_pins(text) == {"app/x": None}


def test_crlf_line_endings_are_kept() -> None:
    text = OVERLAY.replace("\n", "\r\n")
    assert set_pin(text, "app/rag-api", NEW) == set_pin(OVERLAY, "app/rag-api", NEW).replace(
        "\n", "\r\n"
    )


@pytest.mark.parametrize(
    "digest",
    ["sha256:abc", "sha512:" + "a" * 64, "sha256:" + "A" * 64, "a" * 64, "sha256:" + "a" * 65],
)
def test_malformed_digests_are_refused(digest: str) -> None:
    with pytest.raises(UserError, match="is not an image digest"):
        set_pin(OVERLAY, "app/rag-api", digest)


def test_an_image_without_entry_or_images_list_is_refused() -> None:
    with pytest.raises(UserError, match="no images entry for 'app/other'"):
        set_pin(OVERLAY, "app/other", NEW)
    with pytest.raises(UserError, match="has no images: list"):
        set_pin("resources: [a]\n", "app/rag-api", NEW)
    with pytest.raises(UserError, match="not valid YAML"):
        set_pin("images: [\n", "app/rag-api", NEW)
    with pytest.raises(UserError, match="neither digest nor newTag"):
        set_pin("images:\n  - name: app/x\n    newName: y\n", "app/x", NEW)


GENERATED = """labels:
  - includeTemplates: true
    pairs:
      app.kubernetes.io/instance: "rag-api-dev"
      app.kubernetes.io/version: "0.3.0"
images:
  - name: "app/rag-api"
    newName: "127.0.0.1:5000/dev/app/rag-api"
    newTag: "0.3.0"  # not promoted here yet: the first pin replaces this tag
"""


def test_the_first_pin_sets_the_version_label_and_drops_the_unpinned_comment() -> None:
    edited = set_pin(GENERATED, "app/rag-api", NEW, version="0.4.1")
    assert edited == GENERATED.replace(
        '"0.3.0"  # not promoted here yet: the first pin replaces this tag', NEW
    ).replace('version: "0.3.0"', 'version: "0.4.1"').replace("newTag: ", "digest: ")
    assert set_pin(edited, "app/rag-api", NEW, version="0.4.1") == edited


def test_a_version_never_adds_a_key_or_a_document() -> None:
    edited = set_pin(GENERATED, "app/rag-api", NEW, version='1"\nkind: Secret')
    assert "kind: Secret" not in edited.replace("\\nkind: Secret", "")
    assert read_pins(edited) == {"app/rag-api": NEW}


def test_an_overlay_without_the_version_label_takes_the_pin_alone() -> None:
    assert set_pin(OVERLAY, "app/rag-api", NEW, version="9.9.9") == set_pin(
        OVERLAY, "app/rag-api", NEW
    )
