"""The build's rules that need no engine: which digest a content tag keeps and how a build
that made another one is reported (``build/publish.py``), who an image on an external parent
runs as when its chain writes no ``user`` (``build/users.py``), and how playbooks are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagefactory.build.provision import playbook_roles
from imagefactory.build.publish import Published, staging_tag
from imagefactory.build.users import parent_user, runs_as_root, unwritten_user_parent, with_user
from imagefactory.errors import UserError
from imagefactory.render.dockerfile import ParentPin, render_dockerfile
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.parents import ExternalParent

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
EXTERNAL = f"registry.example.com/base/tiny@{A}"


def test_a_build_that_made_the_tags_digest_is_reproducible() -> None:
    published = Published(A, A)
    assert published.reproducible
    assert published.detail == "built and pushed"


def test_another_digest_is_reported_with_both_and_the_registrys_kept() -> None:
    published = Published(digest=A, built=B)
    assert not published.reproducible
    assert published.detail == (
        f"not reproducible: registry has {A}, this build made {B}; kept the registry's"
    )


def test_a_build_is_staged_under_a_staging_tag_of_its_own() -> None:
    assert (
        staging_tag("content-0123456789abcdef01234567", "5e1f0a2b3c4d")
        == "staging-0123456789abcdef01234567-5e1f0a2b3c4d"
    )


@pytest.mark.parametrize(
    ("user", "root"),
    [
        ("", True),
        ("root", True),
        ("0", True),
        ("0:0", True),
        ("00", True),
        ("000", True),
        ("00:0", True),
        ("000:staff", True),
        (" 0 ", True),
        ("root:staff", True),
        ("app", False),
        ("10001", False),
        ("10001:0", False),
        ("100", False),
        ("010", False),
        ("nonroot:nonroot", False),
    ],
)
def test_root_in_an_image_config(user: str, root: bool) -> None:
    assert runs_as_root(user) is root


def catalog_on_external(root: Path, *, user: str | None = None) -> Catalog:
    """``app`` FROM an external image (with ``user`` when given), ``app/child`` FROM ``app``."""
    root.mkdir(exist_ok=True)
    (root / "imagefactory.yaml").write_text("project: rules\n")
    for name, parent in (("app", EXTERNAL), ("app/child", "app")):
        folder = root / "images" / name
        folder.mkdir(parents=True)
        text = f"name: {name}\nversion: 1.0.0\nfrom: '{parent}'\n"
        if user is not None and name == "app":
            text += f"user: {user}\n"
        (folder / "image.yaml").write_text(text)
    return load_catalog(root)


def test_only_a_chain_on_an_external_image_without_a_user_reads_it(tmp_path: Path) -> None:
    unwritten = catalog_on_external(tmp_path / "unwritten")
    parent = unwritten_user_parent(unwritten, unwritten.images["app"])
    assert parent == ExternalParent("registry.example.com/base/tiny", A)
    assert unwritten_user_parent(unwritten, unwritten.images["app/child"]) == parent
    written = catalog_on_external(tmp_path / "written", user="root")
    assert unwritten_user_parent(written, written.images["app"]) is None
    assert unwritten_user_parent(written, written.images["app/child"]) is None


def test_a_non_root_parent_user_is_the_images(tmp_path: Path) -> None:
    catalog = catalog_on_external(tmp_path)
    image = catalog.images["app"]
    assert image.parent == ExternalParent("registry.example.com/base/tiny", A)
    assert parent_user(catalog, image, image.parent, "10001:10001") == "10001:10001"
    assert parent_user(catalog, image, image.parent, "nonroot") == "nonroot"


@pytest.mark.parametrize(
    ("configured", "says"),
    [
        ("", "names no user, so it would run as root"),
        ("0:0", 'runs as "0:0", so it would run as root'),
        ("root", 'runs as "root", so it would run as root'),
        (None, "could not be read from its image config"),
        ("app\nUSER 0", 'runs as "app\\nUSER 0", which is not USER or USER:GROUP'),
    ],
)
def test_root_or_an_unknown_user_is_refused_with_user_root_as_the_way_out(
    tmp_path: Path, configured: str | None, says: str
) -> None:
    catalog = catalog_on_external(tmp_path)
    child = catalog.images["app/child"]
    parent = unwritten_user_parent(catalog, child)
    assert parent is not None
    with pytest.raises(UserError) as caught:
        parent_user(catalog, child, parent, configured)
    message = str(caught.value.message)
    assert message.startswith(
        "app/child writes no 'user', nor does any catalog image it is built on, and "
    )
    assert says in message
    assert "\n" not in message
    assert "write 'user: root' in images/app/child/image.yaml" in (caught.value.hint or "")


# --------------------------------------------------------------------------- playbooks


def test_a_playbook_is_read_with_the_bounded_reader(tmp_path: Path) -> None:
    """An alias bomb is refused before it expands (PyYAML's safe_load would build it)."""
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)
    ]
    bomb = tmp_path / "bomb.yml"
    bomb.write_text(f"- hosts: all\n  vars:\n{''.join(f'    {line}' + chr(10) for line in lines)}")
    with pytest.raises(UserError, match="expands to more than"):
        playbook_roles(bomb)
    plain = tmp_path / "plain.yml"
    plain.write_text("- hosts: all\n  roles: [web, {role: db}]\n")
    assert playbook_roles(plain) == ["web", "db"]


def test_the_parents_user_is_what_the_render_ends_with(tmp_path: Path) -> None:
    catalog = catalog_on_external(tmp_path)
    loaded = catalog.images["app"]
    pin = ParentPin(EXTERNAL, "registry.example.com/base/tiny", A)

    as_built, image = with_user(catalog, loaded, "10001:10001")

    assert render_dockerfile(as_built, image, A, pin).rstrip().endswith("\nUSER 10001:10001")
    assert catalog.images["app"] is loaded  # the loaded catalog is left as it is
    assert with_user(catalog, loaded, None) == (catalog, loaded)
