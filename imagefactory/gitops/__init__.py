"""GitOps: per-environment Kustomize manifests pinned by digest, and safe write-back.

``spec.gitops`` reads ``gitops.yaml``. Here: ``manifests`` renders the repository layout and
``scaffold`` writes it into a checkout (``gitops init``); ``update`` edits one overlay's
``images:`` entry in place; ``repo`` commits and pushes with bounded fetch/rebase/retry;
``mr`` opens or updates the merge request; ``pin`` ties them together (the pin a push or a
promotion makes once recorded, and ``gitops update`` once ``release.deploy`` let it through the
release gate: no gate here, the release layer decides); ``drift`` compares the pins with state
(``gitops diff``). Every git command goes through ``imagefactory.git``.
"""
