"""CVSS v3.x base scores from vectors, for advisories that carry a vector and no severity word.

The formula and constants of the CVSS v3.1 specification (FIRST, "CVSS v3.1 Specification
Document", section 7.1 and appendix A's Roundup); v3.0 vectors score the same way for every
vector but a few at rounding edges. The qualitative rating is section 5's: 0.1-3.9 low, 4.0-6.9
medium, 7.0-8.9 high, 9.0-10.0 critical (0.0, "none", is reported as low).
"""

from __future__ import annotations

import math

from imagefactory.spec.models import Severity

_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_PRIVILEGES = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def base_score(vector: str) -> float | None:
    """The base score of a ``CVSS:3.0/…`` or ``CVSS:3.1/…`` vector; None when it is not one
    (another version, a missing or unknown base metric)."""
    head, _, rest = vector.partition("/")
    if head not in ("CVSS:3.0", "CVSS:3.1"):
        return None
    metrics = dict(part.partition(":")[::2] for part in rest.split("/"))
    scope = metrics.get("S")
    try:
        weights = {name: table[metrics[name]] for name, table in _WEIGHTS.items()}
        privileges = _PRIVILEGES[scope or ""][metrics["PR"]]
    except KeyError:
        return None
    sub = 1 - (1 - weights["C"]) * (1 - weights["I"]) * (1 - weights["A"])
    changed = 7.52 * (sub - 0.029) - 3.25 * (sub - 0.02) ** 15
    impact = 6.42 * sub if scope == "U" else changed
    exploitability = 8.22 * weights["AV"] * weights["AC"] * privileges * weights["UI"]
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _round_up(min(total, 10.0))


def _round_up(value: float) -> float:
    """The specification's Roundup: the smallest one-decimal number at or above ``value``."""
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000.0
    return (math.floor(scaled / 10_000) + 1) / 10.0


def rating(score: float) -> Severity:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"
