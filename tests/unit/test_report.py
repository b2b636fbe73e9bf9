"""``imagefactory report``: what it collects from state, the audit log and kept SBOMs, the page
it renders (a golden file of a fixed data set), and the sanitising of Graphviz's SVG."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from imagefactory.cli.app import app
from imagefactory.errors import UserError
from imagefactory.evidence import check as check_module
from imagefactory.project.paths import audit_log, sbom_file, state_file
from imagefactory.project.state import (
    EnvironmentRecord,
    ImageRecord,
    State,
    YankRecord,
    save_state,
)
from imagefactory.project.state import TestRecord as Run
from imagefactory.release import audit
from imagefactory.render.report import (
    CONTENT_SECURITY_POLICY,
    Safe,
    graph_svg,
    report_html,
    sanitized_svg,
)
from imagefactory.report import collect as collect_module
from imagefactory.report.collect import collect
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import Registry

FIXTURES = Path(__file__).parent / "fixtures" / "report"
GOLDEN = Path(__file__).parent / "golden" / "report"
BASE, APP = "base/debian12", "app/rag-api"
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
HOSTILE = '<script>alert("x")</script><img src="http://evil.invalid/x">'


def _done(root: Path, **fields: Any) -> str:
    """Append an intent and its done record; the record's id."""
    catalog = load_catalog(root)
    defaults: dict[str, Any] = dict(tags=[], git_revision=None, approver=None, registries=[])
    intent = audit.new_record(**{**defaults, **fields})
    audit.append(audit_log(catalog), intent)
    audit.append(audit_log(catalog), audit.follow_up(intent, audit.DONE))
    return intent.id


@pytest.fixture
def recorded(catalog_dir: Path) -> Path:
    """The example catalog with state for base/debian12: built, tested, pushed to dev,
    promoted to preprod with an approver, a yanked version, a revoked digest and a kept SBOM;
    nothing for any other image."""
    catalog = load_catalog(catalog_dir)
    push = _done(
        catalog_dir, action="push", image=BASE, version="1.0.0", digest=D1, source="build",
        target="dev",
    )  # fmt: skip
    promotion = _done(
        catalog_dir, action="promote", image=BASE, version="1.0.0", digest=D1, source="dev",
        target="preprod", approver="Jane Doe <jane@example.invalid>",
    )  # fmt: skip
    _done(
        catalog_dir, action="revoke", image=BASE, version="0.9.0", digest=D2, source="dev",
        target="dev", reason=HOSTILE,
    )  # fmt: skip
    placed = {
        "dev": EnvironmentRecord(
            version="1.0.0", digest=D1, tags=["1.0.0"], registries=["dev"],
            at="2026-01-02T00:00:00+00:00", audit_id=push,
        ),
        "preprod": EnvironmentRecord(
            version="1.0.0", digest=D1, tags=["1.0.0"], registries=["preprod"],
            at="2026-01-03T00:00:00+00:00", audit_id=promotion,
        ),
    }  # fmt: skip
    record = ImageRecord(
        content_hash="sha256:" + "c" * 64,
        inputs={},
        version="1.0.0",
        digest=D1,
        size_bytes=123_456_789,
        previous_size_bytes=120_000_000,
        built_at="2026-01-01T00:00:00+00:00",
        build_seconds=42.5,
        test_runs={
            D2: Run(digest=D2, passed=False, at="2025-12-01T00:00:00+00:00", checks=3),
            D1: Run(digest=D1, passed=True, at="2026-01-01T01:00:00+00:00", checks=7),
        },
        yanked={
            "0.9.0": YankRecord(
                version="0.9.0", digest=D2, reason="broken CA", by="ops", at="2025-12-02T00:00"
            )
        },
        environments=placed,
    )
    save_state(state_file(catalog), State(images={BASE: record}))
    kept = sbom_file(catalog, D1)
    kept.parent.mkdir(parents=True, exist_ok=True)
    purls = ["pkg:deb/debian/libc6@2.36?arch=amd64", "pkg:deb/debian/bash@5.2?arch=amd64"]
    components = [{"type": "library", "name": p, "purl": p} for p in purls]
    components.append({"type": "library", "name": "pip", "purl": "pkg:pypi/pip@23.0"})
    kept.write_text(json.dumps({"bomFormat": "CycloneDX", "components": components}))
    return catalog_dir


def test_the_report_holds_what_state_and_the_audit_log_record(recorded: Path) -> None:
    report = collect(load_catalog(recorded), offline=True)
    images = {i.ref: i for i in report.images}
    assert report.environments == ("dev", "preprod", "prod") and report.offline
    base = images[BASE]
    assert base.chain == (BASE, "bootstrap: debian bookworm/apt")
    assert images[APP].chain == (APP, "runtime/llm:cpu", BASE, "bootstrap: debian bookworm/apt")
    assert base.build is not None and base.build.size_bytes == 123_456_789
    assert base.build.previous_size_bytes == 120_000_000
    assert base.build.sbom is not None
    assert (base.build.sbom.packages, base.build.sbom.deb, base.build.sbom.pypi) == (3, 2, 1)
    assert [(t.digest, t.passed) for t in base.tests] == [(D2, False), (D1, True)]
    dev, preprod, prod = base.environments
    assert (dev.version, dev.digest, dev.tested) == ("1.0.0", D1, True)
    assert dev.release is not None and dev.release.action == "push"
    assert dev.release.source == "build" and dev.release.who
    assert preprod.release is not None and preprod.release.source == "dev"
    assert preprod.release.approver == "Jane Doe <jane@example.invalid>"
    assert prod.digest is None and prod.release is None and prod.sbom is None
    assert dev.evidence is None  # offline: the registry is not read
    assert base.revoked == ({"digest": D2, "reason": HOSTILE},)
    assert [y["version"] for y in base.yanked] == ["0.9.0"]
    assert base.freshness is None
    assert images[APP].build is None and images[APP].tests == ()


def test_a_placement_without_its_audit_record_has_no_release(recorded: Path) -> None:
    audit_log(load_catalog(recorded)).unlink()
    [base] = [i for i in collect(load_catalog(recorded), offline=True).images if i.ref == BASE]
    assert base.environments[0].digest == D1 and base.environments[0].release is None


class _Unanswered:
    """A registry client that holds no tag: each ``verify`` check of a placement fails."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def digest(self, registry: Registry, reference: str) -> str | None:
        self.asked.append(reference)
        return None


def test_online_the_audit_log_is_read_once_and_one_registry_session_serves_the_report(
    recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    (recorded / "keys").mkdir(exist_ok=True)
    (recorded / "keys" / "cosign.pub").write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with (recorded / "imagefactory.yaml").open("a") as project:
        project.write("signing:\n  public_key: keys/cosign.pub\n")
    reads: list[Path] = []
    read = audit.read
    monkeypatch.setattr(audit, "read", lambda path: reads.append(path) or read(path))
    client, sessions = _Unanswered(), []

    @contextmanager
    def session(catalog: object, registries: list[Registry]) -> Iterator[_Unanswered]:
        sessions.append(sorted({r.url for r in registries}))
        yield client

    for module in (check_module, collect_module):  # before: each placement opened its own
        monkeypatch.setattr(module, "registry_session", session, raising=False)
    given: list[object] = []

    def no_mirror(*_: object, client: object = None, **__: object) -> None:
        given.append(client)
        raise UserError("no mirror in a unit test")

    monkeypatch.setattr(collect_module, "outdated", no_mirror)
    catalog = load_catalog(recorded)
    report = collect(catalog, offline=False)
    assert len(reads) == 1
    urls = {r.url for r in catalog.project.registries.values()}
    assert sessions == [sorted(urls)]
    [base] = [i for i in report.images if i.ref == BASE]
    dev, preprod, prod = (p.evidence for p in base.environments)
    assert dev is not None and preprod is not None and prod is None  # nothing placed in prod
    assert dev.verified is False and [c.name for c in dev.checks] == ["tag"]
    assert len(client.asked) == 2  # dev's and preprod's version tag, through the one session
    assert given == [client]  # and the pending updates through it too
    assert report.notes == ("pending updates not read: no mirror in a unit test",)


class _Page(HTMLParser):
    """The elements that carry data-image / data-env, the scripts, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.images: set[str] = set()
        self.envs: set[str] = set()
        self.tags: set[str] = set()
        self.text: list[str] = []
        self.metas: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.add(tag)
        if found.get("data-image"):
            self.images.add(str(found["data-image"]))
        if found.get("data-env"):
            self.envs.add(str(found["data-env"]))
        if tag == "meta":
            self.metas.append(found)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_the_page_shows_every_image_and_environment_and_escapes_every_value(
    recorded: Path,
) -> None:
    catalog = load_catalog(recorded)
    document = dataclasses.asdict(collect(catalog, offline=True))
    html = report_html(recorded, document, Safe("<svg></svg>"))
    page = _page(html)
    assert page.images == set(catalog.images)
    assert page.envs == {"dev", "preprod", "prod"}
    assert "script" not in page.tags and "img" not in page.tags
    assert HOSTILE in "".join(page.text)  # shown as text
    assert "not recorded" in page.text
    policy = [m for m in page.metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert [m["content"] for m in policy] == [CONTENT_SECURITY_POLICY]


def test_the_page_of_a_fixed_data_set(golden: Callable[[Path, str], None]) -> None:
    """Every branch of the template: evidence verified and failed, gate verdicts, pending
    updates, an image never built, a registry that could not be read, an interrupted step."""
    document = json.loads((FIXTURES / "document.json").read_text())
    svg = sanitized_svg((FIXTURES / "graph.svg").read_text())
    golden(GOLDEN / "report.html", report_html(FIXTURES, document, svg))


def test_hostile_svg_keeps_only_drawing_elements_and_their_attributes() -> None:
    hostile = (
        '<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'width="10pt" onload="alert(1)" style="background:url(http://evil.invalid/a)">'
        "<script>alert(2)</script><!-- a comment -->"
        '<g id="n1" class="node"><title>img0</title>'
        '<a xlink:href="http://evil.invalid/"><text>linked</text></a>'
        '<image href="http://evil.invalid/i.png"/>'
        '<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>'
        '<polygon fill="url(http://evil.invalid/f)" stroke="black" points="0,0 1,1"/>'
        '<text x="1" y="2" onclick="alert(3)">a &lt;b&gt; &amp; c</text></g></svg>'
    )
    assert sanitized_svg(hostile) == (
        '<svg width="10pt"><g class="node" id="n1"><title>img0</title>'
        '<polygon points="0,0 1,1" stroke="black"></polygon>'
        '<text x="1" y="2">a &lt;b&gt; &amp; c</text></g></svg>'
    )


def test_an_svg_that_does_not_parse_is_refused() -> None:
    with pytest.raises(UserError, match="does not parse"):
        sanitized_svg("<svg><g></svg>")
    with pytest.raises(UserError, match="no SVG"):
        sanitized_svg("digraph {}")


def test_graphviz_draws_every_image_of_the_catalog(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    svg = graph_svg(catalog)
    page = _page(svg)
    assert page.tags <= {"svg", "g", "title", "polygon", "polyline", "path", "ellipse", "text"}
    labels = "".join(page.text)
    for ref, image in catalog.images.items():
        assert f"{ref} ({image.spec.version})" in labels
    assert "http" not in svg  # no namespace, DTD or link left: nothing that names a fetch


def test_report_json_prints_the_document_and_writes_no_page(recorded: Path) -> None:
    result = CliRunner().invoke(app, ["-C", str(recorded), "report", "--offline", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["out"] is None
    assert document["images"][0]["ref"] == BASE
    assert not list(recorded.glob("*.html"))


def test_report_writes_the_page_where_asked(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "site" / "catalog.html"
    result = CliRunner().invoke(
        app, ["-C", str(recorded), "report", "--offline", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    images = load_catalog(recorded).images
    assert f"wrote {out}: {len(images)} images, 3 environments" in result.stdout
    assert out.stat().st_mode & 0o644 == 0o644  # readable by whoever serves or opens it
    assert _page(out.read_text()).images == set(images)
