"""ECDSA P-256 keys from PEM, the one algorithm cosign's key-based signatures use.

A signature is ECDSA over SHA-256 of the exact bytes, ASN.1 DER encoded (sigstore's
``ecdsa.SignASN1``), which is what ``cryptography``'s ``sign`` returns. The private key comes
from a PEM the caller read (a CI variable or a file): PKCS#8 or traditional EC PEM, encrypted
with a password or not. cosign's own ``ENCRYPTED SIGSTORE PRIVATE KEY`` (scrypt + secretbox) is
out of scope and refused with a hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.atomic import read_regular
from imagefactory.errors import UserError

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_COSIGN_FORMATS = (b"ENCRYPTED SIGSTORE PRIVATE KEY", b"ENCRYPTED COSIGN PRIVATE KEY")
#: The most bytes a key file may have (a PEM key is well under 1 KiB).
KEY_LIMIT = 1024 * 1024


class VerificationError(UserError):
    """A signature, a payload or an envelope does not hold what it must (exit 1)."""


@dataclass(frozen=True)
class VerifyingKey:
    """A P-256 public key and where it came from (for messages)."""

    key: ec.EllipticCurvePublicKey
    source: str

    def verifies(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` (DER) is this key's ECDSA-SHA256 signature of ``data``."""
        try:
            self.key.verify(signature, data, _ECDSA_SHA256)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """A P-256 private key and where it came from."""

    key: ec.EllipticCurvePrivateKey
    source: str

    def sign(self, data: bytes) -> bytes:
        """The DER ECDSA-SHA256 signature of ``data`` (cosign's, randomised: never the same)."""
        return self.key.sign(data, _ECDSA_SHA256)

    def verifying_key(self) -> VerifyingKey:
        return VerifyingKey(self.key.public_key(), self.source)


def signing_key(pem: bytes, *, source: str, password: bytes | None = None) -> SigningKey:
    """The P-256 private key in ``pem``; ``source`` names it in errors (a variable, a path)."""
    if any(marker in pem for marker in _COSIGN_FORMATS):
        raise UserError(
            f"{source}: cosign's encrypted key format is not supported",
            hint="keep the signing key as a PKCS#8 PEM (openssl pkcs8 -topk8), optionally with a password",
        )
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except TypeError as exc:  # a password for a plain key, or none for an encrypted one
        raise UserError(
            f"{source}: {exc}", hint="give the key's password exactly when the key is encrypted"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UserError(
            f"{source}: not a readable PEM private key (or a wrong password)",
            hint="the key must be an ECDSA P-256 private key in PEM",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UserError(f"{source}: not an ECDSA P-256 private key (cosign's key type)")
    return SigningKey(key, source)


def verifying_key(pem: bytes, *, source: str) -> VerifyingKey:
    """The P-256 public key in ``pem`` (a ``PUBLIC KEY`` block, as ``cosign.pub``)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UserError(
            f"{source}: not a readable PEM public key",
            hint="the key must be a PEM 'PUBLIC KEY' block, as cosign generate-key-pair writes it",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UserError(f"{source}: not an ECDSA P-256 public key (cosign's key type)")
    return VerifyingKey(key, source)


def read_signing_key(path: Path, *, password: bytes | None = None) -> SigningKey:
    """The private key in file ``path`` (a UserError when it is missing or not a key)."""
    pem = read_regular(path, what="signing key", limit=KEY_LIMIT)
    return signing_key(pem, source=str(path), password=password)


def read_verifying_key(path: Path) -> VerifyingKey:
    """The public key in file ``path`` (a UserError when it is missing or not a key)."""
    return verifying_key(read_regular(path, what="public key", limit=KEY_LIMIT), source=str(path))
