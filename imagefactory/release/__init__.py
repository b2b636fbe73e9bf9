"""Releases: built images pushed into the first environment and promoted along the chain, by
digest, each recorded in state and the audit log.

``push`` and ``promote`` do the two steps (``promote`` also pins the GitOps repository);
``versioning`` decides versions and tags, ``tags`` writes and verifies them, ``record`` writes
the audit intent, state and the done record (``audit``), ``resume`` completes a step that was
interrupted in between, ``environments`` looks up the chain, ``status`` reports.
"""
