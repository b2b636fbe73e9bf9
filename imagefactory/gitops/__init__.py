"""GitOps: per-environment Kustomize manifests pinned by digest, and safe write-back.

``settings`` reads ``gitops.yaml``; ``manifests`` renders the repository layout; ``update``
edits one overlay's ``images:`` entry in place; ``repo`` commits and pushes with bounded
fetch/rebase/retry; ``mr`` opens or updates the merge request; ``pin`` ties them together
(the function ``promote`` calls).
"""
