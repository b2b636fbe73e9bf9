"""``imagefactory report`` on the built example: an image tested, pushed to dev and promoted to
preprod in namespaces of this module's own; the page opened from disk in headless Chromium,
its DOM checked (every image, every environment), a screenshot saved, and no request left it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagefactory.render.report import CONTENT_SECURITY_POLICY

from .conftest import ExampleBuild
from .helpers.browser import dump_dom, page_requests, screenshot
from .helpers.example import imagefactory
from .test_release import copy_catalog, ok, without_ci

pytestmark = pytest.mark.integration

BASE = "base/debian12"
CLI_TIMEOUT = 600
ENVIRONMENTS = ("dev", "preprod", "prod")
USER = "report-tester"


@dataclass(frozen=True)
class Reported:
    root: Path
    page: Path
    document: dict[str, Any]  # report --json, as it wrote the page
    digest: str  # of base/debian12, in dev and preprod


@pytest.fixture(scope="module")
def reported(example_build: ExampleBuild, tmp_path_factory: pytest.TempPathFactory) -> Reported:
    root = copy_catalog(example_build.root, tmp_path_factory.mktemp("report") / "catalog")
    path = root / "imagefactory.yaml"
    project = yaml.safe_load(path.read_text())
    for stage in ENVIRONMENTS[1:]:  # dev stays where the session built: push reads it there
        project["registries"][stage]["namespace"] = f"it-{example_build.session}/report/{stage}"
    path.write_text(yaml.safe_dump(project, sort_keys=False))
    env = {**without_ci(example_build.env), "USER": USER}
    ok(imagefactory(root, "test", BASE, "--json", env=env, timeout=CLI_TIMEOUT))
    ok(imagefactory(root, "push", BASE, "--json", env=env, timeout=CLI_TIMEOUT))
    promoted = ok(imagefactory(root, "promote", BASE, "--to", "preprod", "--json", env=env))
    page = root / "public" / "report.html"
    proc = imagefactory(root, "report", "--out", str(page), "--json", env=env, timeout=CLI_TIMEOUT)
    return Reported(root, page, ok(proc), promoted["digest"])


def test_the_report_says_where_each_digest_is_and_who_put_it_there(reported: Reported) -> None:
    document = reported.document
    assert document["out"] == str(reported.page) and reported.page.is_file()
    images = {i["ref"]: i for i in document["images"]}
    assert list(document["environments"]) == list(ENVIRONMENTS)
    base = images[BASE]
    dev, preprod, prod = base["environments"]
    assert dev["digest"] == preprod["digest"] == reported.digest and prod["digest"] is None
    assert dev["release"]["action"] == "push" and dev["release"]["who"] == USER
    assert preprod["release"]["action"] == "promote" and preprod["release"]["source"] == "dev"
    assert preprod["release"]["who"] == USER
    for place in (dev, preprod):  # the session signs: verify's checks, read from the registry
        assert place["evidence"]["verified"] is True, place["evidence"]
        assert place["sbom"]["deb"] > 0  # the SBOM its build kept
    assert any(run["digest"] == reported.digest and run["passed"] for run in base["tests"])
    assert base["build"]["size_bytes"] > 0
    assert base["freshness"] is not None or any("pending updates" in n for n in document["notes"])


def test_chromium_shows_every_image_and_environment_and_the_page_fetches_nothing(
    reported: Reported, tmp_path: Path
) -> None:
    net_log = tmp_path / "net-log.json"
    dom = dump_dom(reported.page, net_log)
    for ref in (i["ref"] for i in reported.document["images"]):
        assert f'data-image="{ref}"' in dom, ref
    for env in ENVIRONMENTS:
        assert f'<th data-env="{env}">{env}</th>' in dom, env
    assert "<svg" in dom and "<script" not in dom
    assert f'content="{CONTENT_SECURITY_POLICY}"' in dom
    assert page_requests(net_log) == []
    png = tmp_path / "report.png"
    screenshot(reported.page, png)
    assert png.stat().st_size > 10_000  # a page drawn, not a blank one


def test_the_net_log_shows_a_request_a_page_makes_unless_the_policy_forbids_it(
    tmp_path: Path,
) -> None:
    """The check above can fail: a page that loads an image from the network shows in the log;
    with the report's Content-Security-Policy the same page starts no request."""
    leak = '<img src="http://127.0.0.1:9/leak.png">'
    policy = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    for name, head, expected in (
        ("open", "", ["http://127.0.0.1:9/leak.png"]),
        ("forbidden", policy, []),
    ):
        page = tmp_path / f"{name}.html"
        page.write_text(f"<!DOCTYPE html><html><head>{head}</head><body>{leak}</body></html>")
        net_log = tmp_path / f"{name}.json"
        dump_dom(page, net_log)
        assert page_requests(net_log) == expected, name
