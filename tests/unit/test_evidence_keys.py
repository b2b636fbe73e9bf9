"""The project's signing keys: the private key from its variable (the PEM text, or the path of
a file holding it), checked against the committed public key; keygen's pairs. A key's text never
reaches a message, and its variables never reach a child process."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory import tools
from imagefactory.errors import UserError
from imagefactory.evidence import keys
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.models import ProjectSpec, SigningSettings

VARIABLE = "IMAGEFACTORY_SIGNING_KEY"
PASSWORD = "IMAGEFACTORY_SIGNING_KEY_PASSWORD"


def pem_of(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def catalog_with(
    root: Path, public: ec.EllipticCurvePublicKey | None, **settings: object
) -> Catalog:
    """A catalog at ``root`` whose signing.public_key (keys/cosign.pub) holds ``public``."""
    if public is not None:
        (root / "keys").mkdir(exist_ok=True)
        (root / "keys" / "cosign.pub").write_bytes(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    signing = SigningSettings.model_validate({"public_key": "keys/cosign.pub", **settings})
    project = ProjectSpec(project="p", signing=signing)
    return Catalog(root, root / "imagefactory.yaml", project, {})


@pytest.fixture
def pair() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    monkeypatch.delenv(PASSWORD, raising=False)


def test_without_signing_nothing_is_signed(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path, tmp_path / "imagefactory.yaml", ProjectSpec(project="p"), {})
    assert not keys.signing_enabled(catalog)
    assert keys.signing_key(catalog) is None
    with pytest.raises(UserError, match="no signing: section"):
        keys.verifying_key(catalog)


def test_the_pem_text_in_the_variable(
    tmp_path: Path, pair: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_with(tmp_path, pair.public_key())
    monkeypatch.setenv(VARIABLE, pem_of(pair).decode())
    key = keys.signing_key(catalog)
    assert keys.signing_enabled(catalog) and key is not None
    assert key.source == f"${VARIABLE}"
    assert keys.verifying_key(catalog).verifies(key.sign(b"data"), b"data")
    assert VARIABLE not in tools._environment() and PASSWORD not in tools._environment()


def test_a_file_the_variable_names(
    tmp_path: Path, pair: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a GitLab variable of type File gives: the path of a file holding the key."""
    catalog = catalog_with(tmp_path, pair.public_key())
    key_file = tmp_path / "secret" / "signing.key"
    key_file.parent.mkdir()
    key_file.write_bytes(pem_of(pair))
    monkeypatch.setenv(VARIABLE, str(key_file) + "\n")
    key = keys.signing_key(catalog)
    assert key is not None and key.source == f"the file ${VARIABLE} names"
    assert key.key.private_numbers() == pair.private_numbers()


def test_an_encrypted_key_and_its_password(
    tmp_path: Path, pair: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_with(tmp_path, pair.public_key())
    monkeypatch.setenv(VARIABLE, pem_of(pair, b"pass-word").decode())
    with pytest.raises(UserError) as refused:
        keys.signing_key(catalog)
    assert PASSWORD in str(refused.value.hint)
    monkeypatch.setenv(PASSWORD, "pass-word")
    assert keys.signing_key(catalog) is not None
    monkeypatch.setenv(PASSWORD, "wrong-word")
    with pytest.raises(UserError, match="wrong password"):
        keys.signing_key(catalog)


def test_a_key_that_is_not_the_public_keys_pair(
    tmp_path: Path, pair: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_with(tmp_path, ec.generate_private_key(ec.SECP256R1()).public_key())
    monkeypatch.setenv(VARIABLE, pem_of(pair).decode())
    with pytest.raises(UserError, match=r"is not the pair of signing\.public_key"):
        keys.signing_key(catalog)


def test_missing_where_required_and_where_not(
    tmp_path: Path, pair: ec.EllipticCurvePrivateKey
) -> None:
    with pytest.raises(UserError, match=f"\\${VARIABLE} is not set") as refused:
        keys.signing_key(catalog_with(tmp_path, pair.public_key()))
    assert "signing.required: false" in str(refused.value.hint)
    assert keys.signing_key(catalog_with(tmp_path, pair.public_key(), required=False)) is None


def test_the_keys_text_is_never_in_a_message(
    tmp_path: Path, pair: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key pasted without its PEM armour is taken for a path; the error names the variable."""
    catalog = catalog_with(tmp_path, pair.public_key())
    body = "".join(pem_of(pair).decode().splitlines()[1:-1])
    monkeypatch.setenv(VARIABLE, body)
    with pytest.raises(UserError) as refused:
        keys.signing_key(catalog)
    assert VARIABLE in refused.value.message
    assert body[:40] not in str(refused.value) and refused.value.__cause__ is None
    assert refused.value.__suppress_context__
    mangled = pem_of(pair).decode().replace("A", "B", 5)
    monkeypatch.setenv(VARIABLE, mangled)
    with pytest.raises(UserError) as unreadable:
        keys.signing_key(catalog)
    assert mangled.splitlines()[1][:20] not in str(unreadable.value)


def test_the_public_key_stays_in_the_catalog(
    tmp_path: Path, pair: ec.EllipticCurvePrivateKey
) -> None:
    outside = tmp_path / "outside.pub"
    root = tmp_path / "catalog"
    root.mkdir()
    outside.write_bytes(
        pair.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (root / "keys").mkdir()
    (root / "keys" / "cosign.pub").symlink_to(outside)
    with pytest.raises(UserError, match="symlink"):
        keys.verifying_key(catalog_with(root, None))
    (root / "keys" / "cosign.pub").unlink()
    with pytest.raises(UserError, match="does not exist"):
        keys.verifying_key(catalog_with(root, None))


def test_generate_pair(tmp_path: Path) -> None:
    public, private = tmp_path / "keys" / "cosign.pub", tmp_path / "secret" / "signing.key"
    fingerprint = keys.generate_pair(public, private, password=None)
    assert fingerprint.startswith("sha256:") and len(fingerprint) == 71
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey) and loaded.curve.name == "secp256r1"
    assert (
        loaded.public_key().public_numbers()
        == serialization.load_pem_public_key(public.read_bytes()).public_numbers()
    )  # type: ignore[union-attr]
    before = private.read_bytes()
    with pytest.raises(UserError, match="never overwrites"):
        keys.generate_pair(tmp_path / "other.pub", private, password=None)
    assert private.read_bytes() == before and not (tmp_path / "other.pub").exists()


def test_generate_an_encrypted_pair(tmp_path: Path) -> None:
    private = tmp_path / "signing.key"
    keys.generate_pair(tmp_path / "cosign.pub", private, password=b"secret-pass")
    assert private.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert serialization.load_pem_private_key(private.read_bytes(), password=b"secret-pass")
