"""Evidence in the registry: the signatures and attestations of a digest, beside it.

``signing`` makes and checks the bytes (cosign's ``.sig``/``.att`` formats, DSSE, SLSA); this
layer joins them to the registry and to the project's settings:

* ``keys``: the project's key pair (``signing:``; the private key from a CI variable or a file)
  and ``keygen``'s new pairs;
* ``predicates``: the predicate types and imagefactory's own predicates (test run, release,
  lifecycle), built and parsed;
* ``store``: one repository's evidence of a digest, signed, attested, copied and read
  (read-modify-write appends that never drop a layer);
* ``verify``: one digest's evidence verified, and its chain of parents down to the base;
* ``check``: what ``imagefactory verify`` checks of an image in an environment;
* ``bundle``: the evidence of a digest in one file, verified offline;
* ``transfer``: the signed index of an air-gap archive (``imagefactory export``/``import``).

Above ``signing`` and ``registry``; below ``build``, ``imagetest`` and ``release``, which write
the evidence (a build its provenance and SBOM, a test run its result, a push or a promotion its
release record) and read it (the release gate).
"""
