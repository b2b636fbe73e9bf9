"""imagefactory.scan.cvss: CVSS v3 base scores, checked against the scores published beside
the vectors in the real reports of tests/unit/fixtures/scan (NVD's and Red Hat's, as trivy
copies them) and NVD's for CVE-2024-22195."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagefactory.scan.cvss import base_score, rating

FIXTURES = Path(__file__).parent / "fixtures" / "scan"


def published() -> list[tuple[str, float]]:
    """Every (V3Vector, V3Score) pair of the trivy fixture."""
    report = json.loads((FIXTURES / "trivy-debian-buster.json").read_text())
    return [
        (source["V3Vector"], source["V3Score"])
        for result in report["Results"]
        for vulnerability in result["Vulnerabilities"]
        for source in vulnerability["CVSS"].values()
        if "V3Vector" in source
    ]


def test_scores_match_the_published_ones() -> None:
    pairs = published()
    assert len(pairs) == 4
    for vector, score in pairs:
        assert base_score(vector) == score, vector


@pytest.mark.parametrize(
    ("vector", "score", "severity"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N", 5.4, "medium"),  # CVE-2024-22195 (NVD)
        ("CVSS:3.0/AV:L/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H", 8.6, "high"),  # CVE-2016-2781 (Red Hat)
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "critical"),  # CVE-2021-44228
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "low"),
    ],
)
def test_known_scores(vector: str, score: float, severity: str) -> None:
    assert base_score(vector) == score
    assert rating(score) == severity


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
        "AV:N/AC:L/Au:N/C:P/I:P/A:P",  # v2
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L",  # no A
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:Q/C:L/I:L/A:N",
    ],
)
def test_what_is_not_a_v3_vector_has_no_score(vector: str) -> None:
    assert base_score(vector) is None
