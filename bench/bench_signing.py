"""Benchmark: what signing adds to a push and to a promotion, against the plain copy it follows.

Against the real registry (127.0.0.1:5000, htpasswd; the integration tests' credentials:
``IMAGEFACTORY_REGISTRY_USER``/``_PASSWORD``, else ``imagefactory`` and
``.host/registry.password``), for a tiny image (``FROM scratch``, one file of a few bytes, new
content each repetition so every push uploads):

* **per digest, at build**: the plain ``docker push`` of the image vs what a signed build adds to
  it (imagefactory.build.evidence): ``EvidenceStore.sign`` and two ``EvidenceStore.attest``
  (the SLSA provenance, and the image's CycloneDX SBOM as ``imagefactory.sbom`` writes it);
* **per promotion target repository**: the image copy (``RegistryClient.copy``: skopeo, by
  digest, blobs mounted within the registry) vs the evidence copy (``EvidenceStore.copy_to``),
  and vs all a signed promotion adds there (imagefactory.release.attach: the copy, a signature
  for the target repository and the release attestation).

Each append to a ``.sig`` or ``.att`` tag reads the tag, uploads the blob, puts the manifest and
reads it back twice, ``evidence.store.SETTLE`` apart (so a concurrent writer's layer is not
lost): that pause is a floor under every signature and attestation. Repetitions alternate the
order of the copies; the push comes first by necessity (the evidence is about its digest). The
median of ``--repeat`` runs is reported with min and max, after one warm-up run.

Writes only the namespace ``imagefactory-bench/signing-<run id>/`` (its manifests deleted at the
end) and local images ``imagefactory-bench/signing:<run id>-<n>`` (removed). Run from the
repository root, under the integration lock (it shares the registry with the tests)::

    flock /tmp/if-integration.lock .venv/bin/python bench/bench_signing.py [--repeat 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from imagefactory.evidence import predicates  # noqa: E402
from imagefactory.evidence.store import SETTLE, EvidenceStore, Location  # noqa: E402
from imagefactory.registry.client import RegistryClient  # noqa: E402
from imagefactory.sbom import rootfs  # noqa: E402
from imagefactory.sbom.document import ImageIdentity, sbom_json  # noqa: E402
from imagefactory.signing import provenance  # noqa: E402
from imagefactory.signing.keys import SigningKey  # noqa: E402
from imagefactory.spec.models import Registry  # noqa: E402
from tests.integration.helpers.registry import Registry as Account  # noqa: E402
from tests.integration.helpers.registry import registry_cleanup  # noqa: E402

DOCKER = "/usr/bin/docker"
HOST = "127.0.0.1:5000"
HOST_DIR = Path(os.environ.get("IMAGEFACTORY_HOST_DIR") or REPO / ".host")


@dataclass(frozen=True)
class Run:
    """One repetition's seconds."""

    push: float
    sign: float
    provenance: float
    sbom: float
    image_copy: float
    evidence_copy: float
    target_sign_release: float

    @property
    def evidence(self) -> float:
        return self.sign + self.provenance + self.sbom


def account() -> Account:
    password = os.environ.get("IMAGEFACTORY_REGISTRY_PASSWORD")
    if password is None:
        password = (HOST_DIR / "registry.password").read_text().strip()
    return Account(HOST, os.environ.get("IMAGEFACTORY_REGISTRY_USER", "imagefactory"), password)


def docker(config: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "DOCKER_CONFIG": str(config), "DOCKER_BUILDKIT": "1"}
    proc = subprocess.run(
        [DOCKER, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


class Bench:
    def __init__(self, work: Path, run_id: str) -> None:
        self.work = work
        self.run_id = run_id
        self.account = account()
        self.config = work / "docker-config"
        self.config.mkdir(mode=0o700)
        docker(
            self.config,
            "login",
            HOST,
            "--username",
            self.account.user,
            "--password-stdin",
            stdin=self.account.password + "\n",
        )
        self.client = RegistryClient(self.config)
        self.namespace = f"imagefactory-bench/signing-{run_id}"
        self.dev = Registry(url=HOST, namespace=f"{self.namespace}/dev", tls_verify=False)
        self.preprod = Registry(url=HOST, namespace=f"{self.namespace}/preprod", tls_verify=False)
        self.key = SigningKey(ec.generate_private_key(ec.SECP256R1()), "the benchmark's key")
        self.local: list[str] = []
        self.sbom_bytes = 0

    def once(self, index: int) -> Run:
        context = self.work / f"context-{index}"
        context.mkdir()
        (context / "hello.txt").write_text(f"{self.run_id} {index} {uuid.uuid4()}\n")
        (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
        local = f"imagefactory-bench/signing:{self.run_id}-{index}"
        docker(self.config, "build", "--quiet", "--tag", local, str(context))
        self.local.append(local)
        dev_repo = f"{HOST}/{self.namespace}/dev/tiny"
        docker(self.config, "tag", local, f"{dev_repo}:{index}")
        self.local.append(f"{dev_repo}:{index}")
        push = timed(lambda: docker(self.config, "push", "--quiet", f"{dev_repo}:{index}"))
        digest = self.client.digest(self.dev, f"{dev_repo}:{index}")
        assert digest is not None, "the push left no digest"

        store = EvidenceStore(self.client, Location(self.dev, dev_repo))
        facts = provenance.BuildFacts(
            catalog_uri="https://gitlab.bank.example/platform/catalog.git",
            catalog_ref="main",
            catalog_path="images/tiny/image.yaml",
            catalog_commit="0123456789abcdef0123456789abcdef01234567",
            spec="tiny",
            variant=None,
            parent_repository=None,
            parent_digest=None,
            builder_id="https://gitlab.bank.example/platform/catalog/-/runners/7",
            invocation_id="https://gitlab.bank.example/platform/catalog/-/jobs/991",
            started_on=datetime.now(UTC),
            finished_on=datetime.now(UTC),
        )
        document = json.loads(
            sbom_json(
                rootfs.from_directory(context),
                ImageIdentity(dev_repo, "1.0.0", digest),
                timestamp=datetime.now(UTC),
            )
        )
        self.sbom_bytes = len(json.dumps(document))
        sign = timed(lambda: store.sign(digest, self.key))
        made = timed(
            lambda: store.attest(
                digest, predicates.PROVENANCE, provenance.predicate(facts), self.key
            )
        )
        sbom = timed(lambda: store.attest(digest, predicates.SBOM, document, self.key))

        target_repo = f"{HOST}/{self.namespace}/preprod/tiny"
        target = EvidenceStore(self.client, Location(self.preprod, target_repo))

        def image_copy() -> None:
            self.client.copy(self.dev, f"{dev_repo}@{digest}", self.preprod, f"{target_repo}:1")

        copies = [image_copy, lambda: store.copy_to(digest, target)]
        order = [1, 0] if index % 2 else [0, 1]  # alternate which copy runs first
        seconds = {position: timed(copies[position]) for position in order}
        copied = [seconds[0], seconds[1]]
        release = predicates.release_predicate(
            environment="preprod",
            version="1.0.0",
            tags=["1.0.0", "1.0", "1", "latest"],
            identity="bench",
            approver=None,
            from_environment="dev",
            at=datetime.now(UTC),
        )

        def sign_release() -> None:
            target.sign(digest, self.key)
            target.attest(digest, predicates.RELEASE, release, self.key)

        return Run(push, sign, made, sbom, copied[0], copied[1], timed(sign_release))

    def close(self) -> None:
        registry_cleanup(self.account, self.namespace)
        for local in self.local:
            subprocess.run(
                [DOCKER, "rmi", "--force", local], capture_output=True, timeout=60, check=False
            )
        subprocess.run(
            [DOCKER, "logout", HOST],
            env={**os.environ, "DOCKER_CONFIG": str(self.config)},
            capture_output=True,
            timeout=60,
            check=False,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        raise SystemExit("skopeo is not on PATH (RegistryClient.copy runs it)")
    run_id = uuid.uuid4().hex[:10]
    with tempfile.TemporaryDirectory(prefix="bench-signing-") as folder:
        bench = Bench(Path(folder), run_id)
        try:
            bench.once(0)  # warm-up: the registry's repositories, the HTTP connection, imports
            runs = [bench.once(index) for index in range(1, args.repeat + 1)]
        finally:
            bench.close()
    rows = {
        "docker push": [r.push for r in runs],
        "sign": [r.sign for r in runs],
        "attest provenance": [r.provenance for r in runs],
        "attest SBOM": [r.sbom for r in runs],
        "sign + 2 attestations": [r.evidence for r in runs],
        "image copy (skopeo)": [r.image_copy for r in runs],
        "evidence copy (copy_to)": [r.evidence_copy for r in runs],
        "target: sign + release attestation": [r.target_sign_release for r in runs],
        "target: evidence copy + sign + release": [
            r.evidence_copy + r.target_sign_release for r in runs
        ],
    }
    medians = {name: statistics.median(values) for name, values in rows.items()}
    ratios = {
        "evidence / push": medians["sign + 2 attestations"] / medians["docker push"],
        "evidence copy / image copy": medians["evidence copy (copy_to)"]
        / medians["image copy (skopeo)"],
        "target evidence / image copy": medians["target: evidence copy + sign + release"]
        / medians["image copy (skopeo)"],
    }
    results = {
        "run": run_id,
        "repeat": args.repeat,
        "settle_s": SETTLE,
        "sbom_bytes": bench.sbom_bytes,
        "seconds": {name: summary(values) for name, values in rows.items()},
        "ratios": ratios,
    }
    print(f"tiny image, {args.repeat} runs (+1 warm-up), SETTLE {SETTLE}s")
    for name, values in rows.items():
        value = summary(values)
        print(
            f"  {name:<40} median {value['median']:6.3f}s"
            f"  min {value['min']:6.3f}s  max {value['max']:6.3f}s"
        )
    for name, ratio in ratios.items():
        print(f"  ratio {name:<34} {ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
