"""The project's signing keys, as ``signing:`` in imagefactory.yaml names them.

The public key is a file of the catalog repository (confined to it). The private key comes from
the variable ``private_key_env``: the PEM text itself, or the path of a file holding it (what a
GitLab CI variable of type File gives); its password, for an encrypted key, from
``password_env``. Both variables are secrets: no child process inherits them, and their values
never appear in a message (an unreadable key is named by its variable, never by its text).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory import tools
from imagefactory.atomic import read_inside, read_regular
from imagefactory.errors import UserError
from imagefactory.signing import keys
from imagefactory.signing.keys import SigningKey, VerifyingKey
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.models import SigningSettings

_PEM_MARKER = "-----BEGIN"


def signing_enabled(catalog: Catalog) -> bool:
    """Whether the project signs (``signing:`` is set)."""
    return catalog.project.signing is not None


def verifying_key(catalog: Catalog) -> VerifyingKey:
    """The public key ``signing.public_key`` names (a file inside the catalog repository)."""
    settings = _settings(catalog)
    pem = read_inside(catalog.root, settings.public_key, limit=keys.KEY_LIMIT)
    if pem is None:
        raise UserError(
            f"{catalog.project_file}: signing.public_key: {settings.public_key} does not exist",
            hint="commit the PEM public key (cosign.pub) there; imagefactory keygen makes a pair",
        )
    return keys.verifying_key(pem, source=settings.public_key)


def signing_key(catalog: Catalog) -> SigningKey | None:
    """The private key of ``signing.private_key_env``, checked against ``signing.public_key``.

    None when the project does not sign, or when the variable is unset and ``signing.required``
    is false; a UserError when it is required and unset, when it cannot be read, and when it is
    not the public key's pair."""
    settings = catalog.project.signing
    if settings is None:
        return None
    tools.secret_names(settings.private_key_env, settings.password_env)
    value = os.environ.get(settings.private_key_env, "")
    if not value.strip():
        if not settings.required:
            return None
        raise UserError(
            f"signing is required (signing.required in {catalog.project_file}) but "
            f"${settings.private_key_env} is not set",
            hint=f"set {settings.private_key_env} to the PEM private key or to the path of a file "
            "holding it (in GitLab: a masked, protected variable, or one of type File); "
            "or set signing.required: false to go on unsigned",
        )
    tools.redact(value)
    password = os.environ.get(settings.password_env) or None
    if password is not None:
        tools.redact(password)
    key = _load(settings, value, None if password is None else password.encode("utf-8"))
    public = verifying_key(catalog)
    if not _same(key, public):
        raise UserError(
            f"the signing key in ${settings.private_key_env} is not the pair of "
            f"signing.public_key ({settings.public_key})",
            hint="sign with the private key of the committed public key, or commit the public "
            "key of this private key (what is signed must verify with the committed one)",
        )
    return key


def generate_pair(public: Path, private: Path, *, password: bytes | None) -> str:
    """A new P-256 pair: the PKCS#8 PEM private key in ``private`` (mode 0600, encrypted with
    ``password`` when given), the PEM public key in ``public``; neither file may exist (a key is
    never overwritten). The public key's fingerprint (sha256 of its DER), to compare."""
    for path in (public, private):
        if os.path.lexists(path):
            raise UserError(
                f"{path} exists: keygen never overwrites a key",
                hint="choose other paths, or remove the old pair yourself if it is meant",
            )
    key = ec.generate_private_key(ec.SECP256R1())
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public_key = key.public_key()
    public_pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _create(private, pem, 0o600)
    public.parent.mkdir(parents=True, exist_ok=True)
    _create(public, public_pem, 0o644)
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _create(path: Path, data: bytes, mode: int) -> None:
    """``data`` in the new file ``path`` (created exclusively, never through a symlink)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        handle = os.open(path, flags, mode)
    except OSError as exc:
        raise UserError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
        os.fchmod(stream.fileno(), mode)


def _load(settings: SigningSettings, value: str, password: bytes | None) -> SigningKey:
    """The key in ``value``: PEM text, else the path of a file holding it."""
    variable = f"${settings.private_key_env}"
    if _PEM_MARKER in value:
        pem, source = value.encode("utf-8"), variable
    else:
        pem, source = _read_file(Path(value.strip()), variable), f"the file {variable} names"
    try:
        return keys.signing_key(pem, source=source, password=password)
    except UserError as exc:  # its message names the source, never the key's text
        hint = exc.hint
        if password is None and "encrypted" in exc.message.lower():
            hint = f"the key is encrypted: set {settings.password_env} to its password"
        raise UserError(exc.message, hint=hint) from None


def _read_file(path: Path, variable: str) -> bytes:
    """The key file ``variable`` names; the message of a failure names the variable only (a
    value that is not a path may be a mangled key)."""
    try:
        return read_regular(path, what="signing key", limit=keys.KEY_LIMIT)
    except UserError:
        raise UserError(
            f"{variable} holds neither a PEM private key nor the path of a readable key file",
            hint=f"set {variable} to the PEM text (-----BEGIN PRIVATE KEY----- …) or to the path "
            "of a regular file of at most 1 MiB holding it",
        ) from None


def _same(key: SigningKey, public: VerifyingKey) -> bool:
    return key.key.public_key().public_numbers() == public.key.public_numbers()


def _settings(catalog: Catalog) -> SigningSettings:
    settings = catalog.project.signing
    if settings is None:
        raise UserError(
            f"{catalog.project_file} has no signing: section, so there is no key to verify with",
            hint="add signing: {public_key: cosign.pub} (docs/supply-chain.md)",
        )
    return settings


def builders(catalog: Catalog) -> list[str]:
    """The builder ids ``signing.builders`` trusts (empty: any)."""
    return catalog.project.signing.builders if catalog.project.signing is not None else []
