"""Reading what ``imagefactory test`` leaves: its test containers, its ``--json`` reports."""

from __future__ import annotations

import json
from typing import Any

from .example import SESSION_LABEL
from .services import docker

TEST_LABEL = "org.imagefactory.test"  # imagefactory.imagetest.container.TEST_LABEL


def session_containers(session: str) -> list[str]:
    """Test containers of this session's images, running or not: ``name image status``."""
    out = docker(
        "ps",
        "-a",
        "--filter",
        f"label={TEST_LABEL}",
        "--filter",
        f"label={SESSION_LABEL}={session}",
        "--format",
        "{{.Names}} {{.Image}} {{.Status}}",
        timeout=30,
    ).stdout
    return out.splitlines()


def json_documents(text: str) -> list[dict[str, Any]]:
    """Every JSON document of ``text`` (a failing ``--json`` run prints two; see the xfail)."""
    decoder, documents, position = json.JSONDecoder(), [], 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        document, position = decoder.raw_decode(text, position)
        assert isinstance(document, dict), document
        documents.append(document)
    return documents


def first_json(text: str) -> dict[str, Any]:
    """The report of a ``--json`` run."""
    return json_documents(text)[0]


def checks_of(document: dict[str, Any], ref: str) -> list[dict[str, Any]]:
    images = {image["image"]: image for image in document["images"]}
    assert ref in images, f"{ref} not in the report: {sorted(images)}"
    checks = images[ref]["checks"]
    assert isinstance(checks, list)
    return checks


def one_check(checks: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [c for c in checks if c["kind"] == kind and c["name"] == name]
    assert len(found) == 1, (
        f"expected exactly one {kind} check named {name!r}, found {len(found)}; "
        f"{kind} checks: {[c['name'] for c in checks if c['kind'] == kind]}"
    )
    return found[0]
