"""Signatures and attestations in the formats cosign reads, made and checked with ``cryptography``.

Pure: bytes in, bytes out. Nothing here talks to a registry; the release layer (push signs and
attests a digest, promote copies and verifies the evidence, ``imagefactory verify`` and the
release gate read it) moves the bytes through ``registry``. The modules:

* ``keys``: ECDSA P-256 keys from PEM (the private one PKCS#8 or traditional EC PEM, optionally
  password-encrypted; cosign's own ``ENCRYPTED SIGSTORE PRIVATE KEY`` format is out of scope and
  refused with a hint: keep the key as PKCS#8 PEM, docs/provenance.md says how);
* ``oci``: the ``sha256-<hex>.sig`` / ``.att`` tags and the OCI manifest and config cosign
  writes under them, byte for byte;
* ``simplesigning``: cosign's "simple signing" payload, its signature layer and its verifier;
* ``dsse``: DSSE envelopes (PAE), in-toto Statement v1, attestation layers and their verifier;
* ``provenance``: the SLSA provenance v1 predicate of an imagefactory build (docs/provenance.md).

The layer: above ``registry`` (it needs nothing of it; the release layer joins the two) and below
``build``, ``imagetest`` and ``release``, so that a build can attest its provenance and a test
run its result.
"""
