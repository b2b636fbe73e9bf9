"""What the release gate reads to decide: the evidence about a digest, behind one interface.

Today the evidence is the state file (test runs per digest, yanks) and the audit log (who pushed
a digest). The supply-chain work replaces it with signed attestations read from the registry:
only ``evidence_for`` changes, the gate and its callers do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import State, TestRecord, YankRecord, load_state
from imagefactory.release import audit
from imagefactory.spec.catalog import Catalog


class Evidence(Protocol):
    """What is known about the digests of a catalog's images, from wherever it is kept."""

    def test_of(self, ref: str, digest: str) -> TestRecord | None:
        """The latest test run of ``digest`` of image ``ref``; None: never tested."""

    def yank_of(self, ref: str, version: str) -> YankRecord | None:
        """Why version ``version`` of ``ref`` was marked bad; None: it was not."""

    def pusher_of(self, ref: str, digest: str) -> tuple[str, ...]:
        """Who pushed ``digest`` of ``ref`` into the first environment (last): every name the
        push record gives them (its identity, as approvals name people (``gate.identity``), and
        the account or CI login); empty: nobody did, as far as this evidence knows."""


@dataclass(frozen=True)
class LocalEvidence:
    """Evidence from this checkout's state file and audit log."""

    state: State
    pushes: dict[tuple[str, str], tuple[str, ...]]  # (ref, digest) → the last pusher's names

    def test_of(self, ref: str, digest: str) -> TestRecord | None:
        record = self.state.images.get(ref)
        return record.test_of(digest) if record else None

    def yank_of(self, ref: str, version: str) -> YankRecord | None:
        record = self.state.images.get(ref)
        return record.yanked.get(version) if record else None

    def pusher_of(self, ref: str, digest: str) -> tuple[str, ...]:
        return self.pushes.get((ref, digest), ())


def evidence_for(catalog: Catalog, state: State | None = None) -> Evidence:
    """The evidence for ``catalog``'s images, as of now; ``state``: the state file as the
    caller has just read it (under its lock), not read again."""
    pushes = {
        (str(line["image"]), str(line["digest"])): tuple(
            dict.fromkeys(str(n) for n in (line.get("identity"), line.get("who")) if n)
        )
        for line in audit.completed(audit_log(catalog))
        if line.get("action") == "push"
    }
    return LocalEvidence(state if state is not None else load_state(state_file(catalog)), pushes)
