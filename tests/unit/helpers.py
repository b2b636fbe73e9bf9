"""What the release tests share: the CLI run on a catalog, its audit log as written (and an
intent left open in it), and the registries of push, promote and yank served from one registry
in memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner, Result

from imagefactory.cli.app import app  # the package registers every command on it
from imagefactory.project.hashing import content_inputs
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import ImageRecord, State, TestRecord, load_state, save_state
from imagefactory.release import audit
from imagefactory.release.audit import AuditRecord
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog

from .test_write_tags import DEV, MemoryRegistry

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "FORCE_COLOR": None, "TERM": "dumb"})
Client = TypeVar("Client")
REF = "app/rag-api"


class Killed(BaseException):
    """The process dies here: no handler of imagefactory's runs, only finally blocks."""


def run(root: Path, *args: str) -> Result:
    """``imagefactory -C root ARGS``; a failed assertion or a kill inside is the test's own."""
    result = runner.invoke(app, ["-C", str(root), *args])
    assert not isinstance(result.exception, Killed | AssertionError), result.output
    return result


def lines(root: Path) -> list[dict[str, Any]]:
    """Every line of the catalog's audit log, as written."""
    path = root / ".imagefactory" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def serve(monkeypatch: pytest.MonkeyPatch, client: Client, *modules: ModuleType) -> Client:
    """Every registry session that ``modules`` (push, promote, yank…) open yields ``client``."""

    @contextmanager
    def session(*_: object) -> Iterator[Client]:
        yield client

    for module in modules:
        monkeypatch.setattr(module, "registry_session", session)
    return client


def logged(
    catalog: Catalog,
    action: str,
    digest: str,
    *,
    target: str,
    source: str,
    version: str = "0.3.0",
    identity: str | None = None,
    approver: str | None = None,
) -> AuditRecord:
    """The intent of ``action`` of app/rag-api's ``digest`` from ``source`` into ``target``
    (approved by ``approver``), appended to the catalog's audit log (and left open)."""
    intent = audit.new_record(
        action=action,
        image=REF,
        version=version,
        digest=digest,
        source=source,
        target=target,
        tags=[],
        git_revision=None,
        approver=approver,
        identity=identity,
    )
    audit.append(audit_log(catalog), intent)
    return intent


def build(root: Path, registry: MemoryRegistry, digest: str, *, tested: bool, **more: Any) -> None:
    """app/rag-api built (0.3.0, as image.yaml says) as ``digest``, in state (with ``tested``,
    a pass of it; ``more``: further fields of its record) and in ``registry``'s build
    repository."""
    catalog = load_catalog(root)
    record = ImageRecord(
        content_hash=content_inputs(catalog)[REF].content_hash,
        inputs={},
        version="0.3.0",
        digest=digest,
        repository=DEV,
        **more,
    )
    if tested:
        record = record.with_test(TestRecord(digest=digest, passed=True, at="then"))
    save_state(state_file(catalog), State(images={REF: record}))
    registry.held[f"{DEV}:content-1"] = digest


def recorded(root: Path, **update: Any) -> None:
    """app/rag-api's record in the catalog's state, with the fields ``update`` gives."""
    path = state_file(load_catalog(root))
    record = load_state(path).images[REF]
    save_state(path, State(images={REF: record.model_copy(update=update)}))
