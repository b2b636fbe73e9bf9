"""What a test run found: one result per check, one report per image."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CheckResult:
    """One check of one image. ``expected``/``actual`` say why it failed, in words a person reads."""

    kind: str  # packages, pip, files, users, commands, metadata, services, size, non_root, testinfra, cst
    name: str
    passed: bool
    seconds: float = 0.0
    expected: str = ""
    actual: str = ""
    skipped: bool = False

    @property
    def why(self) -> str:
        if self.passed:
            return ""
        return f"expected {self.expected}, got {self.actual}" if self.expected else self.actual


@dataclass(frozen=True)
class ImageReport:
    ref: str
    reference: str  # what was tested: repository@digest
    digest: str
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(r.passed or r.skipped for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed and not r.skipped]

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)
