"""The SBOM of an image: CycloneDX 1.6 JSON from its own root filesystem, without running it.

``rootfs`` reads the few files an SBOM needs from an unpacked folder or straight from the
image's layer tarballs (whiteouts applied); ``catalog`` finds the Debian and Python packages and
names them with syft's purls; ``document`` writes (and validates) the CycloneDX document;
``diff`` compares two. This is the pure part of issue 16's deliverable 1: the next session wires
``document.sbom_json`` into ``imagefactory sbom IMAGE`` (cli), into the build (after the image
is built, from ``docker save``'s layers) and into push (the SBOM attested beside the digest),
and ``diff.diff`` into ``imagefactory sbom diff A B``.

The layer (tests/unit/test_layers.py): right above ``registry``, below ``signing`` and ``build``.
``build`` (the SBOM made at build time) and ``release`` (push attests it) call it, so it must lie
below both; it imports nothing of ``registry`` or ``build`` (the caller fetches the layers and
resolves the digests), only ``errors`` and the package version; ``signing`` may wrap its document
in an attestation, never the reverse, so it lies below ``signing`` too.
"""
