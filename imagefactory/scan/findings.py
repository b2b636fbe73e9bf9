"""What a vulnerability scan found, in one form whatever wrote it.

Every input the gate reads (trivy JSON, grype JSON, CycloneDX VEX: ``reports``, ``vex``; the
offline OSV matcher: ``osv``) becomes a :class:`ScanReport`: who scanned (:class:`Scanner`, with
the time its vulnerability data was built), the digests the report says it scanned, and one
:class:`Finding` per advisory and package. Severities are the project file's words
(``critical`` … ``low``, ``unknown``); fix states say whether a fixed version exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from imagefactory.spec.models import Severity

#: ``fixed``: a fixed version exists; ``not_fixed``: none yet; ``wont_fix``: the distribution
#: will not fix it; ``unknown``: the report does not say.
FixState = Literal["fixed", "not_fixed", "wont_fix", "unknown"]
#: Most severe first.
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "unknown")


def rank(severity: Severity) -> int:
    """0 for critical … 4 for unknown: lower is more severe."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Finding:
    """One advisory against one installed package."""

    id: str  # CVE-…, GHSA-…, DSA-…
    package: str
    installed: str
    severity: Severity
    purl: str = ""
    fixed: str = ""  # the version that fixes it; "" when none is known
    fix_state: FixState = "unknown"
    aliases: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "aliases": list(self.aliases),
            "package": self.package,
            "installed": self.installed,
            "purl": self.purl,
            "severity": self.severity,
            "fixed": self.fixed,
            "fix_state": self.fix_state,
        }


@dataclass(frozen=True)
class Scanner:
    """What made a report: its name and version, and when its vulnerability data was built
    (None: the report does not say)."""

    name: str
    version: str
    db_built: datetime | None

    def as_dict(self) -> dict[str, object]:
        built = self.db_built.strftime("%Y-%m-%dT%H:%M:%SZ") if self.db_built else None
        return {"name": self.name, "version": self.version, "db_built": built}


@dataclass(frozen=True)
class ScanReport:
    """A scan of one image: who scanned, what it found, the digests it says it scanned (empty:
    it names none, and the gate refuses it) and the file it came from."""

    scanner: Scanner
    findings: tuple[Finding, ...]
    subjects: tuple[str, ...]
    source: str
